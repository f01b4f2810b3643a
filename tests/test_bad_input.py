"""Inputs that once reached the database or Python arithmetic unchecked (found by fuzzing the OpenAPI
schema): each answers a 4xx naming the problem, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.orders.helpers import first_dose, start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


def test_huge_limit_is_capped_not_a_database_error(api_as, technician):
    response = api_as(technician).get("/api/drugs/", {"limit": "9223372036854775808"})
    assert response.status_code == 200


@pytest.mark.parametrize("offset", ["+16:00", "-18:30"])
def test_time_filters_accept_any_offset(api_as, nurse_a, offset):
    client = api_as(nurse_a)
    for path, name in (
        ("/api/alerts/", "raised_at"),
        ("/api/monitoring-tests/", "due_at"),
        ("/api/doses/", "planned_at"),
    ):
        response = client.get(path, {f"{name}_after": f"2026-01-01T00:00:00{offset}"})
        assert response.status_code == 200, (path, response.content)


def test_far_dates_are_refused_with_the_field(api_as, nurse_a, oncologist_a, patient_a):
    payload = {"patient": patient_a.pk, "lab_test": factories.lab_test().pk, "grace_minutes": 1}
    for due in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"):
        response = api_as(nurse_a).post("/api/monitoring-tests/", {**payload, "due_at": due}, format="json")
        assert response.status_code == 400
        assert "due_at" in response.json()
    from orders.models import Regimen

    regimen = Regimen.objects.get(name="Nivolumab 240 mg q2w").pk
    response = api_as(oncologist_a).post(
        "/api/courses/", {"patient": patient_a.pk, "regimen": regimen, "starts_at": "9999-12-01T00:00:00Z"}
    )
    assert response.status_code == 400
    assert "starts_at" in response.json()
    course = start_course(patient_a, oncologist_a, "Nivolumab 240 mg q2w")
    dose = first_dose(course)
    for when in ("9999-12-25T00:00:00Z", "2001-01-01T00:00:00Z", (timezone.now() - timedelta(days=3)).isoformat()):
        response = api_as(oncologist_a).post(
            f"/api/courses/{course.pk}/reschedule/", {"dose": dose.pk, "planned_at": when}
        )
        assert response.status_code == 400, when
        assert "planned_at" in response.json()


@pytest.mark.parametrize("value", ["1e30", "1e10", "-5"])
def test_impossible_result_values_are_refused(api_as, nurse_a, technician, patient_a, value):
    specimen = collected_specimen(patient_a, nurse_a, "Lipase")
    payload = {"specimen": specimen.pk, "results": [{"lab_test": analyte("Lipase").pk, "value": value, "unit": "U/L"}]}
    response = api_as(technician).post("/api/results/", payload, format="json")
    assert response.status_code == 400
    assert "value" in response.json()


def test_deeply_nested_json_is_a_400(api_as, nurse_a):
    body = "[" * 1000 + "]" * 1000
    response = api_as(nurse_a).post("/api/alerts/1/acknowledge/", body, content_type="application/json")
    assert response.status_code in (400, 404)
    assert response.status_code != 500


def test_batch_verify_of_unknown_ids_is_a_400(api_as, technician):
    response = api_as(technician).post("/api/results/verify/", {"results": [99999999]}, format="json")
    assert response.status_code == 400
    assert "results" in response.json()
