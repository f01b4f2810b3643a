"""Care-team scoping in the web UI and the API; authentication everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.services import monitoring_tests_flag_overdue
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert_a(patient_a):
    factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    return alert_id


def test_nurse_of_team_b_gets_404_for_team_a_patient_and_alert_in_api(api_as, nurse_b, patient_a, patient_b, alert_a):
    client = api_as(nurse_b)
    assert client.get(f"/api/patients/{patient_a.pk}/").status_code == 404
    assert client.get(f"/api/alerts/{alert_a}/").status_code == 404
    assert client.post(f"/api/alerts/{alert_a}/acknowledge/").status_code == 404
    assert client.get(f"/api/patients/{patient_b.pk}/").status_code == 200
    assert [p["id"] for p in client.get("/api/patients/").json()["results"]] == [patient_b.pk]
    assert client.get("/api/alerts/").json()["results"] == []
    assert [t["name"] for t in client.get("/api/care-teams/").json()["results"]] == ["Team B"]


def test_nurse_of_team_b_gets_404_for_team_a_patient_and_alert_in_ui(client, nurse_b, patient_a, alert_a):
    client.force_login(nurse_b)
    assert client.get(f"/patients/{patient_a.pk}/").status_code == 404
    assert client.post(f"/alerts/{alert_a}/acknowledge/").status_code == 404
    assert patient_a.mrn not in client.get("/patients/").content.decode()
    assert patient_a.mrn not in client.get("/alerts/").content.decode()


def test_nurse_of_team_a_sees_own_patient_and_alert(client, nurse_a, patient_a, alert_a):
    client.force_login(nurse_a)
    assert patient_a.mrn in client.get(f"/patients/{patient_a.pk}/").content.decode()
    assert patient_a.mrn in client.get("/alerts/").content.decode()


def test_lab_technician_sees_every_patient(api_as, technician, patient_a, patient_b):
    ids = {p["id"] for p in api_as(technician).get("/api/patients/").json()["results"]}
    assert ids == {patient_a.pk, patient_b.pk}


@pytest.mark.parametrize(
    "path",
    ["/api/patients/", "/api/care-teams/", "/api/monitoring-tests/", "/api/alerts/", "/api/lab-tests/", "/api/schema/"],
)
def test_unauthenticated_api_request_gets_401(api, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("path", ["/alerts/", "/alerts/inbox/", "/alerts/badge/", "/patients/", "/api/docs/"])
def test_unauthenticated_page_redirects_to_login(client, path):
    response = client.get(path)
    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/")


def test_token_authentication_works_for_the_api(api, nurse_a, patient_a):
    api.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token(nurse_a)}")
    assert api.get(f"/api/patients/{patient_a.pk}/").json()["mrn"] == patient_a.mrn


def test_user_without_a_role_sees_nothing(api_as, patient_a):
    nobody = factories.make_user(None, None)
    assert api_as(nobody).get("/api/patients/").status_code == 403
