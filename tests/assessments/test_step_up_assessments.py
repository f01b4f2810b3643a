"""CRS/ICANS assessments around bispecific step-up doses (issue 14; clinical-sources §10): every 8 h through the
label's hospital stay after each dose of the step-up schedule, none after the weekly doses, moved with their dose,
and overdue-flagged by the same sweep as the CAR-T ones."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.choices import AlertAudience, AlertKind
from alerts.models import Alert
from monitoring.choices import MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from orders.choices import RuleKind
from orders.models import CourseMonitoringTest, MonitoringRule, Regimen, RegimenStep
from orders.services.courses import _rule_due_times, course_reschedule
from tests.orders.helpers import start_course

pytestmark = pytest.mark.django_db

TEC = "Teclistamab step-up 0.06/0.3/1.5 mg/kg then 1.5 mg/kg weekly"
EPC = "Epcoritamab DLBCL step-up 0.16/0.8 mg then 48 mg"
ASSESSMENT = "CRS/ICANS assessment (ASTCT)"
H = timedelta(hours=1)


def assessments(course) -> list[CourseMonitoringTest]:
    return list(
        CourseMonitoringTest.objects.filter(course=course, monitoring_test__lab_test__name=ASSESSMENT)
        .select_related("monitoring_test", "dose", "rule")
        .order_by("monitoring_test__due_at")
    )


def test_the_bispecific_regimens_carry_the_rule():
    for name in (TEC, EPC):
        rule = MonitoringRule.objects.get(regimen__name=name, kind=RuleKind.AFTER_STEP_UP_DOSE)
        assert (rule.lab_test.name, rule.interval_hours, rule.gates_dose, rule.grace_hours) == (ASSESSMENT, 8, False, 2)


def test_each_teclistamab_step_up_dose_schedules_assessments_through_its_48_h_stay_and_weekly_doses_none(
    oncologist_a, patient_a
):
    course = start_course(patient_a, oncologist_a, TEC)
    links = assessments(course)
    doses = {d.number: d for d in course.doses.all()}
    assert len(links) == 18  # doses 1, 2, 3: every 8 h from the dose through 48 h, 6 each
    assert all(link.dose for link in links)  # linked to their dose: moving it moves them
    assert {link.dose.number for link in links if link.dose} == {1, 2, 3}
    for number in (1, 2, 3):
        due = [link.monitoring_test.due_at for link in links if link.dose and link.dose.number == number]
        assert due == [doses[number].planned_at + n * 8 * H for n in range(6)]
    assert {link.monitoring_test.grace_period for link in links} == {2 * H}
    assert {link.monitoring_test.status for link in links} == {MonitoringTestStatus.SCHEDULED}


def test_epcoritamab_assesses_only_around_the_dose_with_a_stay(oncologist_a, patient_a):
    regimen = Regimen.objects.get(name=EPC)
    Regimen.objects.filter(pk=regimen.pk).update(active=True)
    # Test data: the diluted strengths pharmacy would enter (not seeded: orders 0016 fails closed without them).
    RegimenStep.objects.filter(regimen=regimen, dose_number=1).update(strength_mg_per_ml=Decimal("0.16"))
    RegimenStep.objects.filter(regimen=regimen, dose_number=2).update(strength_mg_per_ml=Decimal("0.8"))
    course = start_course(patient_a, oncologist_a, EPC)
    links = assessments(course)
    assert {link.dose.number for link in links if link.dose} == {3}  # cycle 1 day 15, 24 h in hospital
    assert len(links) == 3


def test_moving_a_step_up_dose_moves_its_assessments(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, TEC)
    dose_2 = course.doses.get(number=2)
    now = timezone.now()
    course_reschedule(dose=dose_2, planned_at=dose_2.planned_at + 24 * H, user=oncologist_a, now=now)
    dose_2.refresh_from_db()
    open_ones = [link for link in assessments(course) if link.monitoring_test.status == MonitoringTestStatus.SCHEDULED]
    due = sorted(link.monitoring_test.due_at for link in open_ones if link.dose_id == dose_2.pk)
    assert due == [dose_2.planned_at + n * 8 * H for n in range(6)]


def test_a_missed_assessment_after_a_step_up_dose_is_flagged_by_the_sweep(oncologist_a, nurse_a, patient_a):
    course = start_course(patient_a, oncologist_a, TEC, in_hours=-3)  # step-up dose 1 planned 3 h ago
    missed, upcoming = (link.monitoring_test for link in assessments(course)[:2])
    monitoring_tests_flag_overdue()
    missed.refresh_from_db()
    assert missed.status == MonitoringTestStatus.OVERDUE  # due 3 h ago, 2 h grace
    assert MonitoringTest.objects.get(pk=upcoming.pk).status == MonitoringTestStatus.SCHEDULED  # due in 5 h
    alert = Alert.objects.get(kind=AlertKind.ASSESSMENT_OVERDUE, patient=patient_a)
    assert (alert.audience, list(alert.members)) == (AlertAudience.NURSES, [missed.pk])


def test_a_rule_after_step_up_doses_without_hours_is_refused():
    regimen = Regimen.objects.get(name=TEC)
    test = LabTest.objects.get(name=ASSESSMENT)
    rule = MonitoringRule(regimen=regimen, lab_test=test, kind=RuleKind.AFTER_STEP_UP_DOSE)
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert "Say every how many hours" in str(refused.value.message_dict["interval_hours"])
    with pytest.raises(ValueError, match="needs an interval of at least 1 hour"):
        _rule_due_times(rule, [], timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        rule.save()
