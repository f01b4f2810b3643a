"""Alerts that matter (docs/architecture.md §3): one alert per finding, repeats folded, routed to who can act,
escalation to someone new, moderate alerts held."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from accounts.choices import Role
from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.findings import Finding
from alerts.models import Alert, AlertEscalation, EscalationRung, TeamAlertPolicy
from alerts.selectors import alert_inbox, alert_list
from alerts.services import (
    AlertCondition,
    FindingOutcome,
    alert_acknowledge,
    alert_raise_findings,
    alerts_escalate_unacknowledged,
    alerts_raise,
)
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from patients.choices import CareTeamRole
from patients.models import CareTeamMembership
from results.models import Result
from results.services import ResultEntry, results_enter, results_review, results_verify
from specimens.services import specimen_receive, specimen_record_custody, specimen_reject, specimens_collect
from tests import factories
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


def _member(team, role: CareTeamRole, username: str):
    group = Role.NURSE if "nurse" in role.value else Role.ONCOLOGIST
    user = factories.make_user(group, username=username)
    CareTeamMembership.objects.create(care_team=team, user=user, role=role)
    return user


def _verify(patient, nurse, technicians, panel: str, values: dict[str, tuple[str, str]], now=None) -> list[Result]:
    specimen = collected_specimen(patient, nurse, panel)
    entries = [ResultEntry(specimen, analyte(name), value, unit) for name, (value, unit) in values.items()]
    now = now or timezone.now()
    rows = results_enter(entries=entries, user=technicians[0], now=now)
    return results_verify(results=rows, user=technicians[1], now=now).verified


CAR_T_COUNT = {"WBC": ("0.3", "10*3/uL"), "Neutrophils (ANC)": ("0.1", "10*3/uL"), "Platelets": ("180", "10*3/uL")}


def test_a_car_t_count_with_critical_wbc_and_anc_and_grade_4_neutropenia_raises_one_alert(
    patient_a, nurse_a, oncologist_a, technicians
):
    verified = _verify(patient_a, nurse_a, technicians, "CBC with differential", CAR_T_COUNT)
    assert {r.lab_test.name: r.flag for r in verified}["Neutrophils (ANC)"] == "LL"
    (alert,) = Alert.objects.filter(patient=patient_a)
    assert alert.kind == AlertKind.CRITICAL_RESULT
    assert alert.severity == AlertSeverity.CRITICAL
    assert alert.audience == AlertAudience.CARE_TEAM  # critical values: the nurse and the oncologist
    assert [f["critical"] for f in alert.findings] == [True, True]
    assert "Critical: WBC 0.3" in alert.summary
    assert "Critical: Neutrophils (ANC) 0.1" in alert.summary
    assert "CTCAE grade 4 Neutrophil count decreased" in alert.summary
    assert sorted(alert.members) == sorted(r.pk for r in verified if r.lab_test.name != "Platelets")
    for user in (nurse_a, oncologist_a):
        assert list(alert_list(user=user)) == [alert]


def _platelets(patient, nurse, technicians, value: str, at: datetime) -> None:
    _verify(patient, nurse, technicians, "Platelets", {"Platelets": (value, "10*3/uL")}, at)


def test_a_repeat_folds_into_the_open_alert_and_a_higher_grade_marks_it_worsened(
    api_as, patient_a, nurse_a, oncologist_a, technicians
):
    now = timezone.now()
    _platelets(patient_a, nurse_a, technicians, "40", now - timedelta(hours=30))  # grade 3 (25-50)
    alert = Alert.objects.get(patient=patient_a)
    assert (alert.kind, alert.severity, alert.audience) == (AlertKind.TOXICITY, AlertSeverity.HIGH, "oncologists")
    alert_acknowledge(alert=alert, user=oncologist_a, now=now - timedelta(hours=29))

    # Same grade a day later: the same alert, the latest value, counted; still acknowledged, not worsened.
    _platelets(patient_a, nurse_a, technicians, "45", now - timedelta(hours=6))
    alert.refresh_from_db()
    assert Alert.objects.filter(patient=patient_a).count() == 1
    assert (alert.occurrences, alert.status, alert.worsened_at) == (2, AlertStatus.ACKNOWLEDGED, None)
    assert "Platelets 45" in alert.summary
    assert "(2 times)" in alert.summary
    assert alert.last_occurred_at == now - timedelta(hours=6)

    # Grade 4: the same alert, more severe, open again and marked worsened.
    _platelets(patient_a, nurse_a, technicians, "22", now)
    alert.refresh_from_db()
    assert Alert.objects.filter(patient=patient_a).count() == 1
    assert (alert.severity, alert.status, alert.worsened_at) == (AlertSeverity.CRITICAL, AlertStatus.OPEN, now)
    assert alert.findings[0]["grade"] == 4
    api = api_as(oncologist_a)
    body = api.get(f"/api/alerts/{alert.pk}/").json()
    assert (body["worsened"], body["occurrences"]) == (True, 3)
    page = api.get("/alerts/inbox/").content.decode()
    assert "Worsened" in page
    assert "Seen 3 times" in page

    # A critical value where there was none is news too, whatever the grade.
    _platelets(patient_a, nurse_a, technicians, "15", now + timedelta(hours=1))
    alert.refresh_from_db()
    assert (alert.kind, alert.audience, alert.worsened_at) == (
        AlertKind.CRITICAL_RESULT, AlertAudience.CARE_TEAM, now + timedelta(hours=1)
    )  # fmt: skip


def test_a_repeat_after_the_fold_window_re_opens_the_alert(patient_a, nurse_a, oncologist_a, technicians, settings):
    settings.ALERT_FOLD_WINDOW = timedelta(hours=72)
    now = timezone.now()
    _platelets(patient_a, nurse_a, technicians, "40", now - timedelta(hours=73))
    alert = Alert.objects.get(patient=patient_a)
    alert_acknowledge(alert=alert, user=oncologist_a, now=now - timedelta(hours=72))
    _platelets(patient_a, nurse_a, technicians, "40", now)
    alert.refresh_from_db()
    assert (alert.status, alert.occurrences, alert.worsened_at, alert.notify_at) == ("open", 2, None, now)


def test_three_tests_of_one_draw_raise_one_collection_alert_for_the_nurses(
    patient_a, nurse_a, oncologist_a, technician
):
    due = timezone.now() - timedelta(hours=2)
    tests = [factories.make_test(patient_a, due_at=due, name=n) for n in ("CBC with differential", "TSH", "ALT")]
    (alert_id,) = monitoring_tests_flag_overdue()
    alert = Alert.objects.get(pk=alert_id)
    assert (alert.kind, alert.audience) == (AlertKind.COLLECTION_OVERDUE, AlertAudience.NURSES)
    assert sorted(alert.members) == sorted(t.pk for t in tests)
    assert alert.summary == "Collection overdue: ALT, CBC with differential, TSH"
    assert list(alert_list(user=nurse_a)) == [alert]
    assert list(alert_list(user=oncologist_a)) == []  # the oncologist cannot draw blood

    # Collecting two of three leaves it open for the third; the last one resolves it.
    specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=tests[:2], user=nurse_a,
                      now=timezone.now())  # fmt: skip
    alert.refresh_from_db()
    assert (alert.status, alert.outstanding) == (AlertStatus.OPEN, [tests[2].pk])
    specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=tests[2:], user=nurse_a,
                      now=timezone.now())  # fmt: skip
    alert.refresh_from_db()
    assert (alert.status, alert.resolution_reason) == (AlertStatus.RESOLVED, ResolutionReason.SPECIMEN_COLLECTED)


def test_result_overdue_goes_to_the_lab_then_to_the_care_team_past_the_second_limit(patient_a, nurse_a, technician):
    specimen = collected_specimen(patient_a, nurse_a, "TSH", "Comprehensive metabolic panel")
    late = specimen.collected_at + timedelta(days=2)
    (alert_id,) = monitoring_tests_flag_overdue(now=late)  # one alert for the specimen's two tests
    alert = Alert.objects.get(pk=alert_id)
    assert (alert.kind, alert.audience) == (AlertKind.RESULT_OVERDUE, AlertAudience.LAB)
    assert len(alert.members) == 2
    assert alert in alert_list(user=technician, now=late)
    assert alert not in alert_list(user=nurse_a, now=late)

    assert alerts_escalate_unacknowledged(now=late + timedelta(hours=1, minutes=59)) == []
    alert.refresh_from_db()
    assert alert.audience == AlertAudience.LAB
    alerts_escalate_unacknowledged(now=late + timedelta(hours=2))
    alert.refresh_from_db()
    assert alert.audience == AlertAudience.CARE_TEAM
    assert alert.severity == AlertSeverity.MODERATE  # rerouted, not promoted
    assert alert in alert_list(user=nurse_a, now=late + timedelta(hours=2))


def test_no_result_overdue_while_the_specimen_is_in_transit_up_to_the_transit_limit(
    patient_a, nurse_a, technician, settings
):
    settings.SPECIMEN_TRANSIT_LIMIT = timedelta(hours=2)
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    test = specimen.monitoring_tests.get()
    due = test.result_deadline
    assert due is not None
    dispatched = due - timedelta(minutes=30)
    specimen_record_custody(specimen=specimen, kind="in_transit", user=nurse_a, now=dispatched)
    assert monitoring_tests_flag_overdue(now=due + timedelta(minutes=5)) == []  # on its way: not the lab's fault
    assert monitoring_tests_flag_overdue(now=dispatched + timedelta(hours=2)) != []  # lost in transit: it is


def test_receipt_restores_the_result_deadline(patient_a, nurse_a, technician, settings):
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    test = specimen.monitoring_tests.get()
    due = test.result_deadline
    assert due is not None
    specimen_record_custody(specimen=specimen, kind="in_transit", user=nurse_a, now=due - timedelta(minutes=1))
    held = MonitoringTest.objects.get(pk=test.pk).result_deadline
    assert held is not None
    assert held > due
    specimen_receive(accession=specimen.accession, condition="ROOM", user=technician, now=due - timedelta(seconds=1))
    assert MonitoringTest.objects.get(pk=test.pk).result_deadline == due


@pytest.fixture
def ladder(team_a):
    return {
        "charge": _member(team_a, CareTeamRole.CHARGE_NURSE, "charge.a"),
        "covering": _member(team_a, CareTeamRole.COVERING_ONCOLOGIST, "cover.a"),
        "attending": _member(team_a, CareTeamRole.ATTENDING, "attend.a"),
    }


def _high(patient, audience: AlertAudience = AlertAudience.CARE_TEAM, severity=AlertSeverity.HIGH) -> Alert:
    (alert_id,) = alerts_raise(
        kind=AlertKind.SPECIMEN_REJECTED, severity=severity, subject_model=type(patient), audience=audience,
        conditions=[AlertCondition(patient.pk, patient.pk, "Specimen rejected (Hemolysis): recollect TSH")],
    )  # fmt: skip
    return Alert.objects.get(pk=alert_id)


def test_escalation_climbs_the_default_ladder_one_rung_at_a_time_to_new_people(
    patient_a, nurse_a, oncologist_a, ladder
):
    alert = _high(patient_a)
    start = alert.notify_at
    assert alerts_escalate_unacknowledged(now=start + timedelta(minutes=14)) == []
    assert alerts_escalate_unacknowledged(now=start + timedelta(minutes=15)) == [alert.pk]
    assert alerts_escalate_unacknowledged(now=start + timedelta(minutes=29)) == []
    assert alerts_escalate_unacknowledged(now=start + timedelta(minutes=30)) == [alert.pk]
    assert alerts_escalate_unacknowledged(now=start + timedelta(minutes=60)) == [alert.pk]
    assert alerts_escalate_unacknowledged(now=start + timedelta(hours=6)) == []  # the ladder has three rungs
    steps = list(AlertEscalation.objects.filter(alert=alert).order_by("rung"))
    assert [(s.rung, s.role) for s in steps] == [(1, "charge_nurse"), (2, "covering_oncologist"), (3, "attending")]
    assert [list(s.recipients.all()) for s in steps] == [
        [ladder["charge"]],
        [ladder["covering"]],
        [ladder["attending"]],
    ]
    alert.refresh_from_db()
    assert (alert.escalation_rung, alert.severity) == (3, AlertSeverity.HIGH)
    assert set(alert.escalated_to.all()) == set(ladder.values())
    assert nurse_a not in alert.escalated_to.all()
    assert oncologist_a not in alert.escalated_to.all()
    assert alert in alert_list(user=ladder["attending"])


def test_a_rung_never_reaches_someone_who_already_had_the_alert(team_a, patient_a, nurse_a, oncologist_a):
    """The team's own ladder starts with the nurses: for a care-team alert they had it already (the step is
    recorded, nobody new is reached); for an oncologists' alert they are new."""
    EscalationRung.objects.create(care_team=team_a, position=1, role=CareTeamRole.NURSE, after=timedelta(minutes=5))
    EscalationRung.objects.create(
        care_team=team_a, position=2, role=CareTeamRole.ONCOLOGIST, after=timedelta(minutes=5)
    )
    care_team_alert = _high(patient_a)
    for_oncologists = _high(factories.make_patient(team_a), AlertAudience.ONCOLOGISTS)
    later = care_team_alert.notify_at + timedelta(minutes=10)
    alerts_escalate_unacknowledged(now=later)
    alerts_escalate_unacknowledged(now=later + timedelta(minutes=5))
    assert not care_team_alert.escalated_to.exists()
    assert AlertEscalation.objects.filter(alert=care_team_alert).count() == 2
    assert list(for_oncologists.escalated_to.all()) == [nurse_a]  # rung 2 reached no one new: the oncologist had it
    assert [s.recipients.count() for s in for_oncologists.escalations.order_by("rung")] == [1, 0]
    assert EscalationRung.objects.filter(care_team=None).count() == 3  # the default ladder is not this team's


def test_an_acknowledged_or_moderate_alert_is_not_escalated(patient_a, nurse_a, ladder):
    moderate = _high(patient_a, severity=AlertSeverity.MODERATE)
    acknowledged = _high(factories.make_patient(patient_a.care_team))
    alert_acknowledge(alert=acknowledged, user=nurse_a, now=timezone.now())
    assert alerts_escalate_unacknowledged(now=timezone.now() + timedelta(hours=24)) == []
    moderate.refresh_from_db()
    assert (moderate.severity, moderate.escalated_at) == (AlertSeverity.MODERATE, None)


def test_a_moderate_overdue_alert_that_resolves_within_the_hold_is_never_shown(patient_a, nurse_a, settings):
    settings.ALERT_OVERDUE_HOLD = timedelta(minutes=30)
    deadline = timezone.now() - timedelta(minutes=10)
    test = factories.make_test(patient_a, due_at=deadline, grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    alert = Alert.objects.get(pk=alert_id)
    assert alert.notify_at == alert.raised_at + timedelta(minutes=30)
    assert list(alert_list(user=nurse_a)) == []  # held
    assert list(alert_list(user=nurse_a, now=alert.notify_at)) == [alert]  # shown once the hold is over
    specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=[test], user=nurse_a,
                      now=alert.raised_at + timedelta(minutes=20))  # fmt: skip
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    for moment in (alert.raised_at, alert.notify_at, alert.notify_at + timedelta(days=1)):
        assert list(alert_list(user=nurse_a, now=moment)) == []  # never shown, not even in the history


def _at(hour: int, minute: int = 0) -> datetime:
    today = timezone.localdate()
    return datetime.combine(today, time(hour, minute), tzinfo=timezone.get_default_timezone())


def test_quiet_hours_hold_moderate_alerts_and_never_critical_ones(team_a, patient_a):
    TeamAlertPolicy.objects.create(care_team=team_a, quiet_hours_start=time(22), quiet_hours_end=time(6))
    night = _at(2, 30)
    (moderate_id,) = alerts_raise(
        kind=AlertKind.RESULT_AMENDED, severity=AlertSeverity.MODERATE, subject_model=type(patient_a), now=night,
        conditions=[AlertCondition(patient_a.pk, patient_a.pk, "Amended: TSH 2.0 m[IU]/L (typo)")],
    )  # fmt: skip
    (critical_id,) = alerts_raise(
        kind=AlertKind.CRITICAL_RESULT, severity=AlertSeverity.CRITICAL, subject_model=type(patient_a), now=night,
        conditions=[AlertCondition(patient_a.pk, patient_a.pk, "Critical: Potassium 6.9 mmol/L (HH)")],
    )  # fmt: skip
    assert Alert.objects.get(pk=moderate_id).notify_at == _at(6)
    assert Alert.objects.get(pk=critical_id).notify_at == night
    (day_id,) = alerts_raise(
        kind=AlertKind.RESULT_AMENDED, severity=AlertSeverity.MODERATE, subject_model=type(team_a), now=_at(14),
        conditions=[AlertCondition(team_a.pk, patient_a.pk, "Amended: ALT 30 U/L (typo)")],
    )  # fmt: skip
    assert Alert.objects.get(pk=day_id).notify_at == _at(14)


def test_a_critical_value_swinging_the_other_way_is_news_not_a_repeat(patient_a, nurse_a, technicians):
    now = timezone.now()
    _verify(patient_a, nurse_a, technicians, "Potassium", {"Potassium": ("2.4", "mmol/L")}, now - timedelta(hours=2))
    alert = Alert.objects.get(patient=patient_a)
    alert_acknowledge(alert=alert, user=nurse_a, now=now - timedelta(hours=1))
    _verify(patient_a, nurse_a, technicians, "Potassium", {"Potassium": ("2.5", "mmol/L")}, now - timedelta(hours=1))
    alert.refresh_from_db()
    assert (alert.status, alert.worsened_at) == (AlertStatus.ACKNOWLEDGED, None)  # the same low: folded
    _verify(patient_a, nurse_a, technicians, "Potassium", {"Potassium": ("6.9", "mmol/L")}, now)
    alert.refresh_from_db()
    assert (alert.status, alert.worsened_at) == (AlertStatus.OPEN, now)
    assert [f["label"].split(" · ")[0] for f in alert.findings] == [
        "Critical: Potassium 2.5 mmol/L (LL)", "Critical: Potassium 6.9 mmol/L (HH)"
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_two_verifications_at_once_raise_one_findings_alert(reference_db, team_a):
    """The second verification waits on the first's new alert and folds into it instead of failing."""
    patient = factories.make_patient(team_a)
    first_inside, first_may_commit = threading.Event(), threading.Event()
    outcomes: list[FindingOutcome] = []
    errors: list[BaseException] = []

    def verify(key: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                finding = Finding(key, key, AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS, grade=3, subject_id=1)
                _, outcome = alert_raise_findings(
                    patient_id=patient.pk, subject_model=Result, subject_id=len(outcomes) + 1, findings=[finding],
                    now=timezone.now(),
                )  # fmt: skip
                outcomes.append(outcome)
                if hold:
                    first_inside.set()
                    first_may_commit.wait(timeout=10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=verify, args=("lab:1:low", True))
    first.start()
    assert first_inside.wait(timeout=10)
    second = threading.Thread(target=verify, args=("lab:2:low", False))
    second.start()
    second.join(timeout=1)  # blocked on the first's uncommitted alert
    first_may_commit.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert not errors
    assert outcomes == [FindingOutcome.RAISED, FindingOutcome.WORSENED]
    (alert,) = Alert.objects.filter(patient=patient)
    assert [f["key"] for f in alert.findings] == ["lab:1:low", "lab:2:low"]


def test_a_repeat_after_the_review_is_counted_on_the_reviewed_alert_and_wakes_nobody(
    patient_a, nurse_a, oncologist_a, technicians
):
    """Daily CAR-T counts: the oncologist signed off yesterday's critical ANC; today's, no worse, is counted on
    that alert (the results still wait in the review inbox); a worse one raises a new alert marked worsened."""
    now = timezone.now()
    anc = {"Neutrophils (ANC)": ("0.3", "10*3/uL")}
    (first,) = _verify(patient_a, nurse_a, technicians, "Neutrophils (ANC)", anc, now - timedelta(hours=24))
    alert = Alert.objects.get(patient=patient_a)
    results_review(results=[first], user=oncologist_a, now=now - timedelta(hours=20))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED

    (second,) = _verify(patient_a, nurse_a, technicians, "Neutrophils (ANC)", anc, now - timedelta(hours=1))
    assert Alert.objects.filter(patient=patient_a).count() == 1
    alert.refresh_from_db()
    assert (alert.status, alert.occurrences, alert.last_occurred_at) == (
        AlertStatus.RESOLVED,
        2,
        now - timedelta(hours=1),
    )
    assert second.pk in alert.members
    assert list(alert_inbox(user=nurse_a)) == []  # nobody woken

    worse = {"Neutrophils (ANC)": ("0.3", "10*3/uL"), "Platelets": ("15", "10*3/uL")}
    _verify(patient_a, nurse_a, technicians, "CBC with differential", worse, now)
    new = Alert.objects.filter(patient=patient_a).exclude(pk=alert.pk).get()
    assert (new.status, new.worsened_at) == (AlertStatus.OPEN, now)
    assert list(alert_inbox(user=nurse_a)) == [new]


def test_the_rejected_specimens_alert_resolves_once_every_test_is_drawn_again(patient_a, nurse_a, technician):
    tests = [factories.make_test(patient_a, due_at=timezone.now(), name=n) for n in ("TSH", "ALT")]
    (specimen,) = specimens_collect(
        patient=patient_a, wristband=patient_a.mrn, monitoring_tests=tests, user=nurse_a, now=timezone.now()
    )
    specimen_reject(specimen=specimen, reason="RH", comment="", user=technician, now=timezone.now())
    alert = Alert.objects.get(kind=AlertKind.SPECIMEN_REJECTED)
    assert alert.audience == AlertAudience.NURSES
    redraws = list(MonitoringTest.objects.filter(recollection_of__in=tests).order_by("pk"))
    specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=redraws[:1], user=nurse_a,
                      now=timezone.now())  # fmt: skip
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN  # one test still to draw again
    specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=redraws[1:], user=nurse_a,
                      now=timezone.now())  # fmt: skip
    alert.refresh_from_db()
    assert (alert.status, alert.resolution_reason, alert.resolved_by) == (
        AlertStatus.RESOLVED, ResolutionReason.RECOLLECTED, nurse_a
    )  # fmt: skip


def test_a_finding_back_after_days_away_raises_even_while_other_repeats_keep_the_alert_fresh(
    patient_a, nurse_a, oncologist_a, technicians
):
    """Platelets grade 3 then days without, the daily ANC repeats folding meanwhile: their return is news."""
    now = timezone.now()
    both = {"Neutrophils (ANC)": ("0.3", "10*3/uL"), "Platelets": ("40", "10*3/uL")}
    anc = {"Neutrophils (ANC)": ("0.3", "10*3/uL")}
    first = _verify(patient_a, nurse_a, technicians, "CBC with differential", both, now - timedelta(hours=100))
    results_review(results=first, user=oncologist_a, now=now - timedelta(hours=99))
    _verify(patient_a, nurse_a, technicians, "Neutrophils (ANC)", anc, now - timedelta(hours=50))
    assert Alert.objects.filter(patient=patient_a).count() == 1  # the ANC repeat folded into the reviewed alert
    _verify(patient_a, nurse_a, technicians, "CBC with differential", both, now)
    new = Alert.objects.filter(patient=patient_a, status=AlertStatus.OPEN).get()
    assert "Platelets 40" in new.summary
    assert new.worsened_at is None  # back, not worse
