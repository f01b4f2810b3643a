"""In a real browser, against the production web server (gunicorn + uvicorn worker, labflow/asgi.py): a new
overdue alert reaches the nurse's open inbox by push, and after the server is stopped and started again (a forced
reconnect) an alert raised while it was down arrives by the reconnect's resync from PostgreSQL. The fallback poll
is set to 10 minutes, so only push can explain either arrival. A critical alert raised while the tab is in the
background raises a system notification that names no patient. axe-core checks the inbox."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.choices import Role
from alerts.choices import AlertKind, AlertSeverity
from alerts.services import AlertCondition, alerts_raise
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from tests import factories
from tests.e2e.pages import login, serious_violations
from tests.stack import ROOT
from tests.stack import test_database_url as database_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def asgi_server(port: int, log: Path) -> Iterator[str]:
    """The Procfile's web command (one uvicorn worker) on the test database and this run's Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "labflow.settings_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "INBOX_POLL_SECONDS": "600",  # push or nothing
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    command = [
        sys.executable, "-m", "gunicorn", "labflow.asgi:application", "-k", "uvicorn_worker.UvicornWorker",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--graceful-timeout", "1",
    ]  # fmt: skip
    with log.open("a") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health/live", timeout=1):  # noqa: S310
                break
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
        else:
            raise AssertionError(f"the web server did not answer: {log.read_text()}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        connection.close()


def _overdue(patient) -> None:
    factories.make_test(patient, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    assert monitoring_tests_flag_overdue()


def _open_inbox(page: Page, url: str, username: str) -> None:
    login(page, url, username)
    expect(page.get_by_test_id("push-state")).to_have_text("live")
    page.evaluate("window.labflowSamePage = true")


def test_an_alert_arrives_by_push_and_again_after_a_forced_reconnect(reference_db, browser: Browser, team_a, tmp_path):
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.push")
    patient = factories.make_patient(team_a)
    port, log = _free_port(), tmp_path / "web.log"
    page = browser.new_page()
    rows = page.get_by_test_id("alert-row")
    with asgi_server(port, log) as url:
        _open_inbox(page, url, nurse.username)
        expect(page.get_by_test_id("inbox-empty")).to_be_visible()
        _overdue(patient)  # committed: published to the open stream
        expect(rows).to_have_count(1)
        expect(page.get_by_test_id("alert-count")).to_have_text("1")
        assert serious_violations(page) == []

    # Forced reconnect: the server is gone, an alert is raised (its push reaches nobody), the server returns.
    expect(page.get_by_test_id("push-state")).not_to_have_text("live")
    _overdue(patient)
    assert MonitoringTest.objects.filter(patient=patient).count() == 2
    with asgi_server(port, log):
        expect(page.get_by_test_id("push-state")).to_have_text("live", timeout=15_000)
        expect(rows).to_have_count(2)
        expect(page.get_by_test_id("alert-count")).to_have_text("2")
        assert page.evaluate("window.labflowSamePage") is True  # the stream reconnected; nothing reloaded


def test_a_critical_alert_in_a_background_tab_raises_a_notification_without_the_patient(
    reference_db, browser: Browser, team_a, tmp_path
):
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.notify")
    patient = factories.make_patient(team_a, family_name="Zyxwv", given_name="Quentin")
    context = browser.new_context()
    # The tab is in the background, and the notifications it raises are recorded.
    context.add_init_script(
        """
        Object.defineProperty(document, "hidden", {get: () => true});
        window.shown = [];
        window.Notification = function (title, options) { window.shown.push({title: title, body: options.body}); };
        window.Notification.permission = "granted";
        """
    )
    page = context.new_page()
    with asgi_server(_free_port(), tmp_path / "web.log") as url:
        _open_inbox(page, url, nurse.username)
        alerts_raise(
            kind=AlertKind.COLLECTION_OVERDUE, severity=AlertSeverity.MODERATE, subject_model=MonitoringTest,
            conditions=[AlertCondition(subject_id=10_001, patient_id=patient.pk, summary="Moderate, no notice")],
        )  # fmt: skip
        expect(page.get_by_test_id("alert-row")).to_have_count(1)
        alerts_raise(
            kind=AlertKind.CRITICAL_RESULT, severity=AlertSeverity.CRITICAL, subject_model=MonitoringTest,
            conditions=[AlertCondition(subject_id=10_002, patient_id=patient.pk, summary="Potassium 7.1 mmol/L")],
        )  # fmt: skip
        expect(page.get_by_test_id("alert-row")).to_have_count(2)
        page.wait_for_function("window.shown.length > 0")
        shown = page.evaluate("window.shown")
    context.close()
    assert len(shown) == 1
    assert shown[0]["title"] == "LabFlow: critical alert"
    assert shown[0]["body"] == "1 new critical alert is waiting in LabFlow."  # ALERT_NOTIFICATION_DETAIL=none
    assert "Zyxwv" not in str(shown)
    assert patient.mrn not in str(shown)
