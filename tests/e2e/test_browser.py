"""A nurse's inbox in a real browser (Debian chromium via Playwright), fed by a real worker and beat."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accounts.choices import Role
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
# Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes are plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian chromium is required (make test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
            ],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def login(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()


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
    expect(row).to_contain_text("TSH: collection overdue")
    expect(row).to_contain_text(patient.mrn)
    expect(count).to_have_text("1")
    assert page.evaluate("window.__sameDocument") is True

    row.get_by_test_id("acknowledge").click()
    expect(count).to_have_text("0")
    expect(row).to_contain_text("Acknowledged by")
    assert page.evaluate("window.__sameDocument") is True
