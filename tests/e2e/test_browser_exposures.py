"""In a real browser: a lab technician reports an accidental exposure to talimogene laherparepvec on the exposure
page, and the report is listed for the pharmacist. axe-core checks the page (no critical or serious violations)."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from orders.models import ExposureReport
from tests.e2e.pages import Staff, login, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_technician_reports_an_exposure_and_it_is_listed(live_server, browser: Browser, staff: Staff):
    page = browser.new_context().new_page()
    login(page, live_server.url, staff.technicians[0].username)
    page.goto(f"{live_server.url}/orders/exposures/")
    expect(page.get_by_test_id("exposure-form")).to_be_visible()
    assert serious_violations(page) == []

    page.get_by_label("Product").select_option(label="Talimogene laherparepvec")
    page.get_by_label("Who was exposed").fill("A. Pharmacist")
    page.get_by_label("When").fill(timezone.localtime().replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Kind").select_option("splash_eye")
    page.get_by_label("What happened").fill("Splash to the eye while drawing up the 10^6 PFU/mL vial")
    page.get_by_label("Action taken").fill("Eye rinsed 15 min; occupational health informed")
    page.get_by_test_id("exposure-submit").click()

    row = page.get_by_test_id("exposure-row")
    expect(row).to_contain_text("A. Pharmacist")
    expect(row).to_contain_text("Talimogene laherparepvec")
    expect(row).to_contain_text("Splash to the eyes")
    report = ExposureReport.objects.get()
    assert (report.reported_by, report.kind) == (staff.technicians[0], "splash_eye")
    assert serious_violations(page) == []
