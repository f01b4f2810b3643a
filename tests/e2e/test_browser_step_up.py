"""In a real browser: a nurse at the bedside of a teclistamab step-up dose. Without the premedication the page stops
and names what is missing; with the corticosteroid, H1 antagonist and antipyretic recorded the injection starts, and
the ward page shows the patient in hospital for the label's 48 h. axe-core checks both pages (no critical or
serious violations)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from orders.choices import PreparationStatus
from orders.models import Preparation
from tests.e2e.pages import Staff, bedside_refused_for_premedication, login, serious_violations
from tests.orders.helpers import clear_pre_dose, live_preparation, start_course

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEC = "Teclistamab step-up 0.06/0.3/1.5 mg/kg then 1.5 mg/kg weekly"


def test_step_up_dose_needs_its_premedication_at_the_bedside(live_server, browser: Browser, staff: Staff):
    nurse, patient = staff.nurse, staff.patient
    course = start_course(patient, staff.oncologist, TEC)
    dose = course.doses.get(number=1)
    clear_pre_dose(dose, nurse, *staff.technicians)
    prep = live_preparation(dose)
    # Prepared, verified and released (those pages are tested in test_browser_orders), usable for 6 h.
    Preparation.objects.filter(pk=prep.pk).update(
        status=PreparationStatus.RELEASED, beyond_use_at=timezone.now() + timedelta(hours=6)
    )

    page = browser.new_context().new_page()
    login(page, live_server.url, nurse.username)
    page.goto(f"{live_server.url}/orders/preparations/{prep.pk}/administer/")
    page.wait_for_load_state("load")
    assert serious_violations(page) == []
    bedside_refused_for_premedication(
        page, wristband=patient.mrn, label=prep.code, classes="Corticosteroid, H1 antagonist, Antipyretic"
    )
    assert serious_violations(page) == []

    page.get_by_test_id("scan-wristband").fill(patient.mrn)
    page.get_by_test_id("scan-label").fill(prep.code)
    given = timezone.localtime(timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_test_id("premed-at").fill(given)
    for premedication in ("corticosteroid", "h1_antagonist", "antipyretic"):
        page.get_by_test_id(f"premed-{premedication}").check()
    page.get_by_test_id("premed-note").fill("Dexamethasone 16 mg, diphenhydramine 50 mg, acetaminophen 650 mg PO")
    page.get_by_test_id("scan-submit").click()
    expect(page.get_by_test_id("scan-result")).to_contain_text("Match")
    expect(page.get_by_test_id("prep-status")).to_have_text("Administered")

    started = Preparation.objects.get(pk=prep.pk).administration_started_at
    assert started is not None
    until = timezone.localtime(started + timedelta(hours=48))
    page.get_by_role("link", name="Administer").click()
    stay = page.get_by_test_id("hospital-stay")
    expect(stay).to_contain_text(patient.family_name.upper())
    expect(stay).to_contain_text(f"in hospital until {until:%Y-%m-%d %H:%M}")
    assert serious_violations(page) == []
