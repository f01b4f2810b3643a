"""In a real browser: a technician opens a CAR-T bag's prepare page, follows the link to its chain of identity,
scans the collection and the shipment hand-offs (Enter after a scan moves on, never submits) and confirms the
two tocilizumab doses on hand; a nurse of the team then sees the confirmation. axe-core checks every page
visited (no critical or serious violations)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from orders.choices import CoiStep
from orders.models import IdentityCheck, RescueMedicationCheck
from tests.e2e.pages import Staff, login, serious_violations
from tests.orders.cell_helpers import COI, car_t_ordered

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_technician_records_handoffs_and_confirms_tocilizumab(live_server, browser: Browser, staff: Staff):
    tech = staff.technicians[0]
    prep = car_t_ordered(staff.patient, staff.oncologist, staff.nurse, staff.technicians)
    course = prep.dose.course

    lab = browser.new_context().new_page()
    login(lab, live_server.url, tech.username)
    lab.goto(f"{live_server.url}/orders/preparations/{prep.pk}/prepare/")
    lab.get_by_test_id("coi-link").click()
    expect(lab.get_by_role("heading", name="Chain of identity", exact=True)).to_be_visible()
    expect(lab.get_by_test_id("coi-id")).to_have_text(COI)
    lab.wait_for_load_state("load")  # scan.js (deferred) handles Enter
    assert serious_violations(lab) == []

    scan = lab.get_by_label("Scan the chain-of-identity label")
    expect(scan).to_be_focused()
    scan.fill("COI-2026-000999")  # another patient's product
    scan.press("Enter")
    expect(lab.get_by_test_id("handoff-note")).to_be_focused()  # the scan's Enter did not submit
    lab.get_by_test_id("handoff-submit").click()
    expect(lab.get_by_test_id("coi-stop")).to_contain_text("STOP: the chain-of-identity ID does not match")
    expect(lab.get_by_test_id("coi-check").filter(has_text="COI-2026-000999")).to_have_attribute("data-matched", "no")
    assert serious_violations(lab) == []

    lab.get_by_label("Scan the chain-of-identity label").fill(COI)
    lab.get_by_label("Note (optional)").first.fill("Apheresis unit 2")
    lab.get_by_role("button", name="Record leukapheresis collection").click()
    expect(lab.get_by_test_id("message")).to_contain_text("Leukapheresis collection recorded")
    lab.get_by_label("Scan the chain-of-identity label").fill(COI)
    lab.get_by_role("button", name="Record shipment to manufacturer").click()
    expect(lab.get_by_test_id("message")).to_contain_text("Shipment to manufacturer recorded")
    expect(lab.get_by_test_id("handoffs-done")).to_be_visible()
    expect(lab.get_by_test_id("coi-check")).to_have_count(3)

    lab.get_by_label("Doses of Tocilizumab on hand for this patient").fill("2")
    lab.get_by_test_id("rescue-submit").click()
    expect(lab.get_by_test_id("message")).to_contain_text("2 dose(s) of Tocilizumab confirmed on hand")
    expect(lab.get_by_test_id("rescue-latest")).to_contain_text(tech.username)
    assert serious_violations(lab) == []

    checks = IdentityCheck.objects.filter(course=course).order_by("at", "id")
    assert [(c.step, c.matched) for c in checks] == [
        (CoiStep.COLLECTION, False), (CoiStep.COLLECTION, True), (CoiStep.SHIPMENT, True)
    ]  # fmt: skip
    rescue = RescueMedicationCheck.objects.get(course=course)
    assert (rescue.doses_on_hand, rescue.confirmed_by_id) == (2, tech.pk)

    ward = browser.new_context().new_page()
    login(ward, live_server.url, staff.nurse.username)
    ward.goto(f"{live_server.url}/orders/courses/{course.pk}/")
    ward.get_by_test_id("coi-link").click()
    expect(ward.get_by_test_id("rescue-latest")).to_contain_text(f"2 dose(s) of Tocilizumab · {tech.username}")
    expect(ward.get_by_test_id("rescue-form")).to_have_count(0)
    assert serious_violations(ward) == []
