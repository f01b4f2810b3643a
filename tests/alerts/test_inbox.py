"""The nurse's inbox page: ordering, conditional GET, constant queries, header count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.choices import AlertSeverity
from alerts.models import Alert
from alerts.services import alert_acknowledge
from monitoring.services import monitoring_tests_flag_overdue
from tests import factories

pytestmark = pytest.mark.django_db
POLL = {"HTTP_X_LABFLOW_POLL": "1", "HTTP_HX_REQUEST": "true"}


def _raise(patient, count, hours_ago=1):
    for i in range(count):
        factories.make_test(patient, due_at=timezone.now() - timedelta(hours=hours_ago, minutes=i), grace=timedelta(0))
    return monitoring_tests_flag_overdue()


def test_inbox_lists_most_severe_then_newest_first(client, nurse_a, patient_a):
    oldest, middle, newest = (_raise(patient_a, 1)[0] for _ in range(3))  # three sweeps, three raise times
    Alert.objects.filter(pk=oldest).update(severity=AlertSeverity.HIGH)
    client.force_login(nurse_a)
    rows = [a.pk for a in client.get("/alerts/inbox/").context["alerts"]]
    assert rows == [oldest, newest, middle]


def test_inbox_poll_answers_304_until_something_changes(client, nurse_a, patient_a):
    (alert_id,) = _raise(patient_a, 1)
    client.force_login(nurse_a)
    first = client.get("/alerts/inbox/", **POLL)
    assert first.status_code == 200
    etag = first["ETag"]
    assert "no-cache" in first["Cache-Control"]
    assert client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=etag, **POLL).status_code == 304

    _raise(patient_a, 1, hours_ago=2)  # a new alert
    changed = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=etag, **POLL)
    assert changed.status_code == 200
    etag = changed["ETag"]

    alert_acknowledge(alert=Alert.objects.get(pk=alert_id), user=nurse_a, now=timezone.now())
    assert client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=etag, **POLL).status_code == 200


def test_inbox_query_count_does_not_grow_with_alerts(client, nurse_a, oncologist_a, patient_a):
    client.force_login(nurse_a)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/alerts/inbox/", **POLL).status_code == 200
        return len(captured)

    alert_ids = _raise(patient_a, 1)
    alert_acknowledge(alert=Alert.objects.get(pk=alert_ids[0]), user=nurse_a, now=timezone.now())
    queries()  # warm-up: first request after login writes the session
    one = queries()
    more = _raise(patient_a, 30, hours_ago=3)
    for pk in more[:10]:
        alert_acknowledge(alert=Alert.objects.get(pk=pk), user=oncologist_a, now=timezone.now())
    assert queries() == one


def test_header_count_on_every_page_drops_after_acknowledge(client, nurse_a, patient_a):
    (alert_id,) = _raise(patient_a, 1)
    client.force_login(nurse_a)
    for page in ("/alerts/", "/patients/", f"/patients/{patient_a.pk}/"):
        assert 'data-testid="alert-count" title="Open alerts">1<' in client.get(page).content.decode()
    response = client.post(f"/alerts/{alert_id}/acknowledge/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'title="Open alerts">0<' in response.content.decode()
    assert 'title="Open alerts">0<' in client.get("/alerts/badge/", **POLL).content.decode()


def test_acknowledging_twice_in_the_ui_is_409_with_a_message(client, nurse_a, patient_a):
    (alert_id,) = _raise(patient_a, 1)
    client.force_login(nurse_a)
    assert client.post(f"/alerts/{alert_id}/acknowledge/").status_code == 200
    again = client.post(f"/alerts/{alert_id}/acknowledge/")
    assert again.status_code == 409
    assert "already acknowledged" in again.content.decode()


def test_technician_cannot_acknowledge_in_the_ui(client, technician, patient_a):
    (alert_id,) = _raise(patient_a, 1)
    client.force_login(technician)
    assert client.post(f"/alerts/{alert_id}/acknowledge/").status_code == 403


def test_acknowledgement_with_an_older_timestamp_still_changes_the_etag(client, nurse_a, patient_a):
    (alert_id,) = _raise(patient_a, 1)
    alert = Alert.objects.get(pk=alert_id)
    client.force_login(nurse_a)
    etag = client.get("/alerts/inbox/", **POLL)["ETag"]
    alert_acknowledge(alert=alert, user=nurse_a, now=alert.updated_at - timedelta(seconds=1))
    assert client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=etag, **POLL).status_code == 200


def test_a_stopped_sweep_reaches_an_open_inbox(client, nurse_a):
    from monitoring.models import SweepHeartbeat
    from monitoring.services import sweep_heartbeat_record

    sweep_heartbeat_record(name="overdue_sweep", flagged=0)
    client.force_login(nurse_a)
    fresh = client.get("/alerts/inbox/", **POLL)
    assert "has not run recently" not in fresh.content.decode()
    SweepHeartbeat.objects.update(last_run_at=timezone.now() - timedelta(minutes=10))
    stale = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=fresh["ETag"], **POLL)
    assert stale.status_code == 200
    assert "has not run recently" in stale.content.decode()


def test_stale_sweep_warning_shows(client, nurse_a):
    client.force_login(nurse_a)
    assert "has not run recently" in client.get("/alerts/").content.decode()
    from monitoring.services import sweep_heartbeat_record

    sweep_heartbeat_record(name="overdue_sweep", flagged=0)
    assert "has not run recently" not in client.get("/alerts/").content.decode()


def test_collection_from_the_patient_chart_goes_through_the_wristband_scan_and_resolves_alert(
    client, nurse_a, patient_a
):
    (alert_id,) = _raise(patient_a, 1)
    alert = Alert.objects.get(pk=alert_id)
    client.force_login(nurse_a)
    collect = f"/specimens/collect/{patient_a.pk}/"
    assert f'href="{collect}"' in client.get(f"/patients/{patient_a.pk}/").content.decode()
    response = client.post(collect, {"wristband": patient_a.mrn, "tests": [alert.subject_id]})
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_inbox_renders_at_most_200_rows_and_says_how_many_more(client, nurse_a, patient_a, monkeypatch):
    from alerts import views

    monkeypatch.setattr(views, "INBOX_ROWS", 3)
    _raise(patient_a, 5)
    client.force_login(nurse_a)
    page = client.get("/alerts/inbox/", **POLL).content.decode()
    assert page.count('data-testid="alert-row"') == 3
    assert "Showing the 3 most severe and newest of 5 unresolved alerts." in page
