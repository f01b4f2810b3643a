"""Helpers of the browser tests: logging in, axe-core findings, and the people a test logs in as."""

from __future__ import annotations

from dataclasses import dataclass

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from django.contrib.auth.models import User
from playwright.sync_api import Locator, Page, expect

from patients.models import Patient


@dataclass(frozen=True)
class Staff:
    """Care team A's oncologist and nurse, two lab technicians (one does the work, the other checks it) and a
    patient of the team: who logs in where in a browser test."""

    oncologist: User
    nurse: User
    technicians: tuple[User, User]
    patient: Patient


def login(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()


def serious_violations(page: Page) -> list[str]:
    """axe-core's critical and serious findings on the page as it is now."""
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v.get("impact") in ("critical", "serious")
    ]


def bedside_refused_for_premedication(page: Page, *, wristband: str, label: str, classes: str) -> Locator:
    """Scan the wristband and the bag on the open bedside page: the step-up dose is refused for want of its
    premedication (naming the classes) and the bag stays released. Returns the scan result."""
    expect(page.get_by_test_id("step-premedication")).to_contain_text("premedication required")
    page.get_by_test_id("scan-wristband").fill(wristband)
    page.get_by_test_id("scan-label").fill(label)
    page.get_by_test_id("scan-submit").click()
    result = page.get_by_test_id("scan-result")
    expect(result).to_contain_text("premedication not recorded before step-up dose 1")
    expect(result).to_contain_text(classes)
    expect(page.get_by_test_id("prep-status")).to_have_text("Released")
    return result
