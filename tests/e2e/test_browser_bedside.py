"""In a real browser: a nurse at the bedside of a CAR-T infusion scans the wristband, the bag label and a
chain-of-identity label of another patient's product: the page stops with the reason and nothing is given.
axe-core checks the bedside page (no critical or serious violations)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from orders.cells import cell_product_thaw
from orders.choices import CoiStep, PreparationStatus
from orders.models import IdentityCheck
from orders.services.preparations import preparation_start
from tests.e2e.pages import Staff, login, serious_violations
from tests.orders.cell_helpers import COI, car_t_ordered, car_t_received, car_t_released

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bedside_coi_scan_stops_on_a_mismatched_bag(live_server, browser: Browser, staff: Staff):
    nurse, techs, patient = staff.nurse, staff.technicians, staff.patient
    prep = car_t_ordered(patient, staff.oncologist, nurse, techs)
    prep = car_t_released(prep, techs, timezone.now() - timedelta(minutes=20))

    page = browser.new_context().new_page()
    login(page, live_server.url, nurse.username)
    page.get_by_role("link", name="Administer").click()
    page.get_by_test_id("ward-row").filter(has_text=prep.code).get_by_test_id("administer-link").click()
    page.wait_for_load_state("load")  # scan.js (deferred) handles Enter
    assert serious_violations(page) == []
    page.get_by_test_id("scan-wristband").fill(patient.mrn)
    page.get_by_test_id("scan-wristband").press("Enter")
    expect(page.get_by_test_id("scan-label")).to_be_focused()
    page.get_by_test_id("scan-label").fill(prep.code)
    page.get_by_test_id("scan-label").press("Enter")
    expect(page.get_by_test_id("scan-coi")).to_be_focused()
    page.get_by_test_id("scan-coi").fill("COI-2026-000999")  # another patient's product
    given = timezone.localtime(timezone.now() - timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Given at (at most 4 h ago)").fill(given)
    page.get_by_label("What was given").fill("Acetaminophen 650 mg PO, diphenhydramine 25 mg PO")
    page.get_by_test_id("scan-submit").click()

    result = page.get_by_test_id("scan-result")
    expect(result).to_contain_text("STOP: the bag's chain-of-identity label COI-2026-000999 does not match")
    expect(result).to_contain_text("Do not administer")
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_test_id("prep-status")).to_have_text("Released")
    assert serious_violations(page) == []
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.RELEASED
    bedside = IdentityCheck.objects.get(preparation=prep, step=CoiStep.BEDSIDE)
    assert bedside.matched is False
    assert "COI-2026-000999" in bedside.note


def test_cell_product_pages_are_accessible(live_server, browser: Browser, staff: Staff):
    """The receipt form (prepare page), the bag check (verify page) and the ward list of a CAR-T bag."""
    nurse, techs = staff.nurse, staff.technicians
    ordered = car_t_ordered(staff.patient, staff.oncologist, nurse, techs)

    lab = browser.new_context().new_page()
    login(lab, live_server.url, techs[0].username)
    lab.goto(f"{live_server.url}/orders/preparations/{ordered.pk}/prepare/")
    expect(lab.get_by_test_id("receive-form")).to_be_visible()
    assert serious_violations(lab) == []

    thawed_at = timezone.now() - timedelta(minutes=20)
    car_t_received(ordered, techs[0], thawed_at)
    preparation_start(preparation=ordered, user=techs[0], now=thawed_at - timedelta(minutes=5))
    cell_product_thaw(preparation=ordered, coi_scanned=COI, user=techs[0], now=thawed_at)
    check = browser.new_context().new_page()
    login(check, live_server.url, techs[1].username)
    check.goto(f"{live_server.url}/orders/preparations/{ordered.pk}/verify/")
    expect(check.get_by_test_id("cell-verify-form")).to_be_visible()
    assert serious_violations(check) == []
    check.get_by_label("Scan the bag's chain-of-identity label").fill(COI)
    check.get_by_test_id("bag-intact-yes").check()
    check.get_by_test_id("password").fill("a-long-test-password")
    check.get_by_test_id("verify-submit").click()
    expect(check.get_by_test_id("message")).to_contain_text("verified")
    check.get_by_test_id("release").click()
    expect(check.get_by_test_id("message")).to_contain_text("released")
    released = ordered

    ward = browser.new_context().new_page()
    login(ward, live_server.url, nurse.username)
    ward.get_by_role("link", name="Administer").click()
    expect(ward.get_by_test_id("ward-row").filter(has_text=released.code)).to_contain_text("viable cells")
    assert serious_violations(ward) == []
