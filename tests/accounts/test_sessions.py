"""Login, logout, idle timeout that background polling does not keep alive, roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.choices import Role

pytestmark = pytest.mark.django_db

POLL = {"HTTP_X_LABFLOW_POLL": "1", "HTTP_HX_REQUEST": "true"}


def test_login_and_logout_pages(client, nurse_a):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "nurse.a", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert client.get("/alerts/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/alerts/").status_code == 302


def test_wrong_password_is_refused_and_repeated_failures_lock_out(client, nurse_a):
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "nurse.a", "password": "wrong"})
        assert "_auth_user_id" not in client.session
    response = client.post("/accounts/login/", {"username": "nurse.a", "password": "a-long-test-password"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_idle_session_expires_even_while_the_inbox_polls(client, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(nurse_a)
        assert client.get("/alerts/").status_code == 200  # real activity
        for minutes in (5, 10, 14):
            traveller.move_to(start + timedelta(minutes=minutes))
            assert client.get("/alerts/inbox/", **POLL).status_code == 200
            assert client.get("/alerts/badge/", **POLL).status_code == 200
        traveller.move_to(start + timedelta(minutes=15, seconds=1))
        expired = client.get("/alerts/inbox/", **POLL)
        assert expired.status_code == 401
        assert expired["HX-Redirect"] == "/accounts/login/?next=%2Falerts%2Finbox%2F&reason=idle"
        assert client.get("/alerts/").status_code == 302  # logged out for good


def test_real_activity_keeps_the_session_alive(client, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(nurse_a)
        client.get("/alerts/")
        for minutes in (10, 20, 30):
            traveller.move_to(start + timedelta(minutes=minutes))
            assert client.get("/patients/").status_code == 200


def test_idle_api_session_gets_401_json(client, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(nurse_a)
        client.get("/api/alerts/")
        traveller.move_to(start + timedelta(minutes=16))
        response = client.get("/api/alerts/")
        assert response.status_code == 401
        assert "inactivity" in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "granted", "refused"),
    [
        (Role.NURSE, {"alerts.handle_alert", "monitoring.record_collection"}, {"monitoring.cancel_monitoringtest"}),
        (
            Role.ONCOLOGIST,
            {"alerts.handle_alert", "monitoring.cancel_monitoringtest"},
            {"monitoring.record_collection"},
        ),
        (Role.LAB_TECHNICIAN, {"monitoring.record_collection", "patients.view_patient"}, {"alerts.handle_alert"}),
    ],
)
def test_roles_are_groups_with_permissions(role, granted, refused):
    group = Group.objects.get(name=role.label)
    codes = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert granted <= codes
    assert not (refused & codes)


def _session_writes(client, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return [q for q in queries if q["sql"].startswith('UPDATE "django_session"')]


def test_activity_is_written_at_most_every_30_seconds(client, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(nurse_a)
        client.get("/patients/")
        first = client.session["labflow_last_activity"]
        traveller.move_to(start + timedelta(seconds=29))
        assert not _session_writes(client, "/patients/")
        assert client.session["labflow_last_activity"] == first
        traveller.move_to(start + timedelta(seconds=30))
        assert _session_writes(client, "/patients/")
        assert client.session["labflow_last_activity"] == first + 30


def test_unrecorded_activity_makes_the_timeout_come_early_never_late(client, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(nurse_a)
        client.get("/patients/")
        traveller.move_to(start + timedelta(seconds=29))
        client.get("/patients/")  # within the resolution: not recorded
        traveller.move_to(start + timedelta(minutes=15, seconds=1))  # 14 min 32 s after that view
        assert client.get("/patients/").status_code == 302


def test_a_background_request_sends_the_user_back_to_the_page_it_polled_from(client, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(nurse_a)
        client.get("/patients/")
        traveller.move_to(start + timedelta(minutes=16))
        expired = client.get("/alerts/badge/", HTTP_HX_CURRENT_URL="http://testserver/patients/search/", **POLL)
        assert expired.status_code == 401
        assert expired["HX-Redirect"] == "/accounts/login/?next=%2Fpatients%2Fsearch%2F&reason=idle"
