"""Alert push and the poll short-circuit (docs/architecture.md §3 Push): version numbers in Redis rebuilt from
PostgreSQL, publication on commit only with ids and scopes (no patient data), 304 from the session and Redis
before the user is loaded, never across users or past the idle timeout, and PostgreSQL alone while Redis is
down. The browser side (push, forced reconnect, notifications) is tests/e2e/test_browser_push.py."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http.response import HttpResponseBase
from django.test import AsyncClient, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.middleware import LAST_ACTIVITY_KEY
from alerts import push
from alerts.events import Hub
from alerts.models import Alert
from alerts.services import alert_acknowledge
from monitoring.services import monitoring_tests_flag_overdue, sweep_heartbeat_record
from tests import factories

pytestmark = pytest.mark.django_db
POLL = {"HTTP_X_LABFLOW_POLL": "1", "HTTP_HX_REQUEST": "true"}
DOWN = {"default": {"BACKEND": "core.cache.DegradingRedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


@pytest.fixture(autouse=True)
def _fresh_versions():
    push._redis().delete(*(push._key(s) for s in (push.ALL, push.LAB, push.CRITICAL)))
    sweep_heartbeat_record(name="overdue_sweep", flagged=0)


def _raise(patient) -> int:
    factories.make_test(patient, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    return alert_id


def test_an_unchanged_poll_answers_304_from_the_session_and_redis_without_loading_the_user(
    client, nurse_a, patient_a, monkeypatch
):
    monkeypatch.setattr(push, "VERSION_TTL_SECONDS", 600)  # a slow machine must not see the version expire
    _raise(patient_a)
    client.force_login(nurse_a)
    first = client.get("/alerts/inbox/", **POLL)
    assert first.status_code == 200
    tag = first["ETag"]
    assert tag.startswith('"av-')
    with CaptureQueriesContext(connection) as captured:
        again = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=tag, **POLL)
    assert again.status_code == 304
    assert again["ETag"] == tag
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert "auth_user" not in sql
    assert "alerts_alert" not in sql
    assert "django_session" in sql  # but the request was authenticated by its session row
    assert len(captured) == 2  # the session and the sweep heartbeat


def test_a_change_in_the_team_is_seen_at_the_next_poll_and_the_badge_follows(client, nurse_a, patient_a):
    alert_id = _raise(patient_a)
    client.force_login(nurse_a)
    tag = client.get("/alerts/inbox/", **POLL)["ETag"]
    badge_tag = client.get("/alerts/badge/", **POLL)["ETag"]
    assert badge_tag != tag  # one validator per fragment
    assert client.get("/alerts/badge/", HTTP_IF_NONE_MATCH=badge_tag, **POLL).status_code == 304
    alert_acknowledge(alert=Alert.objects.get(pk=alert_id), user=nurse_a, now=timezone.now())
    changed = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=tag, **POLL)
    assert changed.status_code == 200
    assert b"Acknowledged by" in changed.content
    badge = client.get("/alerts/badge/", HTTP_IF_NONE_MATCH=badge_tag, **POLL)
    assert badge.status_code == 200
    assert b">0</span>" in badge.content


def test_a_push_refresh_gets_the_rows_even_with_a_matching_validator(client, nurse_a, patient_a):
    _raise(patient_a)
    client.force_login(nurse_a)
    tag = client.get("/alerts/inbox/", **POLL)["ETag"]
    fresh = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=tag, HTTP_X_LABFLOW_FRESH="1", **POLL)
    assert fresh.status_code == 200
    assert fresh.content.count(b'data-testid="alert-row"') == 1


def test_another_users_validator_never_answers_304_nor_shows_their_team(client, nurse_a, nurse_b, patient_a, patient_b):
    _raise(patient_a)
    _raise(patient_b)
    client.force_login(nurse_b)
    tag_b = client.get("/alerts/inbox/", **POLL)["ETag"]
    client.force_login(nurse_a)
    answer = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=tag_b, **POLL)
    assert answer.status_code == 200
    assert patient_a.mrn.encode() in answer.content
    assert patient_b.mrn.encode() not in answer.content


def test_an_idle_expired_session_is_logged_out_not_short_circuited(client, nurse_a, patient_a):
    _raise(patient_a)
    client.force_login(nurse_a)
    tag = client.get("/alerts/inbox/", **POLL)["ETag"]
    session = client.session
    session[LAST_ACTIVITY_KEY] = timezone.now().timestamp() - settings.IDLE_TIMEOUT.total_seconds() - 5
    session.save()
    answer = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=tag, **POLL)
    assert answer.status_code == 401
    assert answer["HX-Redirect"].startswith("/accounts/login/")


def test_an_anonymous_poll_with_a_validator_is_sent_to_log_in(client, nurse_a, patient_a):
    _raise(patient_a)
    client.force_login(nurse_a)
    tag = client.get("/alerts/inbox/", **POLL)["ETag"]
    client.logout()
    answer = client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=tag, **POLL)
    assert answer.status_code == 302


def test_a_missing_version_is_rebuilt_from_postgresql_and_equals_the_full_answers(nurse_a, patient_a):
    _raise(patient_a)
    scope = push.team_scope(patient_a.care_team_id)
    push._redis().delete(push._key(scope))
    assert push.scope_versions([scope]) == {scope: push.scope_version_from_db(scope)}
    assert push._redis().get(push._key(scope)) == push.scope_version_from_db(scope).encode()


def test_a_change_is_published_on_commit_only_with_ids_and_scopes(
    nurse_a, patient_a, django_capture_on_commit_callbacks
):
    listener = redis.Redis.from_url(push.redis_url()).pubsub()
    listener.subscribe(push.CHANNEL)
    assert listener.get_message(timeout=1)["type"] == "subscribe"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert_id = _raise(patient_a)
    assert listener.get_message(timeout=0.5) is None  # not before commit
    for callback in callbacks:
        callback()
    message = listener.get_message(timeout=2)
    listener.close()
    assert message is not None
    body = json.loads(message["data"])
    assert body == {
        "scopes": sorted([push.ALL, push.team_scope(patient_a.care_team_id)]),
        "ids": [alert_id],
        "count": 1,
    }
    assert patient_a.mrn not in message["data"].decode()
    assert patient_a.family_name not in message["data"].decode()


def test_user_scopes_follow_roles_and_teams(nurse_a, technician, admin_user, team_a):
    assert push.user_scopes(nurse_a) == [push.team_scope(team_a.pk)]
    assert push.user_scopes(technician) == [push.LAB, push.CRITICAL]
    assert push.user_scopes(admin_user) == [push.ALL]


def test_with_redis_down_the_poll_answers_from_postgresql(client, nurse_a, patient_a):
    with override_settings(CACHES=DOWN, REDIS_URL="redis://127.0.0.1:1/0"):
        alert_id = _raise(patient_a)  # a write whose bump and push cannot reach Redis
        client.force_login(nurse_a)
        first = client.get("/alerts/inbox/", **POLL)
        assert first.status_code == 200
        assert client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=first["ETag"], **POLL).status_code == 304
        alert_acknowledge(alert=Alert.objects.get(pk=alert_id), user=nurse_a, now=timezone.now())
        assert client.get("/alerts/inbox/", HTTP_IF_NONE_MATCH=first["ETag"], **POLL).status_code == 200


def test_the_stream_needs_a_login(client):
    assert client.get("/alerts/events/").status_code == 401


def test_the_hub_delivers_a_change_to_the_screens_of_its_scopes_only():
    async def scenario() -> tuple[object, bool]:
        hub = Hub()
        mine = await hub.subscribe(["team:1", push.ALL])
        other = await hub.subscribe(["team:2"])
        await asyncio.to_thread(push.publish, ["team:1", push.ALL], [5])
        got = await asyncio.wait_for(mine.queue.get(), timeout=5)
        await asyncio.sleep(0.1)
        quiet = other.queue.empty()
        hub.unsubscribe(mine)
        hub.unsubscribe(other)
        assert hub.connections == 0
        return got, quiet

    got, quiet = asyncio.run(scenario())
    assert got == {"ids": [5], "count": 1}
    assert quiet


def test_with_redis_down_the_stream_is_refused_so_the_page_polls(nurse_a):
    async def connect() -> HttpResponseBase:
        client = AsyncClient()
        await client.aforce_login(nurse_a)
        return await client.get("/alerts/events/")

    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        answer = async_to_sync(connect)()  # the ORM calls run in this thread, inside the test's transaction
    assert answer.status_code == 503
    assert answer["Retry-After"] == "10"


def test_a_wsgi_worker_refuses_the_stream_instead_of_holding_a_thread(client, nurse_a):
    client.force_login(nurse_a)
    assert client.get("/alerts/events/").status_code == 503
