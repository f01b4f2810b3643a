"""Starting, moving and stopping a treatment course: its doses, their preparation orders and its
monitoring tests change together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from monitoring.choices import AWAITING_COLLECTION, AWAITING_RESULT
from monitoring.services import monitoring_test_cancel, monitoring_test_schedule
from orders import bags
from orders.choices import CourseStatus, DoseStatus, PreparationStatus, RuleKind
from orders.models import (
    CourseMonitoringTest,
    Dose,
    MonitoringRule,
    Preparation,
    Regimen,
    TherapyPlan,
    TreatmentCourse,
    TreatmentPlan,
)
from orders.selectors import dose_steps, regimen_schedule
from orders.services._common import _order_preparation
from orders.services.errors import OrderConflict
from patients.models import Patient


def _rule_due_times(
    rule: MonitoringRule, doses: Sequence[Dose], starts_at: datetime
) -> list[tuple[datetime, Dose | None]]:
    """When a monitoring rule wants its test, and for which dose (pre-dose rules gate that dose)."""
    if rule.interval_hours is not None and rule.kind not in (
        RuleKind.DAILY_AFTER_INFUSION,
        RuleKind.AFTER_STEP_UP_DOSE,
    ):
        # Fail closed: a step in hours on a rule that does not use it would silently schedule something else.
        raise ValueError(f"Monitoring rule {rule.pk}: an interval in hours on a {rule.kind!r} rule")
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
    if rule.kind == RuleKind.DAILY_AFTER_INFUSION:
        # Day 0 is the (first) infusion; day_to is included; no interval means daily.
        infusion = doses[0].planned_at if doses else starts_at
        if rule.interval_hours is not None:
            # Every n hours through the whole of day_to: from day_from at the infusion's time of day to before
            # day_to + 1 (every 8 h D0-D7 is 24 times, the last at D7 + 16 h; then every 12 h D8-D14 is 14 more).
            if rule.interval_hours < 1:
                raise ValueError(f"Monitoring rule {rule.pk}: an interval of {rule.interval_hours} hours")
            due, end = infusion + timedelta(days=rule.day_from or 0), infusion + timedelta(days=(rule.day_to or 0) + 1)
            hourly: list[tuple[datetime, Dose | None]] = []
            while due < end:
                hourly.append((due, None))
                due += timedelta(hours=rule.interval_hours)
            return hourly
        days = range(rule.day_from or 0, (rule.day_to or 0) + 1, rule.interval_days or 1)
        return [(infusion + timedelta(days=day), None) for day in days]
    if rule.kind == RuleKind.AFTER_STEP_UP_DOSE:
        return _after_step_up_times(rule, doses)
    # Fail closed: a rule of a kind this code does not know refuses the course rather than schedule nothing.
    raise ValueError(f"Monitoring rule {rule.pk}: unknown kind {rule.kind!r}")


def _after_step_up_times(rule: MonitoringRule, doses: Sequence[Dose]) -> list[tuple[datetime, Dose | None]]:
    """Every n hours from each step-up dose through its hospital stay (teclistamab: 48 h after each dose of the
    step-up schedule), linked to that dose so that moving it moves them; weekly doses after the steps, with no stay,
    get none. A rule without an interval is refused (fail closed)."""
    if rule.interval_hours is None or rule.interval_hours < 1:
        raise ValueError(f"Monitoring rule {rule.pk}: after a step-up dose needs an interval of at least 1 hour")
    steps = dose_steps(doses)
    times: list[tuple[datetime, Dose | None]] = []
    for dose in doses:
        step = steps.get(dose.pk)
        if step is None or not step.hospital_stay_hours:
            continue
        due, end = dose.planned_at, dose.planned_at + timedelta(hours=step.hospital_stay_hours)
        while due < end:
            times.append((due, dose))
            due += timedelta(hours=rule.interval_hours)
    return times


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
    treatment_plan: TreatmentPlan | None = None,
    phase_position: int | None = None,
    bag_hours: int | None = None,
) -> TreatmentCourse:
    """Start a regimen: schedule its doses (step-up doses on their days, orders.schedule), a preparation order
    for each, and its monitoring tests. A course of a therapy plan names the plan and its phase. A continuous
    infusion (blinatumomab) is ordered with the bag duration the site chose among the label's: its doses are the
    bags (orders.bags), back to back, each with its own preparation."""
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
    _check_follows(regimen, patient, starts_at)
    planned_bags = _bag_plan(regimen, bag_hours)
    course = TreatmentCourse.objects.create(
        patient=patient, regimen=regimen, starts_at=starts_at, weight_kg_at_start=patient.weight_kg,
        height_cm_at_start=patient.height_cm, chain_of_identity=chain_of_identity.strip(), no_round_up=no_round_up,
        started_by=user, created_at=now, treatment_plan=treatment_plan, phase_position=phase_position,
        bag_hours=bag_hours if planned_bags else None,
    )  # fmt: skip
    if planned_bags:
        doses = [
            Dose.objects.create(
                course=course,
                number=b.number,
                planned_at=starts_at + b.offset,
                bag_hours=b.hours,
                bag_step=b.step,
                starts_step=b.starts_step,
            )
            for b in planned_bags
        ]
    else:
        doses = [
            Dose.objects.create(course=course, number=p.number, planned_at=starts_at + p.offset)
            for p in regimen_schedule(regimen)
        ]
    for dose in doses:
        _order_preparation(dose, now)
    _schedule_monitoring(course, doses, user, now)
    return course


def _check_follows(regimen: Regimen, patient: Patient, starts_at: datetime) -> None:
    """A regimen that follows another's infusion (aldesleukin 3-24 h after lifileucel) starts inside its window
    after the patient's last completed infusion of it; without one it is refused (fail closed)."""
    before = regimen.follows_regimen
    if before is None or regimen.follows_from_hours is None or regimen.follows_to_hours is None:
        return
    ended = Preparation.objects.filter(
        dose__course__patient=patient, dose__course__regimen=before, administration_ended_at__isnull=False
    ).aggregate(last=Max("administration_ended_at"))["last"]
    if ended is None:
        raise ValidationError(
            {"starts_at": f"{regimen.name} starts only after a completed {before.name} infusion: none is recorded."}
        )
    earliest = ended + timedelta(hours=regimen.follows_from_hours)
    latest = ended + timedelta(hours=regimen.follows_to_hours)
    if not earliest <= starts_at <= latest:
        shown = "%Y-%m-%d %H:%M"
        raise ValidationError({"starts_at": (
            f"{regimen.name} starts {regimen.follows_from_hours}-{regimen.follows_to_hours} h after the "
            f"{before.name} infusion ended ({timezone.localtime(ended):{shown}}): between "
            f"{timezone.localtime(earliest):{shown}} and {timezone.localtime(latest):{shown}}."
        )})  # fmt: skip


def _bag_plan(regimen: Regimen, bag_hours: int | None) -> list[bags.Bag]:
    """The bags of a continuous infusion, or [] for a regimen of doses (which takes no bag duration). The duration
    must be one the regimen allows and within the drug's in-use time, which must include the infusion."""
    if not regimen.bag_hours_allowed:
        if bag_hours is not None:
            raise ValidationError({"bag_hours": "This regimen is given in doses, not as a continuous infusion."})
        return []
    allowed = ", ".join(f"{hours} h" for hours in sorted(regimen.bag_hours_allowed))
    if bag_hours is None:
        raise ValidationError({"bag_hours": f"Choose the bag duration: {allowed}."})
    drug = regimen.drug
    steps = [bags.DailyDose(s.dose_number, s.day, s.dose_amount or regimen.dose_amount) for s in regimen.steps.all()]
    try:
        bags.check_bag_hours(
            bag_hours=bag_hours, allowed_hours=regimen.bag_hours_allowed, stability_room=drug.stability_room,
            stability_includes_infusion=drug.in_use_includes_infusion,
        )  # fmt: skip
        return bags.plan_bags(
            steps=steps or [bags.DailyDose(0, 1, regimen.dose_amount)], infusion_days=regimen.infusion_days or 0,
            bag_hours=bag_hours, allowed_hours=regimen.bag_hours_allowed, dose_step_mg=drug.dose_step_mg,
        )  # fmt: skip
    except bags.BagError as error:
        raise ValidationError({error.field: error.reason}) from None


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
    # A plan's other courses go on (a stopped ipilimumab does not stop nivolumab); its phase may now be over.
    therapy_plan_advance_for(course_id=course.pk, now=now)
    return course


# --- therapy plans: regimens in phases (nivolumab + ipilimumab, then nivolumab alone) -----------------------------


@transaction.atomic
def therapy_plan_start(
    *,
    patient: Patient,
    plan: TherapyPlan,
    starts_at: datetime,
    user: User,
    now: datetime,
    no_round_up: bool = False,
) -> TreatmentPlan:
    """Start a therapy plan: its first phase's courses start together (each regimen of the phase)."""
    if not plan.active:
        raise ValidationError({"plan": "This plan is no longer offered."})
    phases = list(plan.phases.select_related("regimen__drug").order_by("position", "id"))
    if not phases:
        raise ValidationError({"plan": "This plan has no phases."})
    if any(phase.regimen.drug.cell_therapy for phase in phases):
        raise ValidationError({"plan": "A cell therapy is started as a course of its own (chain of identity)."})
    first = phases[0].position
    treatment_plan = TreatmentPlan.objects.create(
        patient=patient, plan=plan, current_position=first, starts_at=starts_at, started_by=user, created_at=now
    )
    for phase in (p for p in phases if p.position == first):
        course_start(
            patient=patient, regimen=phase.regimen, user=user, now=now, no_round_up=no_round_up,
            starts_at=starts_at + timedelta(days=phase.starts_days_after_previous),
            treatment_plan=treatment_plan, phase_position=first,
        )  # fmt: skip
    return treatment_plan


def _last_given_at(courses: Sequence[TreatmentCourse]) -> datetime | None:
    """When the phase's last given dose started (the administration scan), else its planned time."""
    given = Dose.objects.filter(course__in=courses, status=DoseStatus.GIVEN)
    started = Preparation.objects.filter(dose__in=given, administration_started_at__isnull=False)
    times: list[datetime] = [t for t in started.values_list("administration_started_at", flat=True) if t is not None]
    times += list(given.exclude(pk__in=started.values("dose_id")).values_list("planned_at", flat=True))
    return max(times, default=None)


def therapy_plan_advance(*, treatment_plan: TreatmentPlan, now: datetime) -> list[TreatmentCourse]:
    """The phase change: when no course of the current phase has a planned dose left (each given, cancelled, or
    its course stopped), the next phase's courses start `starts_days_after_previous` days after the phase's last
    given dose (never before now). Runs in the caller's transaction (a dose given, a course stopped); idempotent:
    the plan row is locked, and a phase whose courses exist is not started again. A phase whose courses were all
    stopped ends the plan: nothing starts by itself after a decision to stop everything. The next phase's courses
    are ordered by the oncologist who started the plan. Returns the courses started."""
    locked = TreatmentPlan.objects.select_for_update().select_related("plan", "patient").get(pk=treatment_plan.pk)
    if locked.finished:
        return []
    current = list(TreatmentCourse.objects.filter(treatment_plan=locked, phase_position=locked.current_position))
    if Dose.objects.filter(course__in=current, status=DoseStatus.PLANNED).exists():
        return []
    phases = list(locked.plan.phases.select_related("regimen").order_by("position", "id"))
    later = [p for p in phases if p.position > locked.current_position]
    ran_to_end = [c for c in current if c.status == CourseStatus.ACTIVE]
    last_given = _last_given_at(current)
    if not later or not ran_to_end or last_given is None:
        locked.finished = True
        locked.save(update_fields=["finished"])
        return []
    position = later[0].position
    locked.current_position = position
    locked.save(update_fields=["current_position"])
    if TreatmentCourse.objects.filter(treatment_plan=locked, phase_position=position).exists():
        return []
    started = []
    for phase in (p for p in later if p.position == position):
        starts_at = max(last_given + timedelta(days=phase.starts_days_after_previous), now)
        course = course_start(
            patient=locked.patient, regimen=phase.regimen, starts_at=starts_at, user=locked.started_by, now=now,
            treatment_plan=locked, phase_position=position,
        )  # fmt: skip
        started.append(course)
    return started


def therapy_plan_advance_for(*, course_id: int, now: datetime) -> list[TreatmentCourse]:
    """`therapy_plan_advance` for the plan of a course, if it has one (called where a dose is given or a course
    stopped). The next phase failing to start (a dose refused for the patient's weight, a regimen withdrawn) must
    not undo the dose just given: it is kept on the plan (`blocked_reason`, shown on the course page) and the
    phase is retried at the next dose or stop; the oncologist starts it by hand."""
    plan_id = TreatmentCourse.objects.filter(pk=course_id).values_list("treatment_plan_id", flat=True).first()
    if plan_id is None:
        return []
    try:
        with transaction.atomic():
            started = therapy_plan_advance(treatment_plan=TreatmentPlan(pk=plan_id), now=now)
    except (ValidationError, OrderConflict) as error:
        reason = "; ".join(getattr(error, "messages", None) or [str(error)])
        blocked = f"The next phase could not start: {reason}"[:300]
        TreatmentPlan.objects.filter(pk=plan_id).update(blocked_reason=blocked)
        return []
    if started:
        TreatmentPlan.objects.filter(pk=plan_id).exclude(blocked_reason="").update(blocked_reason="")
    return started
