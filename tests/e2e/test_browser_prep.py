"""In a real browser: the back button after a release or an administration shows the current state, not a stale
page from the cache; the bedside page shows who and which product large (1280 and 768 px); the prepare page reads
vial barcodes into the row and shows the dose worksheet. axe-core on each page at both widths."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from orders.models import Preparation
from orders.services.preparations import preparation_record, preparation_start, preparation_verify
from tests.e2e.pages import Staff, login, serious_violations
from tests.factories import signing_request
from tests.orders.cell_helpers import PASSWORD, PEMBRO, cleared_preparation, pembro_components

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
GS = "\x1d"
GTIN = "09506000134352"
WIDTHS = (1280, 768)


def _accessible_at_both_widths(page: Page) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        assert serious_violations(page) == [], width


def _verified(staff: Staff) -> Preparation:
    """A pembrolizumab dose prepared, recorded and verified just now (the release is the test's)."""
    preparer, checker = staff.technicians
    prep = cleared_preparation(staff.patient, staff.oncologist, staff.nurse, staff.technicians, PEMBRO)
    now = timezone.now()
    preparation_start(preparation=prep, user=preparer, now=now)
    preparation_record(
        preparation=prep, components=pembro_components(timezone.localdate() + timedelta(days=365)),
        category="category_1", storage="refrigerated", user=preparer, now=timezone.now(),
    )  # fmt: skip
    return preparation_verify(preparation=prep, user=checker, password=PASSWORD, method="gravimetric",
                              measured=Decimal("8.0"), now=timezone.now(), request=signing_request())  # fmt: skip


def test_back_after_release_and_administration_reloads_the_current_state(live_server, browser: Browser, staff: Staff):
    prep = _verified(staff)
    patient = staff.patient

    check = browser.new_context().new_page()
    login(check, live_server.url, staff.technicians[1].username)
    check.goto(f"{live_server.url}/orders/worklist/")
    row = check.get_by_test_id("worklist-row").filter(has_text=patient.mrn)
    expect(row.get_by_test_id("prep-status")).to_have_text("Awaiting verification")
    check.goto(f"{live_server.url}/orders/preparations/{prep.pk}/verify/")
    check.get_by_test_id("release").click()
    expect(check.get_by_test_id("message")).to_contain_text("released")
    check.go_back()  # the verify page before the release
    expect(check.get_by_test_id("prep-status")).to_have_text("Released")
    expect(check.get_by_test_id("release")).to_have_count(0)
    check.go_back()  # the worklist as it was before: fetched again, it shows the release
    expect(row.get_by_test_id("prep-status")).to_have_text("Released")

    ward = browser.new_context().new_page()
    login(ward, live_server.url, staff.nurse.username)
    ward.get_by_role("link", name="Administer").click()
    ward_row = ward.get_by_test_id("ward-row").filter(has_text=prep.code)
    expect(ward_row).to_contain_text("Released")
    ward_row.get_by_test_id("administer-link").click()
    ward.wait_for_load_state("load")  # scan.js (deferred) handles Enter
    identity = ward.get_by_test_id("bedside-identity")
    expect(identity.get_by_test_id("bedside-name")).to_have_text(f"{patient.family_name.upper()}, {patient.given_name}")
    expect(identity.get_by_test_id("bedside-mrn")).to_have_text(patient.mrn)
    expect(identity.get_by_test_id("bedside-dob")).to_have_text(patient.birth_date.isoformat())
    expect(identity.get_by_test_id("bedside-code")).to_have_text(prep.code)
    ward.set_viewport_size({"width": 768, "height": 1000})
    name_px = float(identity.get_by_test_id("bedside-name").evaluate("e => getComputedStyle(e).fontSize")[:-2])
    mrn_px = float(identity.get_by_test_id("bedside-mrn").evaluate("e => getComputedStyle(e).fontSize")[:-2])
    assert name_px >= 32  # arm's length on a tablet
    assert mrn_px >= 24
    box = identity.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 768  # nothing cut off at tablet width
    _accessible_at_both_widths(ward)

    ward.get_by_test_id("scan-wristband").fill(patient.mrn)
    ward.get_by_test_id("scan-label").fill(prep.code)
    ward.get_by_test_id("scan-submit").click()
    expect(ward.get_by_test_id("scan-result")).to_contain_text(f"Match: administration of {prep.code} started")
    expect(ward.get_by_test_id("prep-status")).to_have_text("Administered")
    _accessible_at_both_widths(ward)
    ward.go_back()  # the scan form as it was while the bag was "Released"
    expect(ward.get_by_test_id("prep-status")).to_have_text("Administered")
    expect(ward.get_by_test_id("administer-form")).to_have_count(0)
    ward.go_back()  # the ward list that said "Released": fetched again, the infusion is running
    expect(ward_row).to_contain_text("running since")
    expect(ward_row.get_by_test_id("administer-link")).to_have_text("End infusion")
    ward_row.get_by_test_id("administer-link").click()
    ward.get_by_test_id("end-infusion").click()
    expect(ward.get_by_test_id("message")).to_contain_text("End of infusion")
    expect(ward.get_by_test_id("end-infusion")).to_have_count(0)
    prep.refresh_from_db()
    assert prep.administration_ended_at is not None


def test_prepare_page_reads_vial_barcodes_and_shows_the_worksheet(live_server, browser: Browser, staff: Staff):
    preparer = staff.technicians[0]
    prep = cleared_preparation(staff.patient, staff.oncologist, staff.nurse, staff.technicians, PEMBRO)
    preparation_start(preparation=prep, user=preparer, now=timezone.now())
    expiry = timezone.localdate() + timedelta(days=400)

    lab = browser.new_context().new_page()
    login(lab, live_server.url, preparer.username)
    lab.goto(f"{live_server.url}/orders/preparations/{prep.pk}/prepare/")
    lab.wait_for_load_state("load")  # scan.js and vialscan.js (deferred)
    worksheet = lab.get_by_test_id("dose-worksheet")
    expect(worksheet.get_by_role("row", name="Dose basis")).to_contain_text("flat dose of 200 mg")
    expect(worksheet.get_by_test_id("ws-draw")).to_contain_text("8.0 mL")
    expect(worksheet.get_by_test_id("ws-final")).to_contain_text("58.0 mL at 3.45 mg/mL")
    _accessible_at_both_widths(lab)
    assert lab.evaluate("document.documentElement.scrollWidth") <= 768  # the vial rows fit a tablet, no side scroll

    scan = lab.get_by_test_id("scan-0")
    expect(scan).to_be_focused()
    scan.fill(f"]d201{GTIN}17{expiry:%y%m%d}10PB-SCAN1{GS}")
    scan.press("Enter")
    expect(lab.get_by_test_id("lot-0")).to_have_value("PB-SCAN1")
    expect(lab.get_by_test_id("expiry-0")).to_have_value(expiry.isoformat())
    expect(lab.get_by_test_id("scan-note-0")).to_contain_text(f"GTIN {GTIN}")
    expect(lab.get_by_test_id("product-0")).to_be_focused()  # the product is the technician's choice
    lab.get_by_test_id("scan-1").fill("not a barcode")
    lab.get_by_test_id("scan-1").press("Enter")
    expect(lab.get_by_test_id("scan-note-1")).to_contain_text("Not a GS1 vial barcode")
    expect(lab.get_by_test_id("scan-1")).to_have_attribute("aria-invalid", "true")
    _accessible_at_both_widths(lab)

    # Sent as it stands: the server reads the same barcodes; the bad one is refused on its field, nothing is lost.
    lab.get_by_test_id("record-submit").click()
    expect(lab.get_by_test_id("form-errors")).to_contain_text("scan-1: Not a GS1 vial barcode")
    expect(lab.get_by_test_id("form-errors")).to_contain_text(f"product-0: Choose the product of GTIN {GTIN}")
    expect(lab.get_by_test_id("lot-0")).to_have_value("PB-SCAN1")
    _accessible_at_both_widths(lab)

    lab.get_by_test_id("product-0").fill("Pembrolizumab 100 mg")
    lab.get_by_test_id("volume-0").fill("4")
    lab.get_by_test_id("scan-1").fill(f"(01){GTIN}(17){expiry:%y%m%d}(10)PB-SCAN2")
    lab.get_by_test_id("product-1").fill("Pembrolizumab 100 mg")
    lab.get_by_test_id("volume-1").fill("4")
    for name, value in (("product-2", "0.9% sodium chloride 50 mL"), ("lot-2", "NS77"),
                        ("expiry-2", expiry.isoformat()), ("volume-2", "50")):  # fmt: skip
        lab.get_by_test_id(name).fill(value)
    lab.get_by_test_id("record-submit").click()
    expect(lab.get_by_test_id("message")).to_contain_text("recorded")
    lots = sorted(prep.components.values_list("lot", flat=True))
    assert lots == ["NS77", "PB-SCAN1", "PB-SCAN2"]
