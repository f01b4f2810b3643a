"""Writes on treatment courses, doses and preparations, and the dose gate (docs/architecture.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.findings import Finding as AlertFinding
from alerts.services import AlertCondition, alerts_raise
from core.errors import Conflict
from monitoring.choices import AWAITING_COLLECTION, AWAITING_RESULT
from monitoring.services import monitoring_test_cancel, monitoring_test_schedule
from orders import bud, dosing
from orders.choices import (
    CELL_BASES,
    COI_ORDER,
    CoiStep,
    ComponentKind,
    CourseStatus,
    DecisionKind,
    DoseBasis,
    DoseStatus,
    GateCheckPurpose,
    GateVerdict,
    PreparationStatus,
    Reference,
    RuleKind,
    VerificationMethod,
)
from orders.gate import FindingKind, Gate, band_for, band_problem, dose_gate, dose_gates
from orders.models import (
    CourseMonitoringTest,
    Dose,
    DoseDecision,
    Drug,
    GateCheck,
    HoldRule,
    IdentityCheck,
    MonitoringRule,
    Preparation,
    PreparationComponent,
    Regimen,
    TreatmentCourse,
)
from orders.versioning import revised_values, rule_revise
from patients.models import Patient
from patients.selectors import patient_list
from results.models import Result


class OrderConflict(Conflict):
    """The course, dose or preparation is not in a state that allows this step (HTTP 409)."""


class DoseBlocked(OrderConflict):
    """The dose gate is not open; carries the verdict and the open findings."""

    def __init__(self, verdict: GateVerdict, reasons: list[str]) -> None:
        self.verdict = verdict
        self.reasons = reasons
        super().__init__(f"Dose {verdict.label.lower()}: " + "; ".join(reasons))


# --- Courses -----------------------------------------------------------------------------------------


def _rule_due_times(
    rule: MonitoringRule, doses: Sequence[Dose], starts_at: datetime
) -> list[tuple[datetime, Dose | None]]:
    """When a monitoring rule wants its test, and for which dose (pre-dose rules gate that dose)."""
    if rule.kind == RuleKind.PRE_DOSE:
        return [(d.planned_at - timedelta(hours=rule.lead_hours), d) for d in doses]
    if rule.kind == RuleKind.BASELINE:
        return [(doses[0].planned_at - timedelta(hours=rule.lead_hours), doses[0])] if doses else []
    if rule.kind == RuleKind.EVERY_NTH_DOSE:
        n = rule.every_nth_dose or 1
        return [(d.planned_at - timedelta(hours=rule.lead_hours), d) for d in doses if (d.number - 1) % n == 0]
    if rule.kind == RuleKind.EVERY_N_DAYS:
        interval = timedelta(days=rule.interval_days or 42)
        last = doses[-1].planned_at if doses else starts_at
        due = starts_at + interval
        times: list[tuple[datetime, Dose | None]] = []
        while due <= last:
            times.append((due, None))
            due += interval
        return times
    infusion = doses[0].planned_at if doses else starts_at  # daily after the (first) infusion
    return [(infusion + timedelta(days=day), None) for day in range((rule.day_from or 0), (rule.day_to or 0) + 1)]


def _schedule_monitoring(course: TreatmentCourse, doses: Sequence[Dose], user: User, now: datetime) -> None:
    for rule in course.regimen.monitoring_rules.select_related("lab_test"):
        for due_at, dose in _rule_due_times(rule, doses, course.starts_at):
            test = monitoring_test_schedule(
                patient=course.patient, lab_test=rule.lab_test, due_at=due_at,
                grace_period=timedelta(hours=rule.grace_hours), user=user, now=now,
            )  # fmt: skip
            CourseMonitoringTest.objects.create(course=course, rule=rule, dose=dose, monitoring_test=test)


@transaction.atomic
def course_start(
    *,
    patient: Patient,
    regimen: Regimen,
    starts_at: datetime,
    user: User,
    now: datetime,
    chain_of_identity: str = "",
    no_round_up: bool = False,
) -> TreatmentCourse:
    """Start a regimen: schedule its doses, a preparation order for each, and its monitoring tests."""
    if not regimen.active:
        raise ValidationError({"regimen": "This regimen is no longer offered."})
    if starts_at < now - timedelta(days=1):
        raise ValidationError({"starts_at": "A course cannot start in the past."})
    if starts_at > now + timedelta(days=366):
        raise ValidationError({"starts_at": "A course starts within a year."})
    if regimen.drug.cell_therapy and not chain_of_identity.strip():
        raise ValidationError(
            {"chain_of_identity": "A cell therapy needs the chain-of-identity ID from leukapheresis."}
        )
    course = TreatmentCourse.objects.create(
        patient=patient, regimen=regimen, starts_at=starts_at, weight_kg_at_start=patient.weight_kg,
        height_cm_at_start=patient.height_cm, chain_of_identity=chain_of_identity.strip(), no_round_up=no_round_up,
        started_by=user, created_at=now,
    )  # fmt: skip
    doses = [
        Dose.objects.create(course=course, number=n + 1, planned_at=starts_at + timedelta(days=n * regimen.cycle_days))
        for n in range(regimen.number_of_doses)
    ]
    for dose in doses:
        _order_preparation(dose, now)
    _schedule_monitoring(course, doses, user, now)
    return course


def _cancel_open_tests(
    links: Sequence[CourseMonitoringTest], user: User, now: datetime, reason: str
) -> list[CourseMonitoringTest]:
    """Cancel (never delete) the links' tests still open; returns the links cancelled."""
    cancelled = []
    for link in links:
        if link.monitoring_test.status in (*AWAITING_COLLECTION, *AWAITING_RESULT):
            monitoring_test_cancel(monitoring_test=link.monitoring_test, user=user, now=now, reason=reason)
            cancelled.append(link)
    return cancelled


@transaction.atomic
def course_reschedule(*, dose: Dose, planned_at: datetime, user: User, now: datetime) -> list[Dose]:
    """Move a dose and every later one by the same shift; their open monitoring tests are cancelled
    (kept, with the reason) and scheduled anew for the new times."""
    course = TreatmentCourse.objects.select_for_update().get(pk=dose.course_id)
    if course.status != CourseStatus.ACTIVE:
        raise OrderConflict("The course is stopped.")
    dose = Dose.objects.get(pk=dose.pk)
    if dose.status != DoseStatus.PLANNED:
        raise OrderConflict(f"Dose {dose.number} is {dose.get_status_display().lower()}.")
    if not now - timedelta(hours=1) <= planned_at <= now + timedelta(days=366):
        raise ValidationError({"planned_at": "A dose can be moved to a time between now and a year ahead."})
    shift = planned_at - dose.planned_at
    moved = list(course.doses.filter(number__gte=dose.number, status=DoseStatus.PLANNED).order_by("number"))
    links = list(CourseMonitoringTest.objects.filter(course=course).select_related("monitoring_test", "rule"))
    moving = {d.pk for d in moved}
    affected = [
        link for link in links
        if (link.dose_id in moving) or (link.dose_id is None and link.monitoring_test.due_at >= dose.planned_at)
    ]  # fmt: skip
    cancelled = _cancel_open_tests(affected, user, now, f"Dose {dose.number} rescheduled by {shift}.")
    for d in moved:
        d.planned_at += shift
        d.save(update_fields=["planned_at"])
    for link in cancelled:
        test = monitoring_test_schedule(
            patient=course.patient, lab_test=link.rule.lab_test, due_at=link.monitoring_test.due_at + shift,
            grace_period=link.monitoring_test.grace_period, user=user, now=now,
        )  # fmt: skip
        CourseMonitoringTest.objects.create(course=course, rule=link.rule, dose=link.dose, monitoring_test=test)
    return moved


@transaction.atomic
def course_stop(*, course: TreatmentCourse, user: User, now: datetime, reason: str) -> TreatmentCourse:
    """Stop a course: planned doses and their unstarted orders are cancelled, open tests cancelled, all kept."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the course stops."})
    course = TreatmentCourse.objects.select_for_update().get(pk=course.pk)
    if course.status != CourseStatus.ACTIVE:
        raise OrderConflict("The course is already stopped.")
    course.status, course.stopped_at, course.stopped_by, course.stop_reason = CourseStatus.STOPPED, now, user, reason
    course.save(update_fields=["status", "stopped_at", "stopped_by", "stop_reason"])
    planned = course.doses.filter(status=DoseStatus.PLANNED)
    Preparation.objects.filter(dose__in=planned, status=PreparationStatus.ORDERED).update(
        status=PreparationStatus.WASTED, wasted_reason=f"Course stopped: {reason}", closed_at=now
    )
    planned.update(status=DoseStatus.CANCELLED, cancel_reason=f"Course stopped: {reason}")
    links = CourseMonitoringTest.objects.filter(course=course).select_related("monitoring_test")
    _cancel_open_tests(list(links), user, now, f"Course stopped: {reason}")
    return course


# --- Dose calculation and the gate -------------------------------------------------------------------


def final_volume_cap(drug: Drug, weight_kg: Decimal) -> Decimal | None:
    """The label's largest infusion volume for this patient (nivolumab: 160 mL; 4 mL/kg under 40 kg)."""
    if (
        drug.max_final_volume_ml_per_kg is not None
        and drug.per_kg_volume_below_kg is not None
        and weight_kg < drug.per_kg_volume_below_kg
    ):
        return (drug.max_final_volume_ml_per_kg * weight_kg).quantize(Decimal("0.1"))
    return drug.max_final_volume_ml


def calculate_for(dose: Dose, patient: Patient) -> dosing.DoseCalculation | dosing.CellDose:
    """The dose of this patient now: the regimen's weight band, the label's volume cap, the rounding policy
    and the course's no-round-up exception; cells for a cell product. Refusals name the field."""
    course = dose.course
    regimen = course.regimen
    drug = regimen.drug
    bands = list(regimen.dose_bands.order_by("weight_from_kg"))
    problem = band_problem(bands, patient.weight_kg, regimen.name)
    if problem:
        raise ValidationError({"weight_kg": problem})
    band = band_for(bands, patient.weight_kg)
    basis = band.dose_basis if band is not None else regimen.dose_basis
    amount = band.dose_amount if band is not None and band.dose_amount is not None else regimen.dose_amount
    try:
        if basis in CELL_BASES:
            return dosing.cell_dose(
                cells_per_kg=regimen.cells_per_kg if basis == DoseBasis.CELLS_PER_KG else None,
                cells_min=regimen.cells_min, cells_max=regimen.cells_max, weight_kg=patient.weight_kg,
            )  # fmt: skip
        return dosing.calculate_dose(
            basis=dosing.DoseBasis(basis), amount=amount,
            weight_kg=patient.weight_kg, height_cm=patient.height_cm, strength_mg_per_ml=drug.strength_mg_per_ml,
            vial_contents_mg=list(drug.vial_contents_mg), concentration_min=drug.concentration_min,
            concentration_max=drug.concentration_max, bag_sizes_ml=list(drug.bag_sizes_ml),
            max_dose_mg=band.max_dose_mg if band is not None else regimen.max_dose_mg,
            rounding_tolerance_percent=regimen.rounding_tolerance_percent, allow_round_up=not course.no_round_up,
            may_give_undiluted=drug.may_give_undiluted,
            max_final_volume_ml=final_volume_cap(drug, patient.weight_kg),
        )  # fmt: skip
    except dosing.DoseError as error:
        raise ValidationError({error.field: error.reason}) from None


def _weight_changed(course: TreatmentCourse, patient: Patient) -> bool:
    start = course.weight_kg_at_start
    return abs(patient.weight_kg - start) / start * 100 >= Decimal(str(settings.RECALCULATE_WEIGHT_CHANGE_PERCENT))


def _apply(preparation: Preparation, calc: dosing.DoseCalculation | dosing.CellDose) -> None:
    preparation.calculation = calc.as_record()
    if isinstance(calc, dosing.CellDose):
        preparation.cells_target, preparation.cells_min, preparation.cells_max = (
            calc.target_cells, calc.min_cells, calc.max_cells,
        )  # fmt: skip
        return
    preparation.dose_mg = calc.dose_mg
    preparation.volume_to_draw_ml = calc.volume_to_draw_ml
    preparation.final_volume_ml = calc.final_volume_ml
    preparation.concentration_mg_per_ml = calc.final_concentration_mg_per_ml
    preparation.diluent_bag_ml = calc.diluent_bag_ml


def _order_preparation(dose: Dose, now: datetime) -> Preparation:
    preparation = Preparation(dose=dose, ordered_at=now)
    _apply(preparation, calculate_for(dose, dose.course.patient))
    preparation.save()
    return preparation


HOLD_RULE_FIELDS = (
    "lab_test", "comparator", "threshold", "reference", "unit", "action", "lookback_days", "requires_result",
    "description", "source", "effective_from",
)  # fmt: skip


def _check_hold_rule(values: dict[str, object]) -> None:
    if values.get("reference") == Reference.ABSOLUTE and not str(values.get("unit") or "").strip():
        raise ValidationError({"unit": "An absolute threshold needs its unit (UCUM), so results can be converted."})


def hold_rule_revise(*, rule: HoldRule, changes: dict[str, object], user: User | None, now: datetime) -> HoldRule:
    """Edit a hold rule: a new version with the changes; the old one is kept, inactive and superseded.
    Its drugs and regimens carry over unless `changes` names them."""
    _check_hold_rule(revised_values(rule, HOLD_RULE_FIELDS, changes))
    return rule_revise(rule=rule, fields=HOLD_RULE_FIELDS, changes=changes, user=user, now=now)


def gate_record(*, dose: Dose, gate: Gate, user: User, now: datetime, purpose: GateCheckPurpose) -> GateCheck:
    """Keep the verdict a step relied on, with the hold-rule versions that decided it."""
    check = GateCheck.objects.create(
        dose=dose, at=now, by=user, purpose=purpose, verdict=gate.verdict,
        reasons=[{"key": f.key, "kind": str(f.kind), "text": f.text} for f in gate.findings],
    )  # fmt: skip
    check.hold_rules.set(gate.hold_rule_ids)
    return check


def _decidable(dose: Dose, now: datetime) -> tuple[Dose, Gate]:
    dose = (
        Dose.objects.select_for_update(of=("self",))
        .select_related("course__patient", "course__regimen")
        .get(pk=dose.pk)
    )
    if dose.status != DoseStatus.PLANNED or dose.course.status != CourseStatus.ACTIVE:
        raise OrderConflict(f"Dose {dose.number} is not planned on an active course.")
    gate = dose_gate(dose, now=now)
    if gate.verdict == GateVerdict.BLOCKED:
        limits = "; ".join(f.text for f in gate.open_findings if f.kind is FindingKind.LIMIT)
        raise OrderConflict(f"A dose limit of the regimen holds this dose and cannot be overridden: {limits}")
    if not gate.open_findings:
        raise OrderConflict(f"Dose {dose.number} is {gate.verdict.label.lower()}: nothing to decide.")
    return dose, gate


def _record_decision(
    dose: Dose, gate: Gate, kind: DecisionKind, user: User, now: datetime, reason: str, cosigner: User | None = None
) -> DoseDecision:
    decision = DoseDecision.objects.create(
        dose=dose, kind=kind, at=now, by=user, cosigned_by=cosigner, reason=reason,
        covers=[f.key for f in gate.open_findings],
    )  # fmt: skip
    decision.hold_rules.set(gate.hold_rule_ids)
    gate_record(dose=dose, gate=gate, user=user, now=now, purpose=GateCheckPurpose.DECISION)
    return decision


@transaction.atomic
def dose_override(*, dose: Dose, user: User, now: datetime, reason: str) -> DoseDecision:
    """One oncologist gives a withheld or pending dose, with a reason. It covers the findings of now only."""
    if not reason.strip():
        raise ValidationError({"reason": "An override needs a reason."})
    dose, gate = _decidable(dose, now)
    if gate.verdict == GateVerdict.DISCONTINUED:
        raise OrderConflict(
            "A permanent-discontinuation rule is met: stop the course, or two oncologists decide to continue "
            "(the second co-signs with their password)."
        )
    return _record_decision(dose, gate, DecisionKind.OVERRIDE, user, now, reason.strip())


@transaction.atomic
def dose_continue_cosigned(
    *, dose: Dose, user: User, cosigner: User | None, cosigner_password: str, now: datetime, reason: str
) -> DoseDecision:
    """Two oncologists document the decision to give a dose despite a permanent-discontinuation finding:
    the second, another oncologist of the patient's care team, signs with their password."""
    if not reason.strip():
        raise ValidationError({"reason": "A decision to continue needs the documented reason."})
    if cosigner is None or not cosigner.is_active:
        raise ValidationError({"cosigner": "Name the second oncologist."})
    if cosigner.pk == user.pk:
        raise PermissionDenied("The second oncologist must be someone else.")
    if not cosigner.has_perm("orders.manage_course"):
        raise ValidationError({"cosigner": f"{cosigner} is not an oncologist who may decide on doses."})
    dose, gate = _decidable(dose, now)
    if not patient_list(user=cosigner).filter(pk=dose.course.patient_id).exists():
        raise ValidationError({"cosigner": f"{cosigner} is not on this patient's care team."})
    if not cosigner.check_password(cosigner_password):
        raise PermissionDenied("The second oncologist's password does not match.")
    return _record_decision(dose, gate, DecisionKind.COSIGNED, user, now, reason.strip(), cosigner)


def doses_discontinue_findings(*, patient_ids: set[int], now: datetime) -> list[tuple[int, AlertFinding]]:
    """Findings for the results alert when the next planned dose of an active course meets a permanent-
    discontinuation rule: high severity, for the oncologists, one per dose and rule (a repeat folds)."""
    next_doses = (
        Dose.objects.filter(
            course__patient_id__in=patient_ids, course__status=CourseStatus.ACTIVE, status=DoseStatus.PLANNED
        )
        .select_related("course__patient", "course__regimen__drug")
        .order_by("course_id", "number")
        .distinct("course_id")
    )
    doses = list(next_doses)
    gates = dose_gates(doses, now=now)
    findings = []
    for dose in doses:
        for stop in (f for f in gates[dose.pk].open_findings if f.kind is FindingKind.DISCONTINUE):
            label = f"{dose.course.regimen.drug}: dose {dose.number} meets a discontinuation rule: {stop.text}"
            finding = AlertFinding(
                key=f"dose:{dose.pk}:rule:{stop.hold_rule_id}",
                label=label[:160],
                severity=AlertSeverity.HIGH,
                audience=AlertAudience.ONCOLOGISTS,
            )
            findings.append((dose.course.patient_id, finding))
    return findings


def on_results_verified(*, results: Sequence[Result], now: datetime) -> list[tuple[int, AlertFinding]]:
    """A hook of `results_verify` (settings.RESULTS_VERIFIED_HOOKS): runs inside the verifying transaction and
    returns its findings for the results' alert."""
    return doses_discontinue_findings(patient_ids={r.patient_id for r in results}, now=now)


# --- Preparation lifecycle ---------------------------------------------------------------------------

_TRANSITIONS: dict[str, tuple[str, ...]] = {
    # action: the states it may start from
    "recalculate": (PreparationStatus.ORDERED, PreparationStatus.REJECTED),
    "start": (PreparationStatus.ORDERED, PreparationStatus.REJECTED),
    "record": (PreparationStatus.IN_PREPARATION,),
    "verify": (PreparationStatus.AWAITING_VERIFICATION,),
    "release": (PreparationStatus.AWAITING_VERIFICATION,),
    "administer": (PreparationStatus.RELEASED,),
    "end_administration": (PreparationStatus.ADMINISTERED,),
    "waste": (
        PreparationStatus.ORDERED, PreparationStatus.IN_PREPARATION, PreparationStatus.AWAITING_VERIFICATION,
        PreparationStatus.REJECTED, PreparationStatus.RELEASED,
    ),
}  # fmt: skip


def _locked(preparation: Preparation, action: str) -> Preparation:
    locked = (
        Preparation.objects.select_for_update(of=("self",))
        .select_related("dose__course__regimen__drug", "dose__course__patient")
        .get(pk=preparation.pk)
    )
    if locked.status not in _TRANSITIONS[action]:
        raise OrderConflict(
            f"Cannot {action.replace('_', ' ')} a preparation that is {locked.get_status_display().lower()}."
        )
    return locked


@transaction.atomic
def preparation_recalculate(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    """Redo the dose calculation with the patient's current weight and height."""
    prep = _locked(preparation, "recalculate")
    course = prep.dose.course
    _apply(prep, calculate_for(prep.dose, course.patient))
    prep.recalculation_needed = False
    prep.save()
    # The new weight is the reference for the 10 % check from now on.
    TreatmentCourse.objects.filter(pk=course.pk).update(
        weight_kg_at_start=course.patient.weight_kg, height_cm_at_start=course.patient.height_cm
    )
    return prep


def preparation_start(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    """A technician starts preparing: only a cleared (or overridden) dose, with an up-to-date calculation.
    A weight change of 10 % or more since the course started flags the order (the flag is kept) and refuses."""
    with transaction.atomic():
        prep = _locked(preparation, "start")
        dose, course = prep.dose, prep.dose.course
        if course.status != CourseStatus.ACTIVE or dose.status != DoseStatus.PLANNED:
            raise OrderConflict("The dose is not planned on an active course.")
        gate = dose_gate(dose, now=now)
        if not gate.is_open:
            raise DoseBlocked(gate.verdict, [f.text for f in gate.open_findings])
        if not prep.recalculation_needed and _weight_changed(course, course.patient):
            prep.recalculation_needed = True
            prep.save(update_fields=["recalculation_needed"])
        if not prep.recalculation_needed:
            prep.status, prep.prepared_by, prep.started_at = PreparationStatus.IN_PREPARATION, user, now
            prep.verified_by, prep.verified_at, prep.rejection_reason = None, None, ""
            fields = ["status", "prepared_by", "started_at", "verified_by", "verified_at", "rejection_reason"]
            prep.save(update_fields=fields)
            gate_record(dose=dose, gate=gate, user=user, now=now, purpose=GateCheckPurpose.START)
            return prep
    raise OrderConflict("The patient's weight changed by 10 % or more since the course started: recalculate first.")


@dataclass(frozen=True)
class ComponentInput:
    kind: ComponentKind
    product: str
    lot: str
    expiry: date
    volume_ml: Decimal
    count: int = 1


PREMEDICATION_WINDOW = timedelta(hours=4)


def _local(moment: datetime) -> datetime:
    from django.utils import timezone

    return timezone.localtime(moment)


def _hhmm(moment: datetime) -> str:
    return f"{_local(moment):%H:%M on %Y-%m-%d}"


def _choice(enum: type[bud.CompoundingCategory] | type[bud.Storage], value: str, field_name: str) -> str:
    try:
        return str(enum(value))
    except ValueError:
        raise ValidationError({field_name: f"Choose one of {', '.join(e.value for e in enum)}."}) from None


@transaction.atomic
def preparation_record(
    *,
    preparation: Preparation,
    components: Sequence[ComponentInput],
    category: str,
    storage: str,
    user: User,
    now: datetime,
    punctured_at: datetime | None = None,
) -> Preparation:
    """Record what went into the bag. Both beyond-use clocks (USP <797> "start administration by" and, where
    the label's in-use time includes the infusion, "end the infusion by") start at the first vial puncture or
    dilution (`punctured_at`, by default the start of preparation), never at recording. An expired vial, or
    one expiring before the later clock, is refused. A cell product is received and thawed instead."""
    prep = _locked(preparation, "record")
    if prep.prepared_by_id != user.pk:
        raise PermissionDenied("Only the technician who started this preparation can record it.")
    drug = prep.dose.course.regimen.drug
    if drug.cell_therapy:
        raise OrderConflict(
            f"{drug} is a cell product: record its receipt (certificate of analysis) and thaw, not vials."
        )
    if prep.volume_to_draw_ml is None:
        raise OrderConflict("The order has no volume to draw: recalculate it.")
    started = prep.started_at or now
    punctured = punctured_at or started
    if punctured_at is not None and punctured_at.tzinfo is None:
        raise ValidationError({"punctured_at": "Give the time with its time zone."})
    if not started <= punctured <= now:
        raise ValidationError(
            {"punctured_at": f"The first puncture lies between the start of preparation ({_hhmm(started)}) and now."}
        )
    use_by = bud.beyond_use(
        prepared_at=punctured, category=bud.CompoundingCategory(_choice(bud.CompoundingCategory, category, "category")),
        storage=bud.Storage(_choice(bud.Storage, storage, "storage")), stability_room=drug.stability_room,
        stability_refrigerated=drug.stability_refrigerated, stability_includes_infusion=drug.in_use_includes_infusion,
    )  # fmt: skip
    last_use = max(use_by.at, use_by.infusion_end_by or use_by.at)
    vials = [c for c in components if c.kind == ComponentKind.VIAL]
    if not vials:
        raise ValidationError({"components": "Record at least one drug vial with its lot and expiry."})
    for index, c in enumerate(components):
        where = f"components[{index}]."
        if not c.lot.strip():
            raise ValidationError({f"{where}lot": "The lot number is required."})
        if c.expiry < now.date():
            raise ValidationError({f"{where}expiry": f"{c.product} lot {c.lot} expired on {c.expiry:%Y-%m-%d}."})
        if c.expiry < _local(last_use).date():
            raise ValidationError(
                {f"{where}expiry": f"{c.product} lot {c.lot} expires {c.expiry:%Y-%m-%d}, before the beyond-use time."}
            )
        if c.kind == ComponentKind.VIAL and drug.name.lower() not in c.product.lower():
            raise ValidationError({f"{where}product": f"{c.product!r} is not {drug.name}."})
        if (
            c.kind == ComponentKind.DILUENT
            and drug.allowed_diluents
            and not any(d.lower() in c.product.lower() for d in drug.allowed_diluents)
        ):
            raise ValidationError(
                {f"{where}product": f"{drug.name} may be diluted in {', '.join(drug.allowed_diluents)} only."}
            )
    drawn = sum((c.volume_ml for c in vials), Decimal(0))
    if abs(drawn - prep.volume_to_draw_ml) > prep.volume_to_draw_ml * Decimal("0.05"):
        raise ValidationError({"components": f"Drawn {drawn} mL; the order needs {prep.volume_to_draw_ml} mL."})
    PreparationComponent.objects.bulk_create(
        PreparationComponent(
            preparation=prep,
            kind=c.kind,
            product=c.product.strip(),
            lot=c.lot.strip(),
            expiry=c.expiry,
            volume_ml=c.volume_ml,
            count=c.count,
        )
        for c in components
    )
    prep.status, prep.ended_at, prep.punctured_at = PreparationStatus.AWAITING_VERIFICATION, now, punctured
    prep.category, prep.storage = category, storage
    prep.beyond_use_at, prep.infusion_end_by, prep.beyond_use_note = (
        use_by.at,
        use_by.infusion_end_by,
        use_by.note[:200],
    )
    fields = ["status", "ended_at", "punctured_at", "category", "storage", "beyond_use_at", "infusion_end_by",
              "beyond_use_note"]  # fmt: skip
    prep.save(update_fields=fields)
    return prep


def expected_check_value(prep: Preparation, method: str) -> Decimal | None:
    """Gravimetric: the drawn drug volume weighed (density 1.0 g/mL unless set); volumetric: the final volume.
    None for a cell product (its check is the bag's identity, integrity and thaw time) or without a volume."""
    if method == VerificationMethod.GRAVIMETRIC:
        if prep.volume_to_draw_ml is None:
            return None
        return (prep.volume_to_draw_ml * Decimal(str(settings.PREPARATION_DENSITY_G_PER_ML))).quantize(Decimal("0.01"))
    if method == VerificationMethod.VOLUMETRIC:
        return prep.final_volume_ml
    return None


def _cell_verification_problems(prep: Preparation, coi_label: str, bag_intact: bool, now: datetime) -> list[str]:
    course = prep.dose.course
    problems = []
    if coi_label.strip() != course.chain_of_identity:
        problems.append(
            f"the bag's chain-of-identity label {coi_label.strip()!r} does not match this patient's product"
        )
    if not bag_intact:
        problems.append("the bag is not intact: do not infuse")
    if prep.beyond_use_at is None:
        problems.append("no thaw is recorded")
    elif now > prep.beyond_use_at:
        problems.append(
            f"thawed at {_hhmm(prep.ended_at or prep.beyond_use_at)}: infuse-by {_hhmm(prep.beyond_use_at)} has passed"
        )
    return problems


@transaction.atomic
def preparation_verify(
    *,
    preparation: Preparation,
    user: User,
    password: str,
    method: str,
    now: datetime,
    measured: Decimal | None = None,
    coi_label: str = "",
    bag_intact: bool | None = None,
) -> Preparation:
    """Independent check by another technician who re-enters their password. A compounded dose is weighed or
    measured: outside the tolerance (default ±5 %) it is rejected with the reason. A cell product's check is the
    bag's chain-of-identity label, its integrity and the time since thaw: any failure rejects it."""
    prep = _locked(preparation, "verify")
    if prep.prepared_by_id == user.pk:
        raise PermissionDenied("You prepared this dose: another technician must verify it.")
    if not user.check_password(password):
        raise PermissionDenied("Password does not match: re-enter your own password to sign the verification.")
    if prep.verified_at is not None:
        raise OrderConflict("This preparation is already verified.")
    if method not in VerificationMethod.values:
        raise ValidationError({"method": f"Choose one of {', '.join(VerificationMethod.values)}."})
    cell = prep.dose.course.regimen.drug.cell_therapy
    if cell != (method == VerificationMethod.CELL_PRODUCT):
        raise ValidationError(
            {"method": "A cell product is verified by its bag (cell_product)." if cell
             else "Weigh or measure a compounded dose (gravimetric or volumetric)."}
        )  # fmt: skip
    prep.verification_method, prep.verified_by, prep.verified_at = method, user, now
    if cell:
        if not coi_label.strip():
            raise ValidationError({"coi_label": "Scan the bag's chain-of-identity label."})
        if bag_intact is None:
            raise ValidationError({"bag_intact": "Confirm whether the bag is intact."})
        problems = _cell_verification_problems(prep, coi_label, bag_intact, now)
        prep.bag_intact, prep.expected_value, prep.measured_value = bag_intact, None, None
        if problems:
            prep.status = PreparationStatus.REJECTED
            prep.rejection_reason = "Cell product check failed: " + "; ".join(problems) + "."
        prep.save()
        return prep
    if measured is None:
        raise ValidationError({"measured": "Enter the measured value."})
    expected = expected_check_value(prep, method)
    if not expected:
        raise OrderConflict("The order has no volume to check against: recalculate it.")
    deviation = abs(measured - expected) / expected * 100
    prep.expected_value, prep.measured_value = expected, measured
    tolerance = Decimal(str(settings.PREPARATION_TOLERANCE_PERCENT))
    if deviation > tolerance:
        prep.status = PreparationStatus.REJECTED
        unit = "g" if method == VerificationMethod.GRAVIMETRIC else "mL"
        prep.rejection_reason = (
            f"{method.title()} check failed: measured {measured} {unit}, expected {expected} {unit} "
            f"({deviation:.1f} % off, tolerance ±{tolerance} %)."
        )
    prep.save()
    return prep


@transaction.atomic
def preparation_release(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    prep = _locked(preparation, "release")
    if prep.verified_at is None:
        raise OrderConflict("An independent verification must pass before release.")
    prep.status, prep.released_by, prep.released_at = PreparationStatus.RELEASED, user, now
    prep.save(update_fields=["status", "released_by", "released_at"])
    return prep


@dataclass
class ScanOutcome:
    preparation: Preparation
    check: IdentityCheck

    @property
    def matched(self) -> bool:
        return self.check.matched


def _bud_problem(prep: Preparation, now: datetime, infusion: timedelta) -> str | None:
    """Both stored clocks: start administration by, and (label in-use time) end the infusion by."""
    if prep.beyond_use_at is None:
        return "the preparation has no beyond-use time"
    stored = bud.BeyondUse(
        at=prep.beyond_use_at, limited_by="category", category_limit=timedelta(0), stability_limit=None,
        note=prep.beyond_use_note, infusion_end_by=prep.infusion_end_by,
    )  # fmt: skip
    return bud.administration_problem(bud=stored, starts_at=_local(now), infusion=infusion)


CHAIN_BEFORE_BEDSIDE = COI_ORDER[: COI_ORDER.index(CoiStep.BEDSIDE)]


def _cell_bedside_problems(prep: Preparation, coi_label: str, now: datetime, infusion: timedelta) -> list[str]:
    """The bag's COI label against the course, every hand-off recorded and matched in order, and the infusion
    ending within the thaw-to-infusion limit."""
    course, drug = prep.dose.course, prep.dose.course.regimen.drug
    problems = []
    scanned = coi_label.strip()
    if not scanned:
        problems.append("the bag's chain-of-identity label was not scanned")
    elif scanned != course.chain_of_identity:
        problems.append(f"the bag's chain-of-identity label {scanned} does not match this patient's product")
    first: dict[str, IdentityCheck] = {}
    for check in course.identity_checks.filter(matched=True, step__in=CHAIN_BEFORE_BEDSIDE).order_by("at", "id"):
        first.setdefault(check.step, check)
    missing = [step.label.lower() for step in CHAIN_BEFORE_BEDSIDE if step not in first]
    if missing:
        problems.append("hand-off not recorded: " + ", ".join(missing))
    elif [first[s].at for s in CHAIN_BEFORE_BEDSIDE] != sorted(first[s].at for s in CHAIN_BEFORE_BEDSIDE):
        problems.append("the hand-offs are not recorded in order (collection, shipment, receipt, thaw)")
    thaw = first.get(CoiStep.THAW)
    if thaw is not None and thaw.preparation_id not in (None, prep.pk):
        problems.append("the thaw recorded is of another bag")
    limit = drug.thaw_to_infusion_limit
    if limit is None:
        problems.append(f"the catalogue gives no thaw-to-infusion limit for {drug}")
    elif thaw is not None and now + infusion > thaw.at + limit:
        problems.append(
            f"thawed at {_hhmm(thaw.at)}: a {infusion.seconds // 60} min infusion starting {_hhmm(now)} would end "
            f"{_hhmm(now + infusion)}, after the {_hours(limit)} thaw-to-infusion limit ({_hhmm(thaw.at + limit)})"
        )
    return problems


def _hours(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")


def _premedication_problem(drug: Drug, given_at: datetime | None, note: str, now: datetime) -> str | None:
    if not drug.premedication:
        return None
    if given_at is None:
        return f"premedication not recorded ({drug.premedication}): record when it was given before starting"
    if given_at < now - PREMEDICATION_WINDOW:
        return f"premedication given {_hhmm(given_at)}, more than {_hours(PREMEDICATION_WINDOW)} before the infusion"
    if not note.strip():
        return "premedication note missing: record what was given"
    return None


def _rescue_problem(course: TreatmentCourse, drug: Drug) -> str | None:
    """Rescue doses on hand (tocilizumab x 2 before a CAR-T or bispecific), confirmed by pharmacy."""
    needed = drug.rescue_doses_required
    if needed <= 0:
        return None
    if not drug.rescue_drug:
        return f"the catalogue names no rescue drug for {drug}"
    latest = course.rescue_checks.filter(drug__iexact=drug.rescue_drug).order_by("-at", "-id").first()
    if latest is None:
        return f"{drug.rescue_drug} not confirmed on hand by pharmacy ({needed} doses required)"
    if latest.doses_on_hand < needed:
        return f"only {latest.doses_on_hand} dose(s) of {drug.rescue_drug} confirmed on hand, {needed} required"
    return None


@transaction.atomic
def preparation_administer(
    *,
    preparation: Preparation,
    wristband: str,
    label: str,
    user: User,
    now: datetime,
    coi_label: str = "",
    premedication_given_at: datetime | None = None,
    premedication_note: str = "",
) -> ScanOutcome:
    """Bedside check before the infusion starts: the wristband must carry the patient's MRN and the label this
    preparation's code; both beyond-use clocks must allow the whole infusion; the premedication the drug needs
    must be recorded (at most 4 h before); rescue doses on hand where the drug needs them; the dose gate must
    still be open. A cell product also needs its chain-of-identity label, every hand-off in order and the
    infusion ending within the thaw limit. Any failure is a hard stop: recorded, nothing else changes (callers
    answer 409)."""
    if premedication_given_at is not None and premedication_given_at > now:
        raise ValidationError({"premedication_given_at": "The premedication cannot have been given in the future."})
    if len(premedication_note) > 200:
        raise ValidationError({"premedication_note": "At most 200 characters."})
    prep = _locked(preparation, "administer")
    course = prep.dose.course
    patient, regimen, drug = course.patient, course.regimen, course.regimen.drug
    infusion = timedelta(minutes=regimen.infusion_minutes)
    problems = []
    if wristband.strip().upper() != patient.mrn:
        problems.append("wristband does not match the patient")
    if label.strip().upper() != prep.code:
        problems.append("label does not match this preparation")
    if drug.cell_therapy:
        problems += _cell_bedside_problems(prep, coi_label, now, infusion)
    else:
        problems.append(_bud_problem(prep, now, infusion) or "")
    problems.append(_premedication_problem(drug, premedication_given_at, premedication_note, now) or "")
    problems.append(_rescue_problem(course, drug) or "")
    gate = dose_gate(prep.dose, now=now)
    if not gate.is_open:
        reasons = [f.text for f in gate.open_findings] or gate.reasons + gate.pending
        problems.append(f"the dose gate is now {gate.verdict}: {'; '.join(reasons)}")
    problems = [p for p in problems if p]
    note = "STOP: " + "; ".join(problems) if problems else ""
    if drug.cell_therapy:
        note = f"{note} (COI label scanned: {coi_label.strip()[:40] or 'none'})".strip()
    check = IdentityCheck.objects.create(
        preparation=prep, course=course, step=CoiStep.BEDSIDE, at=now, by=user, scanned_wristband=wristband[:40],
        scanned_label=label[:40], matched=not problems, note=note,
    )  # fmt: skip
    if not problems:
        prep.status, prep.administered_by, prep.administration_started_at = PreparationStatus.ADMINISTERED, user, now
        prep.premedication_given_at, prep.premedication_note = premedication_given_at, premedication_note.strip()
        prep.save(
            update_fields=["status", "administered_by", "administration_started_at", "premedication_given_at",
                           "premedication_note"]
        )  # fmt: skip
        Dose.objects.filter(pk=prep.dose_id).update(status=DoseStatus.GIVEN)
        gate_record(dose=prep.dose, gate=gate, user=user, now=now, purpose=GateCheckPurpose.ADMINISTER)
    return ScanOutcome(prep, check)


@transaction.atomic
def preparation_end_administration(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    prep = _locked(preparation, "end_administration")
    if prep.administration_ended_at is not None:
        raise OrderConflict("The infusion end is already recorded.")
    prep.administration_ended_at, prep.closed_at = now, now
    prep.save(update_fields=["administration_ended_at", "closed_at"])
    return prep


@transaction.atomic
def preparation_waste(*, preparation: Preparation, user: User, now: datetime, reason: str) -> Preparation:
    """Waste with a reason; the dose gets a fresh order (the wasted one stays on record)."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the preparation is wasted."})
    prep = _locked(preparation, "waste")
    prep.status, prep.wasted_reason, prep.closed_at = PreparationStatus.WASTED, reason.strip(), now
    prep.save(update_fields=["status", "wasted_reason", "closed_at"])
    if prep.dose.status == DoseStatus.PLANNED and prep.dose.course.status == CourseStatus.ACTIVE:
        _order_preparation(prep.dose, now)
    return prep


def use_by(prep: Preparation) -> datetime | None:
    """The earlier of the preparation's two clocks: after it, no infusion can be given in time."""
    clocks = [t for t in (prep.beyond_use_at, prep.infusion_end_by) if t is not None]
    return min(clocks) if clocks else None


def preparations_expire(*, now: datetime) -> list[int]:
    """Released preparations past either beyond-use clock expire; the lab is alerted once for each."""
    with transaction.atomic():
        released = Preparation.objects.select_for_update(skip_locked=True).filter(status=PreparationStatus.RELEASED)
        expired = list(
            (released.filter(beyond_use_at__lte=now) | released.filter(infusion_end_by__lte=now))
            .select_related("dose__course__regimen__drug", "dose__course")
            .order_by("id")
        )
        for prep in expired:
            prep.status, prep.closed_at = PreparationStatus.EXPIRED, now
            prep.save(update_fields=["status", "closed_at"])
        alerts_raise(
            kind=AlertKind.PREPARATION_EXPIRED,
            severity=AlertSeverity.HIGH,
            subject_model=Preparation,
            conditions=[
                AlertCondition(
                    p.pk,
                    p.dose.course.patient_id,
                    f"{p.code} {p.dose.course.regimen.drug} expired unused (BUD {_local(use_by(p) or now):%H:%M})",
                )
                for p in expired
            ],
            now=now,
            audience=AlertAudience.LAB,
        )
        for prep in expired:
            if prep.dose.status == DoseStatus.PLANNED:
                _order_preparation(prep.dose, now)
    return [p.pk for p in expired]


# Recorded with the preparation they belong to (cell_product_receive, cell_product_thaw, preparation_administer).
PREPARATION_STEPS = (CoiStep.RECEIPT, CoiStep.THAW, CoiStep.BEDSIDE)


@transaction.atomic
def chain_of_identity_handoff(
    *,
    course: TreatmentCourse,
    step: str,
    scanned: str,
    user: User,
    now: datetime,
    note: str = "",
    preparation: Preparation | None = None,
) -> IdentityCheck:
    """Log a CAR-T hand-off in order. A scanned ID that does not match is recorded as a mismatch and
    the step stays undone (callers answer 409). Receipt and thaw belong to the bag's preparation (the receipt
    carries the certificate of analysis, the thaw starts the infusion clock); the bedside step is the
    administration scan."""
    course = TreatmentCourse.objects.select_for_update().get(pk=course.pk)
    if not course.chain_of_identity:
        raise ValidationError({"course": "This course has no chain-of-identity ID."})
    if step not in CoiStep.values:
        raise ValidationError({"step": f"Unknown step {step!r}."})
    if step == CoiStep.BEDSIDE:
        raise ValidationError({"step": "The bedside check is the administration scan of the preparation."})
    if step in PREPARATION_STEPS and preparation is None:
        raise ValidationError(
            {"step": f"{CoiStep(step).label} is recorded on the preparation (receive, thaw), not as a bare hand-off."}
        )
    if preparation is not None and preparation.dose.course_id != course.pk:
        raise ValidationError({"preparation": "This preparation is not of this course."})
    done = set(course.identity_checks.filter(matched=True).values_list("step", flat=True))
    index = COI_ORDER.index(CoiStep(step))
    missing = [s.label for s in COI_ORDER[:index] if s not in done]
    if step in done:
        raise OrderConflict(f"{CoiStep(step).label} is already recorded.")
    if missing:
        raise OrderConflict(f"Record {', '.join(missing)} first.")
    matched = scanned.strip() == course.chain_of_identity
    stop = "" if matched else "STOP: the chain-of-identity ID does not match this patient's product. "
    return IdentityCheck.objects.create(
        preparation=preparation, course=course, step=step, at=now, by=user, scanned_label=scanned[:40],
        matched=matched, note=(stop + note).strip(),
    )  # fmt: skip
