"""Keyboard only, in a real browser: a nurse acknowledges an alert in the inbox and collects from the collection
list with a wristband scan; a technician enters results in the grid and starts a cleared dose from the worklist.
No mouse: every control is reached with Tab, shows where the focus is, and acts on Enter."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Locator, Page, expect

from monitoring.services import monitoring_tests_flag_overdue
from results.models import Result
from specimens.models import Specimen
from tests import factories
from tests.e2e.pages import Staff, serious_violations
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course
from tests.results.helpers import collected_specimen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def keyboard_login(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    expect(page.locator("#id_username")).to_be_focused()  # the form takes the focus: no click needed
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type("a-long-test-password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()


def tab_to(page: Page, target: Locator, limit: int = 100) -> None:
    """Press Tab until `target` has the focus, and check the focus can be seen (an outline or a shadow)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            style = target.evaluate("el => { const s = getComputedStyle(el); return [s.outlineStyle, s.boxShadow]; }")
            assert style != ["none", "none"], "the focused control shows no focus indicator"
            return
    raise AssertionError(f"{target} not reached with {limit} presses of Tab")


def test_nurse_acknowledges_and_collects_by_keyboard(live_server, browser: Browser, staff: Staff):
    patient = staff.patient
    factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=10), grace=timedelta(0), name="TSH")
    monitoring_tests_flag_overdue()
    page = browser.new_context().new_page()
    keyboard_login(page, live_server.url, staff.nurse.username)

    row = page.get_by_test_id("alert-row").filter(has_text=patient.mrn)
    tab_to(page, row.get_by_test_id("acknowledge"))
    page.keyboard.press("Enter")
    expect(row).to_contain_text("Acknowledged by")
    assert serious_violations(page) == []

    tab_to(page, page.get_by_role("link", name="Collection"))
    page.keyboard.press("Enter")
    draw = page.locator(f"[data-testid=draw][data-patient-id='{patient.pk}']")
    tab_to(page, draw.get_by_test_id("collect-link"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("wristband")).to_be_focused()  # the scan field takes the focus
    page.keyboard.type(patient.mrn)  # the scanner types the MRN and sends Enter
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("specimen-row")).to_have_count(1)
    assert Specimen.objects.filter(patient=patient).count() == 1
    assert serious_violations(page) == []


def test_technician_enters_results_and_starts_a_dose_by_keyboard(live_server, browser: Browser, staff: Staff):
    enterer, checker = staff.technicians
    specimen = collected_specimen(staff.patient, staff.nurse, "Potassium", "Sodium")
    cleared = first_dose(start_course(factories.make_patient(staff.patient.care_team), staff.oncologist,
                                      "Nivolumab 240 mg q2w", in_hours=6))  # fmt: skip
    clear_pre_dose(cleared, staff.nurse, checker, enterer)
    page = browser.new_context().new_page()
    keyboard_login(page, live_server.url, enterer.username)

    page.goto(f"{live_server.url}/specimens/{specimen.pk}/")
    tab_to(page, page.get_by_test_id("enter-results"))
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")  # grid.js (deferred) handles Enter
    expect(page.get_by_test_id("value-input").first).to_be_focused()
    page.keyboard.type("4.1")
    page.keyboard.press("Enter")  # Enter moves to the next value
    page.keyboard.type("139")
    tab_to(page, page.get_by_role("button", name="Save results"))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("grid-row").filter(has_text="Sodium")).to_contain_text("139")
    values = set(Result.objects.filter(specimen=specimen).values_list("value_numeric", flat=True))
    assert values == {Decimal("4.1"), Decimal("139")}
    assert serious_violations(page) == []

    tab_to(page, page.get_by_role("link", name="Worklist"))
    page.keyboard.press("Enter")
    row = page.get_by_test_id("worklist-row").filter(has_text="Cleared")
    tab_to(page, row.get_by_test_id("start"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/orders/preparations/{live_preparation(cleared).pk}/prepare/")
    assert live_preparation(cleared).status == "in_preparation"
    assert serious_violations(page) == []
