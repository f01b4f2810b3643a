"""Browser fixtures: Debian chromium driven by Playwright (no browser download), and the people who use it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from accounts.choices import Role
from tests import factories
from tests.e2e.pages import Staff

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


@pytest.fixture
def staff(reference_db, team_a) -> Staff:
    return Staff(
        oncologist=factories.make_user(Role.ONCOLOGIST, team_a, "dr.e2e"),
        nurse=factories.make_user(Role.NURSE, team_a, "nurse.e2e"),
        technicians=(
            factories.make_user(Role.LAB_TECHNICIAN, None, "tech.e2e.one"),
            factories.make_user(Role.LAB_TECHNICIAN, None, "tech.e2e.two"),
        ),
        patient=factories.make_patient(team_a),
    )
