"""Alert lifecycle: open → acknowledged → resolved, self-resolution, escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.choices import Role
from alerts.choices import AlertSeverity, AlertStatus, ResolutionReason
from alerts.models import Alert
from alerts.services import alerts_escalate_unacknowledged
from monitoring.choices import MonitoringTestStatus
from monitoring.services import monitoring_tests_flag_overdue
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue_alert(patient_a):
    test = factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    return Alert.objects.get(pk=alert_id), test


def test_acknowledge_then_resolve_records_who_when_and_comment(api_as, nurse_a, overdue_alert):
    alert, _ = overdue_alert
    client = api_as(nurse_a)
    response = client.post(f"/api/alerts/{alert.pk}/acknowledge/", {"comment": "Calling phlebotomy"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_by"] == nurse_a.pk
    assert response.json()["acknowledge_comment"] == "Calling phlebotomy"

    response = client.post(f"/api/alerts/{alert.pk}/resolve/", {"comment": "Drawn at 10:40"}, format="json")
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolved_by == nurse_a
    assert alert.resolution_reason == ResolutionReason.MANUAL
    assert alert.resolve_comment == "Drawn at 10:40"
    assert alert.acknowledged_at <= alert.resolved_at


def test_acknowledging_twice_is_a_conflict_and_changes_nothing(api_as, team_a, nurse_a, overdue_alert):
    alert, _ = overdue_alert
    other_nurse = factories.make_user(Role.NURSE, team_a)
    assert api_as(nurse_a).post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 200
    response = api_as(other_nurse).post(f"/api/alerts/{alert.pk}/acknowledge/", {"comment": "me too"})
    assert response.status_code == 409
    assert "already acknowledged" in response.json()["detail"]
    alert.refresh_from_db()
    assert alert.acknowledged_by == nurse_a
    assert alert.acknowledge_comment == ""


def test_resolving_a_resolved_alert_is_a_conflict(api_as, nurse_a, overdue_alert):
    alert, _ = overdue_alert
    client = api_as(nurse_a)
    assert client.post(f"/api/alerts/{alert.pk}/resolve/").status_code == 200
    assert client.post(f"/api/alerts/{alert.pk}/resolve/").status_code == 409
    assert client.post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 409


def test_specimen_collected_resolves_the_alert_with_the_reason(api_as, nurse_a, patient_a, overdue_alert):
    alert, test = overdue_alert
    collect = {"patient": patient_a.pk, "wristband": patient_a.mrn, "monitoring_tests": [test.pk]}
    response = api_as(nurse_a).post("/api/specimens/collect/", collect, format="json")
    assert response.status_code == 201, response.content
    test.refresh_from_db()
    assert test.status == MonitoringTestStatus.COLLECTED
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution_reason == ResolutionReason.SPECIMEN_COLLECTED
    assert alert.resolved_by == nurse_a
    # A second collection of the same test is refused.
    assert api_as(nurse_a).post("/api/specimens/collect/", collect, format="json").status_code == 409


def test_cancelling_a_test_resolves_its_alert(api_as, oncologist_a, overdue_alert):
    alert, test = overdue_alert
    client = api_as(oncologist_a)
    assert client.post(f"/api/monitoring-tests/{test.pk}/cancel/", {}).status_code == 400
    response = client.post(f"/api/monitoring-tests/{test.pk}/cancel/", {"reason": "Course stopped"})
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.resolution_reason == ResolutionReason.TEST_CANCELLED


def test_nurse_may_not_cancel_and_technician_may_not_acknowledge(api_as, nurse_a, technician, overdue_alert):
    alert, test = overdue_alert
    assert api_as(nurse_a).post(f"/api/monitoring-tests/{test.pk}/cancel/", {"reason": "x"}).status_code == 403
    assert api_as(technician).post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 403


def test_a_moderate_overdue_alert_is_never_escalated_nor_promoted(overdue_alert):
    alert, _ = overdue_alert
    assert alerts_escalate_unacknowledged(now=timezone.now() + timedelta(hours=12)) == []
    alert.refresh_from_db()
    assert alert.escalated_at is None
    assert alert.severity == AlertSeverity.MODERATE
