"""Writes on treatment courses, doses and preparations, and the dose gate (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.services import AlertCondition, alerts_raise
from labflow.errors import Conflict
from monitoring.choices import AWAITING_COLLECTION, AWAITING_RESULT, MonitoringTestStatus
from monitoring.services import monitoring_test_cancel, monitoring_test_schedule
from orders import bud, dosing
from orders.choices import (
    COI_ORDER,
    CoiStep,
    Comparator,
    ComponentKind,
    CourseStatus,
    DoseStatus,
    GateVerdict,
    PreparationStatus,
    Reference,
    RuleKind,
    VerificationMethod,
)
from orders.models import (
    CourseMonitoringTest,
    Dose,
    HoldRule,
    IdentityCheck,
    MonitoringRule,
    Preparation,
    PreparationComponent,
    Regimen,
    TreatmentCourse,
)
from patients.models import Patient
from results.choices import VERIFIED
from results.models import Result


class OrderConflict(Conflict):
    """The course, dose or preparation is not in a state that allows this step (HTTP 409)."""


class DoseBlocked(OrderConflict):
    """The dose gate is closed; carries the reasons."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("Dose blocked: " + "; ".join(reasons))


# --- Courses -----------------------------------------------------------------------------------------


def _rule_due_times(
    rule: MonitoringRule, doses: Sequence[Dose], starts_at: datetime
) -> list[tuple[datetime, Dose | None]]:
    """When a monitoring rule wants its test, and for which dose (pre-dose rules gate that dose)."""
    if rule.kind == RuleKind.PRE_DOSE:
        return [(d.planned_at - timedelta(hours=rule.lead_hours), d) for d in doses]
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
    *, patient: Patient, regimen: Regimen, starts_at: datetime, user: User, now: datetime, chain_of_identity: str = ""
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
        height_cm_at_start=patient.height_cm, chain_of_identity=chain_of_identity.strip(), started_by=user,
        created_at=now,
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


def calculate_for(dose: Dose, patient: Patient) -> dosing.DoseCalculation:
    regimen = dose.course.regimen
    drug = regimen.drug
    try:
        return dosing.calculate_dose(
            basis=dosing.DoseBasis(regimen.dose_basis), amount=regimen.dose_amount, weight_kg=patient.weight_kg,
            height_cm=patient.height_cm, strength_mg_per_ml=drug.strength_mg_per_ml,
            vial_contents_mg=list(drug.vial_contents_mg), concentration_min=drug.concentration_min,
            concentration_max=drug.concentration_max, max_dose_mg=regimen.max_dose_mg,
            rounding_tolerance_percent=Decimal(str(settings.DOSE_ROUNDING_TOLERANCE_PERCENT)),
        )  # fmt: skip
    except dosing.DoseError as error:
        raise ValidationError({error.field: error.reason}) from None


def _weight_changed(course: TreatmentCourse, patient: Patient) -> bool:
    start = course.weight_kg_at_start
    return abs(patient.weight_kg - start) / start * 100 >= Decimal(str(settings.RECALCULATE_WEIGHT_CHANGE_PERCENT))


def _apply(preparation: Preparation, calc: dosing.DoseCalculation) -> None:
    preparation.calculation = calc.as_record()
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


@dataclass
class Gate:
    verdict: GateVerdict
    reasons: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def _rule_broken(rule: HoldRule, result: Result) -> str | None:
    value = result.value_numeric
    if value is None:
        return None
    if rule.reference == Reference.ABSOLUTE:
        limit = rule.threshold
    else:
        base = result.reference_high if rule.reference == Reference.ULN else result.reference_low
        if base is None:
            return None
        limit = rule.threshold * base
    broken = value > limit if rule.comparator == Comparator.GREATER else value < limit
    if not broken:
        return None
    return f"{rule.description}: {result.lab_test.name} {result.display_value} on {result.observed_at:%Y-%m-%d}"


def dose_gates(doses: Sequence[Dose], *, now: datetime) -> dict[int, Gate]:
    """The gate of many doses in a constant number of queries (worklists): pre-dose labs drawn in the
    window and verified, and no hold rule broken by the latest verified results."""
    if not doses:
        return {}
    links_by_dose: dict[int, list[CourseMonitoringTest]] = {d.pk: [] for d in doses}
    links = CourseMonitoringTest.objects.filter(dose__in=doses, rule__gates_dose=True).select_related(
        "monitoring_test__lab_test", "rule"
    )
    for link in links:
        links_by_dose[link.dose_id].append(link)  # type: ignore[index]
    holds = list(HoldRule.objects.filter(active=True).select_related("lab_test"))
    earliest = min(d.planned_at for d in doses) - timedelta(days=max((h.lookback_days for h in holds), default=0))
    latest: dict[tuple[int, int], Result] = {}
    recent = (
        Result.objects.filter(
            patient_id__in={d.course.patient_id for d in doses},
            lab_test_id__in={h.lab_test_id for h in holds},
            status__in=VERIFIED,
            is_current=True,
            observed_at__gte=earliest,
            observed_at__lte=max(d.planned_at for d in doses),
        )
        .select_related("lab_test")
        .order_by("patient_id", "lab_test_id", "-observed_at", "-id")
    )
    for result in recent:
        latest.setdefault((result.patient_id, result.lab_test_id), result)
    return {dose.pk: _gate(dose, links_by_dose[dose.pk], holds, latest) for dose in doses}


def _gate(
    dose: Dose, links: list[CourseMonitoringTest], holds: list[HoldRule], latest: dict[tuple[int, int], Result]
) -> Gate:
    reasons: list[str] = []
    pending: list[str] = []
    for link in links:
        test, rule = link.monitoring_test, link.rule
        name = test.lab_test.name
        window_start = dose.planned_at - timedelta(hours=rule.window_hours)
        if test.status in (MonitoringTestStatus.CANCELLED, MonitoringTestStatus.RECOLLECT):
            continue
        if test.collected_at is None:
            reasons.append(f"{name} not collected yet (due {test.due_at:%Y-%m-%d %H:%M})")
        elif test.collected_at < window_start:
            when = f"{test.collected_at:%Y-%m-%d %H:%M}"
            reasons.append(f"{name} collected {when}, before the {rule.window_hours} h window")
        elif test.status != MonitoringTestStatus.SATISFIED:
            pending.append(f"{name} collected, verified result pending")
    for hold in holds:
        if hold.regimen_id not in (None, dose.course.regimen_id):
            continue
        result = latest.get((dose.course.patient_id, hold.lab_test_id))
        if result is None or result.observed_at < dose.planned_at - timedelta(days=hold.lookback_days):
            continue
        broken = _rule_broken(hold, result)
        if broken:
            reasons.append(broken)
    if not reasons and not pending:
        return Gate(GateVerdict.CLEARED)
    if dose.override_at is not None:
        overridden = f"Overridden by {dose.override_by}: {dose.override_reason}"
        return Gate(GateVerdict.OVERRIDDEN, [overridden, *reasons], pending)
    return Gate(GateVerdict.BLOCKED, reasons, pending)


def dose_gate(dose: Dose, *, now: datetime) -> Gate:
    """Cleared, blocked or overridden, with the reasons (see `dose_gates`)."""
    return dose_gates([dose], now=now)[dose.pk]


@transaction.atomic
def dose_override(*, dose: Dose, user: User, now: datetime, reason: str) -> Dose:
    if not reason.strip():
        raise ValidationError({"reason": "An override needs a reason."})
    dose = Dose.objects.select_for_update().get(pk=dose.pk)
    if dose.status != DoseStatus.PLANNED:
        raise OrderConflict(f"Dose {dose.number} is {dose.get_status_display().lower()}.")
    if dose_gate(dose, now=now).verdict != GateVerdict.BLOCKED:
        raise OrderConflict("Only a blocked dose can be overridden.")
    dose.override_by, dose.override_at, dose.override_reason = user, now, reason.strip()
    dose.save(update_fields=["override_by", "override_at", "override_reason"])
    return dose


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
        if gate.verdict == GateVerdict.BLOCKED:
            raise DoseBlocked(gate.reasons + gate.pending)
        if not prep.recalculation_needed and _weight_changed(course, course.patient):
            prep.recalculation_needed = True
            prep.save(update_fields=["recalculation_needed"])
        if not prep.recalculation_needed:
            prep.status, prep.prepared_by, prep.started_at = PreparationStatus.IN_PREPARATION, user, now
            prep.verified_by, prep.verified_at, prep.rejection_reason = None, None, ""
            fields = ["status", "prepared_by", "started_at", "verified_by", "verified_at", "rejection_reason"]
            prep.save(update_fields=fields)
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


@transaction.atomic
def preparation_record(
    *,
    preparation: Preparation,
    components: Sequence[ComponentInput],
    category: str,
    storage: str,
    user: User,
    now: datetime,
) -> Preparation:
    """Record what went into the bag; an expired vial, or one expiring before the beyond-use time, is refused."""
    prep = _locked(preparation, "record")
    if prep.prepared_by_id != user.pk:
        raise PermissionDenied("Only the technician who started this preparation can record it.")
    drug = prep.dose.course.regimen.drug
    use_by = bud.beyond_use(
        prepared_at=now, category=bud.CompoundingCategory(category), storage=bud.Storage(storage),
        stability_room=drug.stability_room, stability_refrigerated=drug.stability_refrigerated,
    )  # fmt: skip
    vials = [c for c in components if c.kind == ComponentKind.VIAL]
    if not vials:
        raise ValidationError({"components": "Record at least one drug vial with its lot and expiry."})
    for index, c in enumerate(components):
        where = f"components[{index}]."
        if not c.lot.strip():
            raise ValidationError({f"{where}lot": "The lot number is required."})
        if c.expiry < now.date():
            raise ValidationError({f"{where}expiry": f"{c.product} lot {c.lot} expired on {c.expiry:%Y-%m-%d}."})
        if c.expiry < use_by.at.date():
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
    prep.status, prep.ended_at = PreparationStatus.AWAITING_VERIFICATION, now
    prep.category, prep.storage = category, storage
    prep.beyond_use_at, prep.beyond_use_note = use_by.at, use_by.note[:200]
    prep.save(update_fields=["status", "ended_at", "category", "storage", "beyond_use_at", "beyond_use_note"])
    return prep


def expected_check_value(prep: Preparation, method: str) -> Decimal:
    """Gravimetric: the drawn drug volume weighed (density 1.0 g/mL unless set); volumetric: the final volume."""
    if method == VerificationMethod.GRAVIMETRIC:
        return (prep.volume_to_draw_ml * Decimal(str(settings.PREPARATION_DENSITY_G_PER_ML))).quantize(Decimal("0.01"))
    return prep.final_volume_ml


@transaction.atomic
def preparation_verify(
    *, preparation: Preparation, user: User, password: str, method: str, measured: Decimal, now: datetime
) -> Preparation:
    """Independent check by another technician who re-enters their password; outside the tolerance
    (default ±5 %) the preparation is rejected with the reason."""
    prep = _locked(preparation, "verify")
    if prep.prepared_by_id == user.pk:
        raise PermissionDenied("You prepared this dose: another technician must verify it.")
    if not user.check_password(password):
        raise PermissionDenied("Password does not match: re-enter your own password to sign the verification.")
    if prep.verified_at is not None:
        raise OrderConflict("This preparation is already verified.")
    if method not in VerificationMethod.values:
        raise ValidationError({"method": "Choose gravimetric or volumetric."})
    expected = expected_check_value(prep, method)
    deviation = abs(measured - expected) / expected * 100
    prep.verification_method, prep.expected_value, prep.measured_value = method, expected, measured
    prep.verified_by, prep.verified_at = user, now
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


@transaction.atomic
def preparation_administer(
    *, preparation: Preparation, wristband: str, label: str, user: User, now: datetime
) -> ScanOutcome:
    """Bedside check: the wristband must carry the patient's MRN and the label this preparation's code.
    A mismatch is a hard stop: it is recorded and nothing else changes (callers answer 409)."""
    prep = _locked(preparation, "administer")
    patient, course = prep.dose.course.patient, prep.dose.course
    problems = []
    if wristband.strip().upper() != patient.mrn:
        problems.append("wristband does not match the patient")
    if label.strip().upper() != prep.code:
        problems.append("label does not match this preparation")
    if prep.beyond_use_at is not None and prep.beyond_use_at <= now:
        problems.append("the preparation is past its beyond-use time")
    check = IdentityCheck.objects.create(
        preparation=prep, course=course, step=CoiStep.BEDSIDE, at=now, by=user, scanned_wristband=wristband[:40],
        scanned_label=label[:40], matched=not problems, note="STOP: " + "; ".join(problems) if problems else "",
    )  # fmt: skip
    if not problems:
        prep.status, prep.administered_by, prep.administration_started_at = PreparationStatus.ADMINISTERED, user, now
        prep.save(update_fields=["status", "administered_by", "administration_started_at"])
        Dose.objects.filter(pk=prep.dose_id).update(status=DoseStatus.GIVEN)
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


def preparations_expire(*, now: datetime) -> list[int]:
    """Released preparations past their beyond-use time expire; the lab is alerted once for each."""
    with transaction.atomic():
        expired = list(
            Preparation.objects.select_for_update(skip_locked=True)
            .filter(status=PreparationStatus.RELEASED, beyond_use_at__lte=now)
            .select_related("dose__course__regimen__drug", "dose__course")
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
                    f"{p.code} {p.dose.course.regimen.drug} expired unused (BUD {p.beyond_use_at:%H:%M})",
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


@transaction.atomic
def chain_of_identity_handoff(
    *, course: TreatmentCourse, step: str, scanned: str, user: User, now: datetime, note: str = ""
) -> IdentityCheck:
    """Log a CAR-T hand-off in order. A scanned ID that does not match is recorded as a mismatch and
    the step stays undone (callers answer 409)."""
    course = TreatmentCourse.objects.select_for_update().get(pk=course.pk)
    if not course.chain_of_identity:
        raise ValidationError({"course": "This course has no chain-of-identity ID."})
    if step not in CoiStep.values:
        raise ValidationError({"step": f"Unknown step {step!r}."})
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
        course=course, step=step, at=now, by=user, scanned_label=scanned[:40], matched=matched, note=stop + note
    )
