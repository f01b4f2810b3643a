"""Helpers of the browser tests: logging in, axe-core findings, and the people a test logs in as."""

from __future__ import annotations

from dataclasses import dataclass

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

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
