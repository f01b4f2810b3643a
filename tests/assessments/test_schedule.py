"""CRS/ICANS assessments as scheduled monitoring tests (docs/architecture.md §4a; clinical-sources §9): the CAR-T
plan every 8 h to D7 then every 12 h to D14, a recorded assessment satisfying the one due, the overdue sweep's own
alert to the nurses, never a collection, and the grades beside CRP and ferritin on the patient page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.models import Alert
from alerts.selectors import alert_list
from assessments import grading
from assessments.models import Assessment
from assessments.services import assessment_amend, assessment_record
from monitoring.choices import LabTestKind, MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import MonitoringTestConflict, monitoring_test_record_collection, monitoring_tests_flag_overdue
from orders.choices import RuleKind
from orders.models import CourseMonitoringTest, Dose, MonitoringRule, Regimen
from orders.services.courses import _rule_due_times
from results.services import ResultEntry, results_enter, results_verify
from specimens.selectors import collection_list, due_tests_for_patient
from specimens.services import specimens_collect
from tests import factories
from tests.orders.helpers import first_dose, start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db

CAR_T = "Axicabtagene ciloleucel single infusion"
PEMBRO = "Pembrolizumab 200 mg q3w"
ASSESSMENT = "CRS/ICANS assessment (ASTCT)"
INFUSION = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)

CALM: dict[str, Any] = {
    **dict.fromkeys(grading.ICE_ITEMS, True),
    "level_of_consciousness": "alert",
    "seizure": "none",
    "motor_weakness": "none",
    "raised_icp": "none",
    "temperature_c": Decimal("37.0"),
    "systolic_bp_mmhg": 120,
    "vasopressors": "none",
    "oxygen": "none",
}
FEVER = {**CALM, "temperature_c": Decimal("38.6")}  # CRS grade 1


def _car_t(patient, oncologist, in_hours: float, coi: str) -> list[MonitoringTest]:
    """A CAR-T course infused `in_hours` from now (negative: ago); its assessment tests by due time."""
    course = start_course(patient, oncologist, CAR_T, in_hours=in_hours, chain_of_identity=coi)
    linked = CourseMonitoringTest.objects.filter(course=course).values("monitoring_test")
    return list(MonitoringTest.objects.filter(pk__in=linked, lab_test__name=ASSESSMENT).order_by("due_at"))


def _record(patient, nurse, at: datetime | None = None, **findings):
    now = timezone.now()
    return assessment_record(patient=patient, assessed_at=at or now, user=nurse, now=now, **(findings or CALM))


# --- The catalogue and the rule ----------------------------------------------------------------------------------


def test_the_assessment_is_a_bedside_test_without_loinc_and_a_specimen_test_needs_one():
    test = LabTest.objects.get(name=ASSESSMENT)
    assert (test.kind, test.loinc_code, test.is_bedside) == (LabTestKind.BEDSIDE_ASSESSMENT, "", True)
    assert not hasattr(test, "specimen_requirement")
    assert not hasattr(test, "result_spec")
    with pytest.raises(IntegrityError), transaction.atomic():
        LabTest.objects.create(name="Unnamed specimen test", loinc_code="")


def _hourly(day_from: int, day_to: int, hours: int) -> MonitoringRule:
    return MonitoringRule(
        kind=RuleKind.DAILY_AFTER_INFUSION, day_from=day_from, day_to=day_to, interval_hours=hours, gates_dose=False
    )


def test_every_8_hours_d0_to_d7_then_every_12_hours_to_d14():
    dose = Dose(number=1, planned_at=INFUSION)
    first = [due for due, _ in _rule_due_times(_hourly(0, 7, 8), [dose], INFUSION - timedelta(days=5))]
    later = [due for due, _ in _rule_due_times(_hourly(8, 14, 12), [dose], INFUSION)]
    assert len(first) == 24
    assert len(later) == 14
    assert (first[0], first[-1]) == (INFUSION, INFUSION + timedelta(days=7, hours=16))
    assert (later[0], later[-1]) == (INFUSION + timedelta(days=8), INFUSION + timedelta(days=14, hours=12))
    steps = {b - a for a, b in zip([*first, *later], [*first, *later][1:], strict=False)}
    assert steps == {8 * H, 12 * H}  # no gap and no overlap between the two rules


def test_an_interval_in_hours_on_another_kind_is_refused_not_ignored():
    rule = MonitoringRule(kind=RuleKind.EVERY_N_DAYS, interval_hours=8)
    with pytest.raises(ValueError, match="interval in hours"):
        _rule_due_times(rule, [], INFUSION)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"interval_hours": 0}, "at least 1 hour"),
        ({"interval_days": 1}, "in days or in hours"),
        ({"kind": RuleKind.EVERY_N_DAYS}, "counted from the infusion"),
    ],
)
def test_a_bad_hourly_rule_is_refused_naming_the_field(changes, words):
    rule = _hourly(0, 7, 8)
    for name, value in changes.items():
        setattr(rule, name, value)
    rule.regimen, rule.lab_test = Regimen.objects.get(name=CAR_T), LabTest.objects.get(name=ASSESSMENT)
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert any(words in message for message in caught.value.message_dict["interval_hours"])


def test_the_database_refuses_hours_and_days_together():
    regimen, test = Regimen.objects.get(name=CAR_T), LabTest.objects.get(name=ASSESSMENT)
    with pytest.raises(IntegrityError), transaction.atomic():
        MonitoringRule.objects.create(
            regimen=regimen, lab_test=test, kind=RuleKind.DAILY_AFTER_INFUSION, day_from=0, day_to=7,
            interval_hours=8, interval_days=1,
        )  # fmt: skip


# --- The schedule of a course ------------------------------------------------------------------------------------


def test_a_car_t_course_schedules_38_assessments_from_the_infusion(patient_a, oncologist_a):
    tests = _car_t(patient_a, oncologist_a, 20, "COI-2026-000901")
    course = CourseMonitoringTest.objects.filter(monitoring_test=tests[0]).get().course
    infusion = first_dose(course).planned_at
    assert len(tests) == 38
    assert tests[0].due_at == infusion
    assert tests[23].due_at == infusion + timedelta(days=7, hours=16)
    assert tests[24].due_at == infusion + timedelta(days=8)
    assert tests[-1].due_at == infusion + timedelta(days=14, hours=12)
    assert {t.grace_period for t in tests} == {2 * H}
    assert {t.status for t in tests} == {MonitoringTestStatus.SCHEDULED}
    links = CourseMonitoringTest.objects.filter(monitoring_test__in=tests).select_related("rule")
    assert all(link.dose_id is None and not link.rule.gates_dose for link in links)


def test_a_checkpoint_inhibitor_course_schedules_no_assessment(patient_a, oncologist_a):
    start_course(patient_a, oncologist_a, PEMBRO)
    assert not MonitoringTest.objects.filter(patient=patient_a, lab_test__kind=LabTestKind.BEDSIDE_ASSESSMENT).exists()


# --- Recording satisfies the due one ----------------------------------------------------------------------------


def test_recording_satisfies_the_due_assessment_and_not_a_later_one(client, patient_a, oncologist_a, nurse_a):
    due, later, *_ = _car_t(patient_a, oncologist_a, -1, "COI-2026-000902")  # due 1 h ago, next in 7 h
    assessment = _record(patient_a, nurse_a)
    assert assessment.monitoring_test_id == due.pk
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == (MonitoringTestStatus.SATISFIED, MonitoringTestStatus.SCHEDULED)

    # a second assessment now finds nothing due (the next is 7 h away, beyond the 2 h window)
    again = _record(patient_a, nurse_a, **FEVER)
    assert again.monitoring_test_id is None
    client.force_login(nurse_a)
    shown = client.get(f"/assessments/{assessment.pk}/").content.decode()
    assert f"satisfied the assessment due {timezone.localtime(due.due_at):%Y-%m-%d %H:%M}" in shown
    assert "no scheduled assessment was due" in client.get(f"/assessments/{again.pk}/").content.decode()
    later.refresh_from_db()
    assert later.status == MonitoringTestStatus.SCHEDULED


def test_an_assessment_up_to_2_hours_early_satisfies_it(patient_a, oncologist_a, nurse_a):
    _, second, *_ = _car_t(patient_a, oncologist_a, -7, "COI-2026-000903")  # due 7 h ago and in 1 h
    _record(patient_a, nurse_a, at=timezone.now() - 7 * H)
    early = _record(patient_a, nurse_a)
    assert early.monitoring_test_id == second.pk
    assert MonitoringTest.objects.get(pk=second.pk).status == MonitoringTestStatus.SATISFIED


def test_the_earliest_open_one_is_satisfied_first(patient_a, oncologist_a, nurse_a):
    first, second, *_ = _car_t(patient_a, oncologist_a, -9, "COI-2026-000904")  # due 9 h and 1 h ago
    assert _record(patient_a, nurse_a).monitoring_test_id == first.pk
    assert _record(patient_a, nurse_a).monitoring_test_id == second.pk


def test_an_amendment_keeps_the_test_and_satisfies_no_second_one(patient_a, oncologist_a, nurse_a):
    due, later, *_ = _car_t(patient_a, oncologist_a, -1.5, "COI-2026-000905")  # due 1.5 h ago, next in 6.5 h
    original = _record(patient_a, nurse_a)
    amended = assessment_amend(
        assessment=original, reason="Temperature re-measured", user=nurse_a, now=timezone.now(),
        assessed_at=timezone.now(), **FEVER,
    )  # fmt: skip
    assert amended.monitoring_test_id == original.monitoring_test_id == due.pk
    later.refresh_from_db()
    assert later.status == MonitoringTestStatus.SCHEDULED
    assert Assessment.objects.filter(monitoring_test=due, is_current=True).count() == 1


def test_a_pending_grade_leaves_the_test_open_until_an_amendment_completes_it(patient_a, oncologist_a, nurse_a):
    due, *_ = _car_t(patient_a, oncologist_a, -1, "COI-2026-000906")
    partial = _record(patient_a, nurse_a, temperature_c=Decimal("38.2"))  # blood pressure etc. not recorded
    assert partial.crs_grade is None
    assert partial.monitoring_test_id is None
    assert MonitoringTest.objects.get(pk=due.pk).status == MonitoringTestStatus.SCHEDULED
    complete = assessment_amend(assessment=partial, reason="Rest recorded", user=nurse_a, now=timezone.now(), **FEVER)
    assert complete.monitoring_test_id == due.pk
    assert MonitoringTest.objects.get(pk=due.pk).status == MonitoringTestStatus.SATISFIED


# --- Overdue: the sweep's own alert ------------------------------------------------------------------------------


def test_an_overdue_assessment_alerts_the_nurses_and_is_never_a_collection(
    patient_a, oncologist_a, nurse_a, api_as, client
):
    missed, upcoming, *_ = _car_t(patient_a, oncologist_a, -3, "COI-2026-000907")  # due 3 h ago, grace 2 h
    monitoring_tests_flag_overdue()  # the real sweep, database clock

    missed.refresh_from_db()
    assert missed.status == MonitoringTestStatus.OVERDUE
    assert MonitoringTest.objects.get(pk=upcoming.pk).status == MonitoringTestStatus.SCHEDULED
    alert = Alert.objects.get(kind=AlertKind.ASSESSMENT_OVERDUE)
    assert alert.patient_id == patient_a.pk
    assert alert.summary == f"CRS/ICANS assessment overdue: {ASSESSMENT}"
    assert (alert.audience, alert.severity, list(alert.members)) == (
        AlertAudience.NURSES, AlertSeverity.HIGH, [missed.pk]
    )  # fmt: skip
    assert alert in alert_list(user=nurse_a)
    assert alert not in alert_list(user=oncologist_a)
    # no collection alert names it (the course's specimen tests may have their own)
    assert not Alert.objects.filter(kind=AlertKind.COLLECTION_OVERDUE, members__contains=[missed.pk]).exists()
    monitoring_tests_flag_overdue()  # level-triggered: nothing new
    assert Alert.objects.filter(kind=AlertKind.ASSESSMENT_OVERDUE).count() == 1

    # not on the ward's collection list, the collect screen or its count, and never collected
    drawn = {t.pk for draw in collection_list(user=nurse_a, ward="Ward 4A", due_by=timezone.now()) for t in draw.tests}
    assert missed.pk not in drawn
    body = api_as(nurse_a).get("/api/collection-list/", {"ward": "Ward 4A"}).json()
    assert missed.pk not in {test["id"] for draw in body for tube in draw["tubes"] for test in tube["tests"]}
    assert missed not in due_tests_for_patient(user=nurse_a, patient=patient_a, due_by=timezone.now())
    client.force_login(nurse_a)
    page = client.get(f"/specimens/collect/{patient_a.pk}/").content.decode()
    assert f'value="{missed.pk}"' not in page
    assert ASSESSMENT not in page
    with pytest.raises(ValidationError) as caught:
        specimens_collect(
            patient=patient_a, wristband=patient_a.mrn, monitoring_tests=[missed], user=nurse_a, now=timezone.now()
        )
    assert "bedside assessment" in caught.value.message_dict["monitoring_tests"][0]
    response = api_as(nurse_a).post(
        "/api/specimens/collect/",
        {"patient": patient_a.pk, "wristband": patient_a.mrn, "monitoring_tests": [missed.pk]},
        format="json",
    )
    assert response.status_code == 400
    assert "monitoring_tests" in response.json()
    with pytest.raises(MonitoringTestConflict):
        monitoring_test_record_collection(monitoring_test=missed, user=nurse_a, now=timezone.now())

    # recording the assessment satisfies it and resolves the alert
    assessment = _record(patient_a, nurse_a)
    assert assessment.monitoring_test_id == missed.pk
    alert.refresh_from_db()
    assert (alert.status, alert.resolution_reason) == (AlertStatus.RESOLVED, ResolutionReason.ASSESSMENT_RECORDED)
    assert MonitoringTest.objects.get(pk=missed.pk).status == MonitoringTestStatus.SATISFIED


def test_an_assessment_and_a_specimen_test_due_together_raise_two_alerts(patient_a, nurse_a):
    due = timezone.now() - 3 * H
    crp = factories.make_test(patient_a, due_at=due, grace=timedelta(0), name="CRP")
    bedside = factories.make_test(patient_a, due_at=due, grace=timedelta(0), name=ASSESSMENT)
    monitoring_tests_flag_overdue()
    collection = Alert.objects.get(kind=AlertKind.COLLECTION_OVERDUE)
    assessment = Alert.objects.get(kind=AlertKind.ASSESSMENT_OVERDUE)
    assert (list(collection.members), collection.summary) == ([crp.pk], "Collection overdue: CRP")
    assert list(assessment.members) == [bedside.pk]
    assert collection.fold_key != assessment.fold_key


def test_the_chart_offers_to_assess_a_due_assessment_and_to_collect_only_specimens(client, patient_a, nurse_a):
    factories.make_test(patient_a, due_at=timezone.now() - H, grace=4 * H, name=ASSESSMENT)
    client.force_login(nurse_a)
    response = client.get(f"/patients/{patient_a.pk}/")
    html = response.content.decode()
    assert 'data-testid="assess-link"' in html
    assert 'data-testid="collect-link"' not in html
    assert response.context["collectable"] == 0
    assert '<span class="tag">bedside</span>' in html


# --- Grades beside CRP and ferritin on the patient page ----------------------------------------------------------


def _verified(patient, nurse, technicians, values: dict[str, tuple[str, str]], observed_at: datetime) -> None:
    specimen = collected_specimen(patient, nurse, *values)
    entries = [ResultEntry(specimen, analyte(name), value, unit, observed_at) for name, (value, unit) in values.items()]
    results_verify(results=results_enter(entries=entries, user=technicians[0], now=timezone.now()),
                   user=technicians[1], now=timezone.now())  # fmt: skip


def test_the_patient_page_shows_the_grades_beside_crp_and_ferritin(client, patient_a, nurse_a, technicians):
    now = timezone.now().replace(second=0, microsecond=0)
    _record(patient_a, nurse_a, at=now - 10 * H)
    _record(patient_a, nurse_a, at=now - 2 * H, **FEVER)
    _verified(patient_a, nurse_a, technicians, {"CRP": ("85.0", "mg/L"), "Ferritin": ("1450", "ng/mL")}, now - 3 * H)
    _verified(patient_a, nurse_a, technicians, {"CRP": ("4.0", "mg/L")}, now - 40 * H)  # before the period

    client.force_login(nurse_a)
    response = client.get(f"/patients/{patient_a.pk}/")
    html = response.content.decode()
    assert 'data-testid="grades-beside-labs"' in html
    rows = response.context["grades_beside_labs"]
    assert [row.at for row in rows] == [now - 10 * H, now - 3 * H, now - 2 * H]  # time order, one row per time
    assert [row.point.assessment.crs_grade if row.point else None for row in rows] == [0, None, 1]
    crp, ferritin = rows[1].labs
    assert (crp.value, crp.unit, ferritin.value, ferritin.unit) == ("85.0", "mg/L", "1450", "ng/mL")
    assert crp.flag == "H"
    assert '85.0 <span class="muted">mg/L</span>' in html
    assert "4.0" not in [lab.value for row in rows for lab in row.labs if lab]
    assert html.count('data-testid="grade-lab-row"') == 3


def test_no_grades_no_table(client, patient_a, nurse_a, technicians):
    _verified(patient_a, nurse_a, technicians, {"CRP": ("85.0", "mg/L")}, timezone.now() - H)
    client.force_login(nurse_a)
    assert 'data-testid="grades-beside-labs"' not in client.get(f"/patients/{patient_a.pk}/").content.decode()


def test_every_car_t_product_in_the_catalogue_has_the_same_hourly_assessment_plan():
    """Each CAR-T regimen (not the fresh autologous vaccine, not the TIL) schedules CRS/ICANS assessments every 8 h
    to D7 and every 12 h to D14: the seeds that copied the first product's rules kept the hours (not daily)."""
    car_t = Regimen.objects.filter(drug__cell_therapy=True, drug__target__contains="CAR T")
    assert car_t.count() >= 6
    for regimen in car_t:
        plan = sorted(
            (r.day_from, r.day_to, r.interval_hours)
            for r in regimen.monitoring_rules.filter(lab_test__kind=LabTestKind.BEDSIDE_ASSESSMENT)
        )
        assert plan == [(0, 7, 8), (8, 14, 12)], regimen.name
