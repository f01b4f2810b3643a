from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, Max, OuterRef, Prefetch, Q, QuerySet, prefetch_related_objects

from accounts.selectors import AnyUser
from orders import bags, dosing, lesions
from orders.choices import (
    CELL_BASES,
    CourseStatus,
    DoseBasis,
    DoseStatus,
    GateCheckPurpose,
    PreparationStatus,
    VerificationMethod,
)
from orders.gate import Gate, band_for, band_problem, dose_gates, first_dose_times
from orders.models import (
    Dose,
    Drug,
    ExposureReport,
    GateCheck,
    HoldRule,
    IdentityCheck,
    Preparation,
    Regimen,
    RegimenStep,
    RescueMedicationCheck,
    TherapyPlan,
    TherapyPlanPhase,
    TreatmentCourse,
    TreatmentPlan,
)
from orders.schedule import dose_offsets
from patients.models import Patient
from patients.selectors import visible_patient_filter

LIVE = [s for s in PreparationStatus if s not in (PreparationStatus.EXPIRED, PreparationStatus.WASTED)]


def drug_list() -> QuerySet[Drug]:
    return Drug.objects.all()


def active_regimens() -> QuerySet[Regimen]:
    return Regimen.objects.filter(active=True)


def exposure_report_list() -> QuerySet[ExposureReport]:
    """Every exposure report (pharmacy serves every patient), newest first."""
    return ExposureReport.objects.select_related("drug", "reported_by", "preparation").order_by("-occurred_at", "-id")


def exposure_drugs() -> QuerySet[Drug]:
    """The products an exposure is reported for: hazardous drugs and genetically modified or viral products."""
    return Drug.objects.filter(Q(hazardous=True) | Q(intralesional=True) | ~Q(biosafety_level="")).order_by("name")


def regimen_list() -> QuerySet[Regimen]:
    """Active regimens with their monitoring plans."""
    return active_regimens().prefetch_related("monitoring_rules__lab_test", "steps")


def hold_rule_list(*, all_versions: bool = False) -> QuerySet[HoldRule]:
    """The hold rules in force (current versions), or every version."""
    rules = HoldRule.objects.select_related("lab_test").prefetch_related("drugs", "regimens")
    return rules if all_versions else rules.filter(active=True, superseded_by__isnull=True)


def course_list(*, user: AnyUser) -> QuerySet[TreatmentCourse]:
    return TreatmentCourse.objects.filter(**visible_patient_filter(user=user)).select_related(
        "patient", "regimen__drug", "started_by"
    )


def dose_list(*, user: AnyUser) -> QuerySet[Dose]:
    return Dose.objects.filter(**visible_patient_filter(user=user, prefix="course__patient__")).select_related(
        "course__patient", "course__regimen__drug"
    )


def preparation_list(*, user: AnyUser) -> QuerySet[Preparation]:
    return (
        Preparation.objects.filter(**visible_patient_filter(user=user, prefix="dose__course__patient__"))
        .select_related("dose__course__patient", "dose__course__regimen__drug", "prepared_by", "verified_by")
        .prefetch_related("components", Prefetch("identity_checks", queryset=IdentityCheck.objects.order_by("at")))
    )


def patient_courses(*, user: AnyUser, patient: Patient) -> QuerySet[TreatmentCourse]:
    return course_list(user=user).filter(patient=patient)


def course_doses(*, user: AnyUser, course: TreatmentCourse) -> QuerySet[Dose]:
    return dose_list(user=user).filter(course=course).order_by("number")


def dose_gates_shown(doses: Sequence[Dose], *, now: datetime) -> dict[int, Gate]:
    """`dose_gates` for a page that shows each decision's hold rules (the API): loaded for the page at once."""
    gates = dose_gates(doses, now=now)
    prefetch_related_objects([decision for gate in gates.values() for decision in gate.decisions], "hold_rules")
    return gates


def ward_preparation_list(*, user: AnyUser) -> QuerySet[Preparation]:
    """Released preparations for the user's patients, and infusions running (to record their end)."""
    running = Q(status=PreparationStatus.ADMINISTERED, administration_ended_at__isnull=True)
    return (
        preparation_list(user=user).filter(Q(status=PreparationStatus.RELEASED) | running).order_by("dose__planned_at")
    )


@dataclass
class WorklistRow:
    dose: Dose
    gate: Gate
    preparation: Preparation | None


# The columns the worklist shows or its gate reads (docs/architecture.md §6, worklists p95 ≤ 150 ms): a page
# of 100 doses decodes no calculation JSON and builds no user, regimen or drug per row.
WORKLIST_DOSE_FIELDS = (
    "number", "planned_at", "status", "course", "course__regimen", "course__patient",
    "course__patient__family_name", "course__patient__given_name", "course__patient__mrn",
    "course__patient__weight_kg", "bag_hours", "bag_step", "starts_step",
)  # fmt: skip
WORKLIST_PREPARATION_FIELDS = (
    "dose", "status", "dose_mg", "volume_to_draw_ml", "final_volume_ml", "concentration_mg_per_ml",
    "recalculation_needed", "concentration_pfu_per_ml", "max_volume_ml",
)  # fmt: skip


def worklist_doses(*, user: AnyUser, start: datetime, days: int = 2) -> QuerySet[Dose]:
    """The planned doses of the window; `worklist_rows` attaches their regimens."""
    return (
        dose_list(user=user)
        .filter(status=DoseStatus.PLANNED, planned_at__gte=start, planned_at__lt=start + timedelta(days=days))
        .select_related(None)
        .select_related("course__patient")
        .only(*WORKLIST_DOSE_FIELDS)
        .prefetch_related(
            Prefetch(
                "preparations",
                queryset=Preparation.objects.filter(status__in=LIVE).only(*WORKLIST_PREPARATION_FIELDS).order_by("pk"),
                to_attr="live",
            )
        )
        .order_by("planned_at", "id")
    )


def worklist_rows(doses: list[Dose], now: datetime) -> list[WorklistRow]:
    """Rows for doses from `worklist_doses` (their live order is prefetched as `live`)."""
    # A handful of regimens serve the whole page: one shared instance each (with its drug), not one per row.
    regimens = Regimen.objects.select_related("drug").in_bulk({dose.course.regimen_id for dose in doses})
    for dose in doses:
        dose.course.regimen = regimens[dose.course.regimen_id]
    gates = dose_gates(doses, now=now)
    rows = []
    for dose in doses:
        live: list[Preparation] = getattr(dose, "live", [])
        rows.append(WorklistRow(dose, gates[dose.pk], live[0] if live else None))
    return rows


def verification_queue(*, user: AnyUser) -> QuerySet[Preparation]:
    """Preparations awaiting verification that the user did not prepare."""
    return (
        preparation_list(user=user)
        .filter(status=PreparationStatus.AWAITING_VERIFICATION, verified_at__isnull=True)
        .exclude(prepared_by_id=getattr(user, "pk", None))
        .order_by("ended_at")
    )


def dose_dates_for_patient(*, user: AnyUser, patient_id: int) -> list[str]:
    """Given and planned dose times of a patient's courses, for lab trend charts."""
    doses = dose_list(user=user).filter(course__patient_id=patient_id).exclude(status=DoseStatus.CANCELLED)
    return [d.isoformat() for d in doses.values_list("planned_at", flat=True)]


def patient_doses_between(
    *, user: AnyUser, patient: Patient, start: datetime, end: datetime, limit: int = 300
) -> list[Dose]:
    """A patient's doses planned in [start, end), in time order (the first `limit`), for the timeline: each with its
    preparations (oldest first, as `timeline_preparations`) and its bedside gate checks (`bedside_checks`), in a
    constant number of queries however many doses."""
    return list(
        dose_list(user=user)
        .filter(course__patient=patient, planned_at__gte=start, planned_at__lt=end)
        .prefetch_related(
            Prefetch("preparations", queryset=Preparation.objects.order_by("pk"), to_attr="timeline_preparations"),
            Prefetch(
                "gate_checks",
                queryset=GateCheck.objects.filter(purpose=GateCheckPurpose.ADMINISTER).order_by("at", "id"),
                to_attr="bedside_checks",
            ),
        )
        .order_by("planned_at", "id")[:limit]
    )


def final_volume_cap(drug: Drug, weight_kg: Decimal) -> Decimal | None:
    """The label's largest infusion volume for this patient (nivolumab: 160 mL; 4 mL/kg under 40 kg)."""
    if (
        drug.max_final_volume_ml_per_kg is not None
        and drug.per_kg_volume_below_kg is not None
        and weight_kg < drug.per_kg_volume_below_kg
    ):
        return (drug.max_final_volume_ml_per_kg * weight_kg).quantize(Decimal("0.1"))
    return drug.max_final_volume_ml


@dataclass(frozen=True)
class PlannedDose:
    number: int
    offset: timedelta  # after the first dose
    step: RegimenStep | None


def regimen_schedule(regimen: Regimen) -> list[PlannedDose]:
    """Every dose of the regimen with its day and its step-up step, if any (orders.schedule)."""
    steps = {step.dose_number: step for step in regimen.steps.all()}
    offsets = dose_offsets(
        steps=[(s.dose_number, s.day) for s in steps.values()], cycle_days=regimen.cycle_days,
        number_of_doses=regimen.number_of_doses, first_interval_days=regimen.first_interval_days,
        cycle_hours=regimen.cycle_hours,
    )  # fmt: skip
    return [PlannedDose(n, offset, steps.get(n)) for n, offset in enumerate(offsets, start=1)]


def dose_step(dose: Dose) -> RegimenStep | None:
    """The step-up step of this dose (by its number in the course's regimen), if it is one. The one place that
    says which amount, vial, premedication and hospital stay a dose has beyond the regimen's."""
    return dose_steps([dose]).get(dose.pk)


def _step_key(dose: Dose) -> tuple[int, int] | None:
    """Which regimen step a dose is: by its number; a bag of a continuous infusion only when it is the first bag at
    its step's daily dose (the premedication and hospital stay go with that bag, not with every bag)."""
    if dose.bag_step is None:
        return (dose.course.regimen_id, dose.number)
    return (dose.course.regimen_id, dose.bag_step) if dose.starts_step else None


def dose_steps(doses: Sequence[Dose]) -> dict[int, RegimenStep]:
    """`dose_step` for a page of doses at once: by dose id."""
    keyed = {d.pk: key for d in doses if (key := _step_key(d)) is not None}
    keys = set(keyed.values())
    steps = RegimenStep.objects.filter(regimen_id__in={r for r, _ in keys}, dose_number__in={n for _, n in keys})
    by_key = {(s.regimen_id, s.dose_number): s for s in steps}
    return {pk: by_key[key] for pk, key in keyed.items() if key in by_key}


@dataclass(frozen=True)
class HospitalStay:
    course: TreatmentCourse
    dose: Dose
    until: datetime
    given: bool  # False: the stay follows the planned dose


def hospital_stays(doses: Sequence[Dose], *, now: datetime) -> dict[int, HospitalStay]:
    """The label's hospital stay after each step-up dose (teclistamab: 48 h), by dose id: from the start of the
    administration when given, else from the planned time; stays already over are left out."""
    steps = dose_steps(doses)
    stays = {}
    started = Preparation.objects.filter(
        dose__in=[d for d in doses if d.pk in steps], administration_started_at__isnull=False
    )
    given_at = dict(started.values_list("dose_id", "administration_started_at"))
    for dose in doses:
        step = steps.get(dose.pk)
        if step is None or not step.hospital_stay_hours or dose.status == DoseStatus.CANCELLED:
            continue
        start = given_at.get(dose.pk) or dose.planned_at
        until = start + timedelta(hours=step.hospital_stay_hours)
        if until >= now:
            stays[dose.pk] = HospitalStay(dose.course, dose, until, dose.pk in given_at)
    return stays


# A stay is shown from this long before its step-up dose (planned) until it ends.
STAY_SHOWN_AHEAD = timedelta(hours=48)


def ward_hospital_stays(*, user: AnyUser, now: datetime) -> list[HospitalStay]:
    """The user's patients who must stay in hospital after a step-up dose (given, or planned within 48 h), with
    the end of the stay; soonest end first."""
    with_stay = RegimenStep.objects.filter(regimen_id=OuterRef("course__regimen_id"), hospital_stay_hours__gt=0)
    # A dose is its step by number; a bag only when it is the first at its step's daily dose (`_step_key`).
    is_step = Q(Exists(with_stay.filter(dose_number=OuterRef("number"))), bag_step__isnull=True) | Q(
        Exists(with_stay.filter(dose_number=OuterRef("bag_step"))), starts_step=True
    )
    longest = RegimenStep.objects.aggregate(longest=Max("hospital_stay_hours"))["longest"] or 0
    doses = list(
        dose_list(user=user)
        .filter(is_step, planned_at__gte=now - timedelta(hours=longest) - timedelta(days=7))
        .filter(
            Q(status=DoseStatus.GIVEN)
            | Q(status=DoseStatus.PLANNED, course__status=CourseStatus.ACTIVE, planned_at__lte=now + STAY_SHOWN_AHEAD)
        )
        .order_by("planned_at")
    )
    stays = hospital_stays(doses, now=now)
    return sorted(stays.values(), key=lambda stay: stay.until)


@dataclass(frozen=True)
class BagChange:
    """A running bag of a continuous infusion and when the next one must go up (orders.bags.next_bag_due)."""

    preparation: Preparation
    started_at: datetime
    hours: int
    next_due: datetime
    next_dose: Dose | None  # the next planned bag, if the course has one


def ward_bag_changes(*, user: AnyUser) -> list[BagChange]:
    """The user's patients with a bag running (started, not ended): when its successor is due; soonest first."""
    running = (
        preparation_list(user=user)
        .filter(
            status=PreparationStatus.ADMINISTERED,
            administration_ended_at__isnull=True,
            administration_started_at__isnull=False,
            dose__bag_hours__isnull=False,
        )
        .select_related("dose__course__patient", "dose__course__regimen")
    )
    bags_running = [p for p in running if p.administration_started_at is not None and p.dose.bag_hours is not None]
    # The next bags of those courses, in one query (a ward shows a few running bags, never a query each).
    following = {
        (d.course_id, d.number): d
        for d in Dose.objects.filter(
            course_id__in={p.dose.course_id for p in bags_running}, status=DoseStatus.PLANNED,
            number__in={p.dose.number + 1 for p in bags_running},
        )
    }  # fmt: skip
    changes = []
    for prep in bags_running:
        dose, started, hours = prep.dose, prep.administration_started_at, prep.dose.bag_hours
        assert started is not None  # filtered above
        assert hours is not None
        due = bags.next_bag_due(started_at=started, hours=hours)
        changes.append(BagChange(prep, started, hours, due, following.get((dose.course_id, dose.number + 1))))
    return sorted(changes, key=lambda change: change.next_due)


@dataclass(frozen=True)
class PlanPhaseRow:
    position: int
    regimens: list[str]
    starts_days_after_previous: int
    state: str  # "done", "current", "next"
    courses: list[TreatmentCourse]


@dataclass(frozen=True)
class CoursePlan:
    treatment_plan: TreatmentPlan
    phases: list[PlanPhaseRow]


def course_plan(*, user: AnyUser, course: TreatmentCourse) -> CoursePlan | None:
    """The therapy plan a course belongs to: its phases, which one is given now, and each phase's courses."""
    if course.treatment_plan_id is None:
        return None
    plan = TreatmentPlan.objects.select_related("plan").get(pk=course.treatment_plan_id)
    courses = list(treatment_plan_courses(user=user, plan=plan).select_related(None).select_related("regimen"))
    phases: dict[int, list[TherapyPlanPhase]] = {}
    for phase in plan.plan.phases.select_related("regimen").order_by("position", "id"):
        phases.setdefault(phase.position, []).append(phase)
    rows = []
    for position, members in phases.items():
        if plan.finished or position < plan.current_position:
            state = "done" if any(c.phase_position == position for c in courses) or plan.finished else "skipped"
        else:
            state = "current" if position == plan.current_position else "next"
        courses_of_phase = [c for c in courses if c.phase_position == position]
        regimens = [m.regimen.name for m in members]
        rows.append(PlanPhaseRow(position, regimens, members[0].starts_days_after_previous, state, courses_of_phase))
    return CoursePlan(plan, rows)


def therapy_plan_list() -> QuerySet[TherapyPlan]:
    return TherapyPlan.objects.filter(active=True).prefetch_related(
        Prefetch("phases", queryset=TherapyPlanPhase.objects.select_related("regimen").order_by("position", "id"))
    )


def treatment_plan_list(*, user: AnyUser) -> QuerySet[TreatmentPlan]:
    """The therapy plans of the user's patients, each with its courses."""
    return (
        TreatmentPlan.objects.filter(**visible_patient_filter(user=user))
        .select_related("plan", "patient")
        .prefetch_related(Prefetch("courses", queryset=TreatmentCourse.objects.select_related("regimen")))
    )


def treatment_plan_courses(*, user: AnyUser, plan: TreatmentPlan) -> QuerySet[TreatmentCourse]:
    return course_list(user=user).filter(treatment_plan=plan).order_by("phase_position", "id")


def _cells_min(regimen: Regimen, weight_kg: Decimal) -> int | None:
    """The fewest cells the bag may hold: a per-kg lower bound (cilta-cel: 0.5 x 10^6/kg) times the weight, in
    whole cells rounded up (never fewer than prescribed), else the regimen's flat minimum."""
    if regimen.cells_per_kg_min is None:
        return regimen.cells_min
    return int((Decimal(regimen.cells_per_kg_min) * weight_kg).to_integral_value(ROUND_CEILING))


def calculate_for(
    dose: Dose, patient: Patient
) -> dosing.DoseCalculation | dosing.CellDose | lesions.VirusDose | bags.BagDose:
    """The dose of this patient now: the regimen's weight band, the label's volume cap, the rounding policy
    and the course's no-round-up exception; cells for a cell product; PFU/mL and the visit's volume cap for an
    oncolytic virus (the volume follows from the lesions at the visit). Refusals name the field."""
    course = dose.course
    regimen = course.regimen
    drug = regimen.drug
    if drug.intralesional:
        try:
            return lesions.virus_dose(
                dose_number=dose.number, pfu_per_ml_first_dose=regimen.pfu_per_ml_first_dose,
                pfu_per_ml=regimen.pfu_per_ml, max_volume_ml=regimen.max_volume_ml_per_visit,
            )  # fmt: skip
        except lesions.LesionError as error:
            raise ValidationError({error.field: error.reason}) from None
    bands = list(regimen.dose_bands.order_by("weight_from_kg"))
    problem = band_problem(bands, patient.weight_kg, regimen.name)
    if problem:
        raise ValidationError({"weight_kg": problem})
    if regimen.bag_hours_allowed:
        return _bag_dose_for(dose, regimen)
    band = band_for(bands, patient.weight_kg)
    basis = band.dose_basis if band is not None else regimen.dose_basis
    amount = band.dose_amount if band is not None and band.dose_amount is not None else regimen.dose_amount
    step = dose_step(dose)
    # The column keeps 4 places since blinatumomab (0.0125 mg/mL); a strength with 3 reads as it always did.
    strength, vials = _as_before(drug.strength_mg_per_ml), list(drug.vial_contents_mg)
    if step is not None:
        amount = step.dose_amount if step.dose_amount is not None else amount
        strength = step.strength_mg_per_ml or strength
        vials = list(step.vial_contents_mg) or vials
    try:
        if basis in CELL_BASES:
            return dosing.cell_dose(
                cells_per_kg=regimen.cells_per_kg if basis == DoseBasis.CELLS_PER_KG else None,
                cells_min=_cells_min(regimen, patient.weight_kg), cells_max=regimen.cells_max,
                weight_kg=patient.weight_kg,
            )  # fmt: skip
        return dosing.calculate_dose(
            basis=dosing.DoseBasis(basis), amount=amount,
            weight_kg=patient.weight_kg, height_cm=patient.height_cm, strength_mg_per_ml=strength,
            vial_contents_mg=vials, concentration_min=drug.concentration_min,
            concentration_max=drug.concentration_max, bag_sizes_ml=list(drug.bag_sizes_ml),
            max_dose_mg=band.max_dose_mg if band is not None else regimen.max_dose_mg,
            rounding_tolerance_percent=regimen.rounding_tolerance_percent, allow_round_up=not course.no_round_up,
            may_give_undiluted=drug.may_give_undiluted,
            max_final_volume_ml=final_volume_cap(drug, patient.weight_kg), dose_step_mg=drug.dose_step_mg,
            volume_step_ml=drug.volume_step_ml,
        )  # fmt: skip
    except dosing.DoseError as error:
        raise ValidationError({error.field: error.reason}) from None


def _as_before(strength: Decimal) -> Decimal:
    """A strength stored to 4 places back to the 3 it had before the column widened, when the 4th is 0 (90.0000
    -> 90.000), so records and messages read as they did."""
    three = strength.quantize(Decimal("0.001"))
    return three if three == strength else strength


def _bag_dose_for(dose: Dose, regimen: Regimen) -> bags.BagDose:
    """A bag of a continuous infusion: its step's daily dose x its hours / 24 (orders.bags). The bag's volume is
    the preparer's, from the label's table (not calculated). A bag without its duration is refused."""
    if dose.bag_hours is None or dose.bag_step is None:
        raise ValidationError({"bag_hours": "This dose of a continuous infusion has no bag duration: order it again."})
    step = regimen.steps.filter(dose_number=dose.bag_step).first()
    mg_per_day = step.dose_amount if step is not None and step.dose_amount is not None else regimen.dose_amount
    try:
        return bags.bag_dose(
            number=dose.number, hours=dose.bag_hours, step=dose.bag_step, mg_per_day=mg_per_day,
            dose_step_mg=regimen.drug.dose_step_mg,
        )  # fmt: skip
    except bags.BagError as error:
        raise ValidationError({error.field: error.reason}) from None


def expected_check_value(prep: Preparation, method: str) -> Decimal | None:
    """Gravimetric: the drawn drug volume weighed (density 1.0 g/mL unless set); volumetric: the final volume.
    None for a cell product (its check is the bag's identity, integrity and thaw time) or without a volume."""
    if prep.concentration_pfu_per_ml is not None:  # an oncolytic virus: the syringes' volume, never weighed
        return prep.volume_ml_planned if method == VerificationMethod.VOLUMETRIC else None
    if method == VerificationMethod.GRAVIMETRIC:
        if prep.volume_to_draw_ml is None:
            return None
        return (prep.volume_to_draw_ml * Decimal(str(settings.PREPARATION_DENSITY_G_PER_ML))).quantize(Decimal("0.01"))
    if method == VerificationMethod.VOLUMETRIC:
        return prep.final_volume_ml
    return None


def use_by(prep: Preparation) -> datetime | None:
    """The earlier of the preparation's two clocks: after it, no infusion can be given in time."""
    clocks = [t for t in (prep.beyond_use_at, prep.infusion_end_by) if t is not None]
    return min(clocks) if clocks else None


@dataclass(frozen=True)
class CellTherapyPeriods:
    """What a patient is told after a cell-therapy infusion: stay near the centre, do not drive, until when."""

    course: TreatmentCourse
    drug: Drug
    infusion_at: datetime
    infused: bool  # False: the infusion is planned, the dates follow from the plan
    proximity_until: datetime | None
    no_driving_until: datetime | None


def cell_therapy_periods(*, user: AnyUser, patient: Patient, now: datetime) -> list[CellTherapyPeriods]:
    """The post-infusion periods of the patient's cell-therapy infusions, given or planned, not yet over. The
    days come from the drug (its label, docs/clinical-sources.md §8); the clock from the infusion's start (the
    planned time until it is given)."""
    infusions = list(
        dose_list(user=user)
        .filter(course__patient=patient, number=1, course__regimen__drug__cell_therapy=True)
        .filter(
            Q(course__regimen__drug__proximity_days__isnull=False)
            | Q(course__regimen__drug__no_driving_days__isnull=False)
        )
        .filter(Q(status=DoseStatus.GIVEN) | Q(status=DoseStatus.PLANNED, course__status=CourseStatus.ACTIVE))
        .order_by("planned_at")
    )
    infusion_times = first_dose_times({dose.course_id for dose in infusions})
    periods = []
    for dose in infusions:
        drug = dose.course.regimen.drug
        infusion_at = infusion_times[dose.course_id]
        proximity = infusion_at + timedelta(days=drug.proximity_days) if drug.proximity_days is not None else None
        driving = infusion_at + timedelta(days=drug.no_driving_days) if drug.no_driving_days is not None else None
        if max(d for d in (proximity, driving) if d is not None) < now:
            continue  # both periods over
        infused = dose.status == DoseStatus.GIVEN
        periods.append(CellTherapyPeriods(dose.course, drug, infusion_at, infused, proximity, driving))
    return periods


def weight_recorded_at(patient: Patient, weight_kg: Decimal) -> datetime | None:
    """Since when the patient's record has held the weight a dose calculation used: the start of the latest run of
    the record's history rows (pghistory) with that weight. None when no history row has it (the record predates
    its history). The worksheet shows it beside the weight; the calculation itself stores no date."""
    since = None
    events = apps.get_model("patients", "PatientEvent").objects.filter(pgh_obj=patient)
    history = events.order_by("-pgh_created_at", "-pgh_id").values_list("weight_kg", "pgh_created_at")
    for weight, at in history[:500]:
        if weight == weight_kg:
            since = at
        elif since is not None:
            break
    return since


def patient_merge_problem(*, patient: Patient) -> str | None:
    """A check of an ADT merge (settings.PATIENT_MERGE_CHECKS): a patient on an active cell-therapy course keeps
    its record, so that its chain of identity (labels, bag scans) never changes under a running course."""
    if TreatmentCourse.objects.filter(
        patient=patient, status=CourseStatus.ACTIVE, regimen__drug__cell_therapy=True
    ).exists():
        return "the patient is on an active cell-therapy course"
    return None


def course_identity_checks(course: TreatmentCourse) -> list[IdentityCheck]:
    """Every chain-of-identity check of the course (matched or a recorded mismatch), in the order recorded."""
    return list(IdentityCheck.objects.filter(course=course).select_related("by").order_by("at", "id"))


def latest_rescue_check(course: TreatmentCourse, drug: Drug) -> RescueMedicationCheck | None:
    """Pharmacy's latest confirmation of the drug's rescue medication on hand for this course (the one that counts)."""
    if not drug.rescue_drug:
        return None
    return (
        RescueMedicationCheck.objects.filter(course=course, drug__iexact=drug.rescue_drug)
        .select_related("confirmed_by")
        .order_by("-at", "-id")
        .first()
    )


def course_preparations(course: TreatmentCourse) -> QuerySet[Preparation]:
    """The course's preparations, dose by dose."""
    return Preparation.objects.filter(dose__course=course).select_related("dose").order_by("dose__number")
