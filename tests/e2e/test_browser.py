"""A nurse's inbox in a real browser (Debian chromium via Playwright), fed by a real worker and beat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.choices import Role
from tests import factories
from tests.e2e.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_overdue_alert_appears_without_reload_and_acknowledging_drops_the_count(
    live_server, celery_stack, page, team_a, settings
):
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.browser")
    patient = factories.make_patient(team_a)
    login(page, live_server.url, nurse.username)
    count = page.get_by_test_id("alert-count")
    expect(count).to_have_text("0")
    expect(page.get_by_test_id("inbox-empty")).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # lost if the page reloads

    factories.make_test(patient, due_at=timezone.now() + timedelta(seconds=3), grace=timedelta(0))

    row = page.get_by_test_id("alert-row")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row).to_contain_text("Collection overdue: TSH")
    expect(row).to_contain_text(patient.mrn)
    expect(count).to_have_text("1")
    assert page.evaluate("window.__sameDocument") is True

    row.get_by_test_id("acknowledge").click()
    expect(count).to_have_text("0")
    expect(row).to_contain_text("Acknowledged by")
    assert page.evaluate("window.__sameDocument") is True
