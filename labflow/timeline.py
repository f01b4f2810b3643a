"""The patient timeline (issue 15): one patient's doses, labs, bedside assessments and alerts on a time axis
centred on today, past on the left and the next two weeks on the right. It reads several apps, so it lives in
the project (docs/architecture.md §2) and asks each app's selector for its rows in the window: a constant number
of queries however many entries (tests/test_page_query_counts.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import AnyUser
from alerts.models import Alert
from alerts.selectors import patient_alerts_between
from assessments.models import Assessment
from assessments.selectors import patient_assessments_between
from monitoring.choices import MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest
from monitoring.selectors import patient_open_tests_between
from orders.choices import DoseStatus
from orders.gate import dose_gates
from orders.models import Dose
from orders.selectors import dose_steps, patient_doses_between
from patients.models import Patient
from results.models import Result
from results.selectors import patient_results_between

AHEAD_DAYS = 14  # the issue: "the next two weeks on the right"
PAST_DAYS_CHOICES = (14, 30, 90)
DEFAULT_PAST_DAYS = 14  # centred on today: as far back as ahead
# Per kind of entry: 90 days of daily panels is ~1,200 results; the newest are shown and the page says so.
ENTRY_LIMIT = 300

DOSES, LABS, ASSESSMENTS, ALERTS = "doses", "labs", "assessments", "alerts"
LANE_LABELS = {DOSES: "Doses", LABS: "Labs", ASSESSMENTS: "CRS/ICANS assessments", ALERTS: "Alerts"}


# Tag tones (labflow.css .tone-*): the colour only repeats what the words say.
GATE_TONES = {"cleared": "ok", "pending": "muted", "overridden": "mod", "cosigned": "mod"}  # else held: crit
FLAG_TONES = {"HH": "crit", "LL": "crit", "H": "high", "L": "high", "A": "high", "N": "muted"}
SEVERITY_TONES = {4: "crit", 3: "high", 2: "mod", 1: "muted"}


def grade_tone(grade: int) -> str:
    return "crit" if grade >= 3 else "high" if grade == 2 else "mod"


@dataclass(frozen=True)
class Tag:
    """A state shown beside an entry: always words (never colour alone); `tone` only adds the colour."""

    text: str
    tone: str = ""


@dataclass(frozen=True)
class Entry:
    lane: str
    kind: str  # dose, result, test, assessment, alert (data-testid="tl-<kind>")
    at: datetime
    title: str
    url: str
    tags: tuple[Tag, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lane:
    key: str
    label: str
    entries: list[Entry]


@dataclass(frozen=True)
class Day:
    day: date
    is_today: bool
    is_past: bool
    lanes: list[Lane]  # every lane the user may see, in the same order each day (empty ones too)

    @property
    def count(self) -> int:
        return sum(len(lane.entries) for lane in self.lanes)


@dataclass
class Timeline:
    start: datetime
    end: datetime
    today: date
    days: list[Day]
    lanes: list[str]  # the lanes the user may see
    tests: list[LabTest]  # the tests present in the window, for the filter
    truncated: list[str] = field(default_factory=list)  # lanes showing only their newest ENTRY_LIMIT entries
    open_before: list[Entry] = field(default_factory=list)  # unresolved alerts raised before the window

    @property
    def count(self) -> int:
        return sum(day.count for day in self.days)


def timeline_window(now: datetime, past_days: int) -> tuple[date, datetime, datetime]:
    """Today (local), and the window from the start of the day `past_days` ago to the end of the day
    AHEAD_DAYS ahead."""
    today = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(today - timedelta(days=past_days), time.min))
    end = timezone.make_aware(datetime.combine(today + timedelta(days=AHEAD_DAYS + 1), time.min))
    return today, start, end


def patient_timeline(
    *,
    user: AnyUser,
    patient: Patient,
    now: datetime,
    past_days: int = DEFAULT_PAST_DAYS,
    lab_test_id: int | None = None,
) -> Timeline:
    """The patient's timeline entries in the window, grouped by local day and lane. The caller has scoped the
    patient to the user's care teams; each lane is read only with its permission (lab staff see no bedside
    assessments) and each app's selector scopes again. `lab_test_id` narrows the labs lane to one test; doses,
    assessments and alerts stay, as the context a value is read in."""
    today, start, end = timeline_window(now, past_days)
    lanes, entries, truncated = [], [], []
    tests: list[LabTest] = []
    if user.has_perm("orders.view_dose"):
        lanes.append(DOSES)
        entries += _dose_entries(patient_doses_between(user=user, patient=patient, start=start, end=end), now=now)
    sees_results, sees_tests = user.has_perm("results.view_result"), user.has_perm("monitoring.view_monitoringtest")
    if sees_results or sees_tests:
        lanes.append(LABS)
        results = patient_results_between(user=user, patient=patient, start=start, end=end)
        open_tests = patient_open_tests_between(user=user, patient=patient, start=start, end=end)
        present = Q(pk__in=[])
        if sees_results:
            present |= Q(pk__in=results.order_by().values("lab_test_id"))
        if sees_tests:
            present |= Q(pk__in=open_tests.order_by().values("lab_test_id"))
        if lab_test_id is not None:  # the chosen test stays selectable in a window without it
            present |= Q(pk=lab_test_id)
        tests = list(LabTest.objects.filter(present).order_by("name"))
        if lab_test_id is not None:
            results, open_tests = results.filter(lab_test_id=lab_test_id), open_tests.filter(lab_test_id=lab_test_id)
        if sees_results:
            shown = list(results[: ENTRY_LIMIT + 1])
            if len(shown) > ENTRY_LIMIT:
                truncated.append(LANE_LABELS[LABS])
            entries += [_result_entry(r) for r in shown[:ENTRY_LIMIT]]
        if sees_tests:
            entries += [_test_entry(t, patient) for t in open_tests[:ENTRY_LIMIT]]
    if user.has_perm("assessments.view_assessment"):
        lanes.append(ASSESSMENTS)
        rows = list(patient_assessments_between(user=user, patient=patient, start=start, end=end)[: ENTRY_LIMIT + 1])
        if len(rows) > ENTRY_LIMIT:
            truncated.append(LANE_LABELS[ASSESSMENTS])
        entries += [_assessment_entry(a) for a in rows[:ENTRY_LIMIT]]
    lanes.append(ALERTS)  # alert_list scopes alerts to the user's audience
    alerts = list(patient_alerts_between(user=user, patient=patient, start=start, end=end)[: ENTRY_LIMIT + 1])
    if len(alerts) > ENTRY_LIMIT:
        truncated.append(LANE_LABELS[ALERTS])
    shown_alerts = [_alert_entry(a, patient) for a in alerts[:ENTRY_LIMIT]]
    entries += [e for e in shown_alerts if e.at >= start]
    days = _days(entries, lanes, today, start, end)
    return Timeline(start, end, today, days, lanes, tests, truncated, [e for e in shown_alerts if e.at < start])


def _days(entries: list[Entry], lanes: list[str], today: date, start: datetime, end: datetime) -> list[Day]:
    by_day: dict[tuple[date, str], list[Entry]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.at):
        by_day[(timezone.localdate(entry.at), entry.lane)].append(entry)
    first, last = timezone.localdate(start), timezone.localdate(end - timedelta(microseconds=1))
    days = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        day_lanes = [Lane(key, LANE_LABELS[key], by_day.get((day, key), [])) for key in lanes]
        days.append(Day(day, day == today, day < today, day_lanes))
    return days


def _hm(at: datetime | None) -> str:
    return timezone.localtime(at).strftime("%H:%M") if at else ""


def _dose_entries(doses: list[Dose], *, now: datetime) -> list[Entry]:
    """Planned doses show the gate as it stands now; given ones the verdict the bedside relied on."""
    gates = dose_gates([d for d in doses if d.status == DoseStatus.PLANNED], now=now)
    steps = dose_steps(doses)
    rows = []
    for dose in doses:
        tone = {DoseStatus.GIVEN: "ok", DoseStatus.CANCELLED: "muted"}.get(DoseStatus(dose.status), "")
        tags = [Tag(dose.get_status_display(), tone)]
        notes: list[str] = []
        step = steps.get(dose.pk)
        if step is not None and step.step_up:
            tags.append(Tag("Step-up dose"))
        if step is not None and step.premedication_required:
            notes.append(f"Premedication: {step.premedication}")
        gate = gates.get(dose.pk)
        checks = getattr(dose, "bedside_checks", [])
        if gate is not None:
            tags.append(Tag(f"Gate: {gate.verdict.label}", GATE_TONES.get(gate.verdict, "crit")))
            notes += gate.reasons[:2]  # why it is held or was decided; what a pending dose waits for is on the course
        elif checks:
            check = checks[-1]
            tags.append(Tag(f"Gate at bedside: {check.get_verdict_display()}", GATE_TONES.get(check.verdict, "crit")))
        preparations = getattr(dose, "timeline_preparations", [])
        if preparations:
            prep = preparations[-1]
            tags.append(Tag(f"Preparation: {prep.get_status_display()}"))
            if prep.administration_started_at:
                ended = f" to {_hm(prep.administration_ended_at)}" if prep.administration_ended_at else ", running"
                notes.append(f"Given {timezone.localtime(prep.administration_started_at):%Y-%m-%d} "
                             f"{_hm(prep.administration_started_at)}{ended}")  # fmt: skip
        elif dose.status == DoseStatus.PLANNED:
            tags.append(Tag("Preparation: not ordered"))
        url = reverse("orders:course", args=[dose.course_id]) + f"#dose-{dose.pk}"
        title = f"{dose.course.regimen.name} · dose {dose.number} of {dose.course.regimen.number_of_doses}"
        rows.append(Entry(DOSES, "dose", dose.planned_at, title, url, tuple(tags), tuple(notes)))
    return rows


def _result_entry(result: Result) -> Entry:
    tags = []
    if result.flag:
        tags.append(Tag(f"{result.get_flag_display()} ({result.flag})", FLAG_TONES.get(result.flag, "")))
    if result.ctcae_grade:  # grade 0 is no toxicity: no term shown
        text = f"CTCAE grade {result.ctcae_grade} {result.ctcae_term}".strip()
        tags.append(Tag(text, grade_tone(result.ctcae_grade)))
    title = f"{result.lab_test.name} {result.display_value}"
    return Entry(LABS, "result", result.observed_at, title, reverse("results:detail", args=[result.pk]), tuple(tags))


def _test_entry(test: MonitoringTest, patient: Patient) -> Entry:
    """An open test links to the chart's test list, where the collect or assess step starts."""
    url = reverse("patient-chart", args=[patient.pk]) + "#monitoring-tests"
    overdue = test.status in (MonitoringTestStatus.OVERDUE, MonitoringTestStatus.RESULT_OVERDUE)
    tags = (Tag(test.get_status_display(), "high" if overdue else ""),)
    return Entry(LABS, "test", test.due_at, f"{test.lab_test.name} due", url, tags)


def _grade(name: str, grade: int | None, at_least: int, at_most: int) -> Tag:
    if grade is None:
        return Tag(f"{name} pending (grade {at_least} to {at_most})", "mod")
    return Tag(f"{name} grade {grade}", grade_tone(grade) if grade else "ok")


def _assessment_entry(assessment: Assessment) -> Entry:
    tags = (
        _grade("CRS", assessment.crs_grade, assessment.crs_at_least, assessment.crs_at_most),
        _grade("ICANS", assessment.icans_grade, assessment.icans_at_least, assessment.icans_at_most),
    )
    url = reverse("assessments:detail", args=[assessment.pk])
    return Entry(ASSESSMENTS, "assessment", assessment.assessed_at, "Assessment", url, tags)


def _alert_url(alert: Alert, patient: Patient) -> str:
    """The alert's subject where it has a page (a result, an assessment), else the chart's alert list."""
    model = alert.subject_type.model
    if model == "result":
        return reverse("results:detail", args=[alert.subject_id])
    if model == "assessment":
        return reverse("assessments:detail", args=[alert.subject_id])
    anchor = "#monitoring-tests" if model == "monitoringtest" else "#alerts"
    return reverse("patient-chart", args=[patient.pk]) + anchor


def _alert_entry(alert: Alert, patient: Patient) -> Entry:
    tags = [Tag(alert.get_severity_display(), SEVERITY_TONES.get(alert.severity, "")), Tag(alert.get_status_display())]
    if alert.worsened_at:
        tags.append(Tag("worsened", "crit"))
    return Entry(ALERTS, "alert", alert.raised_at, alert.summary, _alert_url(alert, patient), tuple(tags))
