"""In a real browser: prepare a cleared dose, verify it as a second technician (password), release it,
and administer it at the bedside with a matching scan; a mismatching scan stops."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from orders.models import IdentityCheck
from tests import factories
from tests.e2e.pages import Staff, login
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_prepare_verify_release_administer(live_server, browser: Browser, staff: Staff, team_a):
    nurse, (preparer, verifier), patient = staff.nurse, staff.technicians, staff.patient
    bystander = factories.make_patient(team_a)
    course = start_course(patient, staff.oncologist, "Pembrolizumab 200 mg q3w", in_hours=3)
    dose = first_dose(course)
    clear_pre_dose(dose, nurse, preparer, verifier)
    prep = live_preparation(dose)
    expiry = (timezone.localdate() + timedelta(days=400)).isoformat()

    lab = browser.new_context().new_page()
    login(lab, live_server.url, preparer.username)
    lab.get_by_role("link", name="Worklist").click()
    row = lab.get_by_test_id("worklist-row").filter(has_text=patient.mrn)
    expect(row.get_by_test_id("gate")).to_have_text("Cleared")
    row.get_by_test_id("start").click()
    lab.wait_for_load_state("load")  # scan.js (deferred) handles Enter
    expect(lab.get_by_test_id("scan-0")).to_be_focused()  # the first vial's barcode; typed by hand here
    for index, (name, lot, volume) in enumerate(
        [("Pembrolizumab 100 mg/4 mL", "PB26A", "4.0"), ("Pembrolizumab 100 mg/4 mL", "PB26A", "4.0"),
         ("0.9% sodium chloride 50 mL", "NS77", "50")]
    ):  # fmt: skip
        lab.get_by_test_id(f"product-{index}").fill(name)
        lab.get_by_test_id(f"product-{index}").press("Enter")  # a scan ends with Enter: the next field takes over
        expect(lab.get_by_test_id(f"lot-{index}")).to_be_focused()
        lab.get_by_test_id(f"lot-{index}").fill(lot)
        lab.get_by_test_id(f"expiry-{index}").fill(expiry)
        lab.get_by_test_id(f"volume-{index}").fill(volume)
    lab.get_by_test_id("record-submit").click()
    expect(lab.get_by_test_id("message")).to_contain_text("recorded")
    expect(lab.get_by_test_id("worklist-row").filter(has_text=patient.mrn).get_by_test_id("prep-status")).to_have_text(
        "Awaiting verification"
    )
    lab.get_by_role("link", name="Check preps").click()
    expect(lab.get_by_test_id("verification-row")).to_have_count(0)  # one's own never appears

    check = browser.new_context().new_page()
    login(check, live_server.url, verifier.username)
    check.get_by_role("link", name="Check preps").click()
    check.get_by_test_id("verification-row").filter(has_text=prep.code).get_by_test_id("verify-link").click()
    check.get_by_test_id("measured").fill("8.1")
    check.get_by_test_id("password").fill("a-long-test-password")
    check.get_by_test_id("verify-submit").click()
    expect(check.get_by_test_id("message")).to_contain_text("verified")
    with check.expect_popup() as popup:
        check.get_by_test_id("label-pdf").click()
    assert popup.value.url.endswith(f"/api/preparations/{prep.pk}/label/pdf/")
    check.get_by_test_id("release").click()
    expect(check.get_by_test_id("message")).to_contain_text("released")

    ward = browser.new_context().new_page()
    login(ward, live_server.url, nurse.username)
    ward.get_by_role("link", name="Administer").click()
    ward.get_by_test_id("ward-row").filter(has_text=prep.code).get_by_test_id("administer-link").click()
    ward.wait_for_load_state("load")  # scan.js (deferred) handles Enter
    ward.get_by_test_id("scan-wristband").fill(bystander.mrn)
    ward.get_by_test_id("scan-wristband").press("Enter")
    expect(ward.get_by_test_id("scan-label")).to_be_focused()
    ward.get_by_test_id("scan-label").fill(prep.code)
    ward.get_by_test_id("scan-submit").click()
    expect(ward.get_by_test_id("scan-result")).to_contain_text("STOP: wristband does not match")
    ward.get_by_test_id("scan-wristband").fill(patient.mrn)
    ward.get_by_test_id("scan-label").fill(prep.code)
    ward.get_by_test_id("scan-submit").click()
    expect(ward.get_by_test_id("scan-result")).to_contain_text(f"Match: administration of {prep.code} started")
    assert list(IdentityCheck.objects.filter(preparation=prep).values_list("matched", flat=True)) == [False, True]
    prep.refresh_from_db()
    assert prep.status == "administered"
