"""PostgreSQL going away answers 503 with Retry-After, never 500: a real gunicorn against a private cluster (a clone of
the test database) that is stopped, started and restarted; plus the middleware's rules in-process."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.test import RequestFactory

from accounts.choices import Role
from core.middleware import DatabaseUnavailableMiddleware, is_connection_error
from core.sessions import SessionStore
from tests import factories
from tests.faults.conftest import process_env
from tests.faults.servers import Gunicorn, PrivatePostgres, PrivateRedis, login
from tests.polling import wait_for
from tests.stack import test_database_url as database_url_of_tests

PASSWORD = "faults-password-2026"


def _django_error(kind: type[Exception], cause: BaseException) -> Exception:
    error = kind(str(cause))
    error.__cause__ = cause
    return error


def _server_error(sqlstate: str) -> psycopg.Error:
    """The psycopg exception the server's SQLSTATE maps to (AdminShutdown for 57P01, and so on)."""
    return psycopg.errors.lookup(sqlstate)("server said no")


@pytest.mark.parametrize(
    ("error", "connection_level"),
    [
        (_django_error(OperationalError, psycopg.OperationalError("connection refused")), True),  # no SQLSTATE
        (_django_error(OperationalError, _server_error("57P01")), True),  # admin shutdown
        (_django_error(OperationalError, _server_error("57P03")), True),  # starting up
        (_django_error(OperationalError, _server_error("08006")), True),  # link failure
        (_django_error(InterfaceError, psycopg.InterfaceError("connection already closed")), True),
        (_django_error(OperationalError, _server_error("57014")), False),  # cancelled
        (_django_error(OperationalError, _server_error("40P01")), False),  # deadlock
        (_django_error(IntegrityError, _server_error("23505")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_connection_level_errors_count_as_the_database_being_away(error, connection_level):
    assert is_connection_error(error) is connection_level


def _raising(error: Exception):
    def view(request: HttpRequest) -> HttpResponse:
        raise error

    return view


@pytest.mark.parametrize(("path", "content_type"), [("/alerts/", "text/html"), ("/api/alerts/", "application/json")])
def test_a_view_losing_the_database_answers_503_with_retry_after(path, content_type):
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    lost = _django_error(OperationalError, psycopg.OperationalError("server closed the connection unexpectedly"))
    response = middleware.process_exception(RequestFactory().get(path), lost)
    assert response is not None
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith(content_type)
    unique = _django_error(IntegrityError, _server_error("23505"))
    assert middleware.process_exception(RequestFactory().get(path), unique) is None  # a real error stays a 500


def test_a_500_is_swapped_only_when_a_connection_error_caused_it():
    from django.core.signals import got_request_exception

    def inner(request: HttpRequest) -> HttpResponse:
        # What Django's handler does with an exception raised in an inner middleware: signal, then a 500 response.
        try:
            raise request.error  # type: ignore[attr-defined]
        except Exception:
            got_request_exception.send(sender=None, request=request)
            return HttpResponseServerError()

    middleware = DatabaseUnavailableMiddleware(inner)
    request = RequestFactory().get("/alerts/badge/")
    request.error = _django_error(OperationalError, _server_error("57P01"))  # type: ignore[attr-defined]
    assert middleware(request).status_code == 503
    other = RequestFactory().get("/alerts/badge/")
    other.error = RuntimeError("a bug")  # type: ignore[attr-defined]
    assert middleware(other).status_code == 500


def _failing_save(error: Exception):
    def save(self, must_create: bool = False) -> None:
        try:
            raise error
        except DatabaseError:
            raise UpdateError from None  # what Django's database store does with any database error

    return save


def test_a_session_save_cut_off_by_a_restart_raises_the_connection_error_not_session_deleted(monkeypatch):
    lost = _django_error(OperationalError, _server_error("57P01"))
    monkeypatch.setattr(DatabaseSessionStore, "save", _failing_save(lost))
    with pytest.raises(OperationalError) as raised:
        SessionStore().save()
    assert raised.value is lost
    monkeypatch.setattr(
        DatabaseSessionStore, "save", _failing_save(_django_error(IntegrityError, _server_error("23505")))
    )
    with pytest.raises(UpdateError):
        SessionStore().save()


@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_a_postgres_restart_shows_users_503_with_retry_after_never_500(
    reference_db, tmp_path: Path, private_redis: PrivateRedis, team_a, patient_a
):
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.restart")
    nurse.set_password(PASSWORD)
    nurse.save(update_fields=["password"])
    factories.make_test(patient_a)
    cluster = PrivatePostgres()
    web: Gunicorn | None = None
    try:
        cluster.init()
        cluster.clone(database_url_of_tests(), "labflow")
        env = process_env(
            redis_url=private_redis.url, database_url=cluster.url("labflow"), settings="tests.faults.settings"
        )
        web = Gunicorn(env, tmp_path / "gunicorn.log")
        browser = login(web.base, "nurse.restart", PASSWORD)
        pages = {"page": "/alerts/", "poll": "/alerts/badge/", "api": "/api/alerts/"}
        for path in pages.values():
            assert browser.get(f"{web.base}{path}", timeout=10).status_code == 200

        cluster.stop()
        for name, path in pages.items():
            response = browser.get(f"{web.base}{path}", timeout=10)
            assert response.status_code == 503, (name, response.status_code, response.text[:500])
            assert response.headers["Retry-After"] == "5"
        assert "try again" in browser.get(f"{web.base}/alerts/", timeout=10).text.lower()
        assert browser.get(f"{web.base}/api/alerts/", timeout=10).json()["detail"].startswith("The database")

        cluster.start()
        wait_for(lambda: browser.get(f"{web.base}/alerts/badge/", timeout=10).status_code == 200, 30, "back")

        # Requests all through a restart: each one is a 200 or a 503 with Retry-After, never a 500.
        seen: list[tuple[int, str | None]] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                for path in pages.values():
                    response = browser.get(f"{web.base}{path}", timeout=10)
                    seen.append((response.status_code, response.headers.get("Retry-After")))

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            cluster.restart()
            wait_for(lambda: len(seen) > 0 and seen[-1][0] == 200, 30, "answers after the restart")
        finally:
            done.set()
            poller.join(timeout=30)
        assert {status for status, _ in seen} <= {200, 503}, seen
        assert all(retry == "5" for status, retry in seen if status == 503)
        assert seen[-1][0] == 200
        assert browser.get(f"{web.base}/alerts/", timeout=10).status_code == 200  # same session, after the restart
    finally:
        if web is not None:
            web.stop()
        cluster.destroy()
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log
    assert "database unavailable, answered 503" in log
