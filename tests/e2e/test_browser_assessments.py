"""In a real browser at tablet width (768 px): a nurse records a CRS and ICANS assessment from the patient's page,
the page shows the ASTCT grade with the findings that decided it, and the oncologist finds the alert in the inbox.
axe-core checks the form and the result (no critical or serious violations)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, ViewportSize, expect

from alerts.choices import AlertKind
from alerts.models import Alert
from assessments.choices import ICE_QUESTIONS
from tests.e2e.pages import Staff, login, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET = ViewportSize(width=768, height=1024)


def test_nurse_records_an_assessment_on_a_tablet_and_the_oncologist_sees_the_alert(
    live_server, browser: Browser, staff: Staff
):
    patient = staff.patient
    nurse_page = browser.new_context(viewport=TABLET).new_page()
    login(nurse_page, live_server.url, staff.nurse.username)
    nurse_page.goto(f"{live_server.url}/patients/{patient.pk}/")
    nurse_page.get_by_test_id("new-assessment").click()
    form = nurse_page.get_by_test_id("assessment-form")
    expect(form).to_be_visible()
    assert serious_violations(nurse_page) == []
    width = nurse_page.evaluate("document.documentElement.scrollWidth")
    assert width <= TABLET["width"], f"the form scrolls sideways at 768 px ({width} px)"

    nurse_page.get_by_label("Temperature (°C)").fill("38.6")
    nurse_page.get_by_label("Systolic blood pressure (mmHg)").fill("84")
    nurse_page.get_by_role("group", name="Vasopressors").get_by_label("None", exact=True).check()
    nurse_page.get_by_role("group", name="Oxygen need").get_by_label("None", exact=True).check()
    for name, _ in ICE_QUESTIONS:
        form.locator(f'fieldset[data-field="{name}"]').get_by_label("Correct (1 point)").check()
    nurse_page.get_by_role("group", name="Level of consciousness").get_by_label("Alert", exact=True).check()
    for group in ("Seizures", "Motor weakness", "Raised intracranial pressure"):
        nurse_page.get_by_role("group", name=group).get_by_label("None", exact=True).check()
    nurse_page.get_by_test_id("assessment-submit").click()

    crs = nurse_page.get_by_test_id("crs-grade")
    expect(crs).to_contain_text("grade 2")
    expect(crs).to_contain_text("hypotension not requiring vasopressors")
    expect(nurse_page.get_by_test_id("icans-grade")).to_contain_text("grade 0")
    assert serious_violations(nurse_page) == []

    alert = Alert.objects.get(patient=patient, kind=AlertKind.CRS)
    onc_page = browser.new_context(viewport=TABLET).new_page()
    login(onc_page, live_server.url, staff.oncologist.username)
    row = onc_page.locator(f'[data-testid="alert-row"][data-alert-id="{alert.pk}"]')
    expect(row).to_contain_text("CRS grade 2")
    expect(row).to_contain_text(patient.mrn)
    assert serious_violations(onc_page) == []
