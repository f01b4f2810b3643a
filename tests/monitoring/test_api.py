"""Monitoring-test API: creation, bad input (400 naming the field, nothing written), filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MonitoringTest
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def valid(patient_a):
    return {
        "patient": patient_a.pk,
        "lab_test": factories.lab_test("TSH").pk,
        "due_at": (timezone.now() + timedelta(hours=2)).isoformat(),
        "grace_minutes": 60,
    }


def test_schedule_a_monitoring_test(api_as, nurse_a, valid):
    response = api_as(nurse_a).post("/api/monitoring-tests/", valid, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["grace_minutes"] == 60
    assert body["lab_test"]["loinc_code"] == "3016-3"
    test = MonitoringTest.objects.get(pk=body["id"])
    assert test.deadline == test.due_at + timedelta(minutes=60)
    assert test.created_by == nurse_a


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"due_at": "2026-02-30T10:00"}, "due_at", "Datetime has wrong format"),
        ({"due_at": "tomorrow"}, "due_at", "Datetime has wrong format"),
        ({"patient": 999999}, "patient", "does not exist"),
        ({"grace_minutes": -5}, "grace_minutes", "greater than or equal to 0"),
        ({"grace_minutes": 20000}, "grace_minutes", "less than or equal to"),
        ({"lab_test": "abc"}, "lab_test", "Incorrect type"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(api_as, nurse_a, valid, change, field, reason):
    before = MonitoringTest.objects.count()
    response = api_as(nurse_a).post("/api/monitoring-tests/", {**valid, **change}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert reason in response.json()[field][0]
    assert MonitoringTest.objects.count() == before


def test_missing_fields_are_each_named(api_as, nurse_a):
    response = api_as(nurse_a).post("/api/monitoring-tests/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"patient", "lab_test", "due_at", "grace_minutes"}


def test_another_teams_patient_is_unknown(api_as, nurse_b, valid):
    response = api_as(nurse_b).post("/api/monitoring-tests/", valid, format="json")
    assert response.status_code == 400
    assert "patient" in response.json()
    assert not MonitoringTest.objects.exists()


def test_technician_cannot_schedule(api_as, technician, valid):
    assert api_as(technician).post("/api/monitoring-tests/", valid, format="json").status_code == 403


def test_filters_by_status_and_due_window(api_as, nurse_a, patient_a):
    soon = factories.make_test(patient_a, due_at=timezone.now() + timedelta(hours=1))
    factories.make_test(patient_a, due_at=timezone.now() + timedelta(days=3))
    client = api_as(nurse_a)
    until = (timezone.now() + timedelta(hours=2)).isoformat()
    ids = [t["id"] for t in client.get("/api/monitoring-tests/", {"due_at_before": until}).json()["results"]]
    assert ids == [soon.pk]
    assert client.get("/api/monitoring-tests/", {"status": "overdue"}).json()["count"] == 0
    assert client.get("/api/monitoring-tests/", {"status": "nonsense"}).status_code == 400


def test_unknown_alert_filter_value_is_400(api_as, nurse_a):
    response = api_as(nurse_a).get("/api/alerts/", {"status": "gone"})
    assert response.status_code == 400
    assert "status" in response.json()
