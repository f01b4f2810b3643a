"""In a real browser: blinatumomab bag changes (docs/architecture.md §4b, docs/clinical-sources.md §13). A technician
prepares bag 1 of a cycle-1 course in 48 h bags on the prepare page (the bag's final volume is theirs to enter), the
other technician verifies it (the preparer cannot: it is not in their queue and the page refuses them) and releases
it, its label reads "Dose … in 48 h", the nurse hangs it at the bedside (refused until the dexamethasone of the step's
first bag is recorded) and the ward page then shows bag 2 due when bag 1 runs out. Some 40 h later bag 2 is prepared
with its own, later beyond-use time. axe-core checks every page visited (no critical or serious violations).

Expected times are read from what the pages recorded (the puncture, the hanging), never written as literals, so the
test holds at any time of day."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from orders.choices import PreparationStatus
from orders.models import Preparation
from orders.services.preparations import PREPARER_MAY_NOT_VERIFY
from tests.e2e.pages import Staff, bedside_refused_for_premedication, login, serious_violations
from tests.orders.helpers import live_preparation, start_course

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CYCLE_1 = "Blinatumomab cycle 1 (R/R B-ALL, 45 kg or more): 9 then 28 µg/day, continuous"
H = timedelta(hours=1)
# What the preparer types (as in tests/orders/test_blinatumomab.py): the label's volume table is not seeded.
BAG_ML = "250"


def _minute(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def _accessible(page: Page) -> None:
    assert serious_violations(page) == [], page.url


def _prepare_on_the_pages(lab: Page, base_url: str, prep: Preparation, bag_hours: int) -> None:
    """From the worklist: start the bag, then record it on its prepare page with its final volume."""
    expiry = (timezone.localdate() + timedelta(days=365)).isoformat()
    lab.goto(f"{base_url}/orders/worklist/")
    row = lab.get_by_test_id("worklist-row").filter(has_text=prep.code)
    expect(row.get_by_test_id("bag")).to_contain_text(f"bag {prep.dose.number}, {bag_hours} h")
    _accessible(lab)
    row.get_by_test_id("start").click()  # started: on to its prepare page
    expect(lab.get_by_role("heading", level=1)).to_have_text(f"Record {prep.code} · Blinatumomab")
    lab.wait_for_load_state("load")  # scan.js and vialscan.js (deferred)
    expect(lab.get_by_test_id("bag-dose")).to_contain_text(
        f"Bag {prep.dose.number}: {prep.dose_mg} mg ({prep.calculation['mg_per_day']} mg/day) over {bag_hours} h"
    )
    volume_label = f"Bag's final volume, mL (label's table for a {bag_hours} h bag; required)"
    expect(lab.get_by_label(volume_label)).to_be_visible()
    _accessible(lab)
    for name, value in (("product-0", "Blinatumomab 35 µg"), ("lot-0", "BL2611"), ("expiry-0", expiry),
                        ("volume-0", "1.5"), ("product-2", "0.9% sodium chloride 250 mL"), ("lot-2", "NS77"),
                        ("expiry-2", expiry), ("volume-2", "270")):  # fmt: skip
        lab.get_by_test_id(name).fill(value)
    lab.get_by_label("USP <797> category").select_option("category_2")
    lab.get_by_label("Storage").select_option("refrigerated")
    lab.get_by_test_id("bag-volume").fill(BAG_ML)
    lab.get_by_test_id("record-submit").click()
    expect(lab.get_by_test_id("message")).to_contain_text(f"{prep.code} recorded")


def test_bag_1_prepared_verified_and_hung_then_bag_2_due_when_it_runs_out_with_its_own_bud(
    live_server, browser: Browser, staff: Staff
):
    patient, nurse = staff.patient, staff.nurse
    preparer, checker = staff.technicians
    course = start_course(patient, staff.oncologist, CYCLE_1, in_hours=1, bag_hours=48)
    bag_1, bag_2 = (live_preparation(course.doses.get(number=n)) for n in (1, 2))
    base = live_server.url

    # The technician prepares bag 1: 9 µg/day for 48 h, its volume from the label's table.
    lab = browser.new_context().new_page()
    login(lab, base, preparer.username)
    _prepare_on_the_pages(lab, base, bag_1, 48)
    bag_1.refresh_from_db()
    assert bag_1.status == PreparationStatus.AWAITING_VERIFICATION
    assert bag_1.final_volume_ml == Decimal(BAG_ML)
    assert bag_1.punctured_at is not None
    assert bag_1.beyond_use_at is not None
    assert bag_1.beyond_use_at > bag_1.punctured_at + 48 * H  # refrigerated: room for the whole bag and more

    # Not in the preparer's own queue, and refused if they open its page anyway.
    lab.goto(f"{base}/orders/verification/")
    expect(lab.get_by_test_id("verification-queue")).not_to_contain_text(bag_1.code)
    lab.goto(f"{base}/orders/preparations/{bag_1.pk}/verify/")
    lab.get_by_test_id("method").select_option("volumetric")
    lab.get_by_test_id("measured").fill(BAG_ML)
    lab.get_by_test_id("password").fill("a-long-test-password")
    lab.get_by_test_id("verify-submit").click()
    expect(lab.get_by_test_id("form-errors")).to_contain_text(PREPARER_MAY_NOT_VERIFY)
    _accessible(lab)
    assert Preparation.objects.get(pk=bag_1.pk).verified_at is None

    # The other technician checks the bag against the entered volume, prints its label, releases it.
    check = browser.new_context().new_page()
    login(check, base, checker.username)
    check.goto(f"{base}/orders/verification/")
    check.get_by_test_id("verification-row").filter(has_text=bag_1.code).get_by_test_id("verify-link").click()
    facts = check.locator("dl.facts")
    expect(facts).to_contain_text(f"bag {bag_1.dose.number}: {bag_1.dose_mg} mg in 48 h")
    expect(facts).to_contain_text(f"start administration by {_minute(bag_1.beyond_use_at)}")
    _accessible(check)
    check.get_by_test_id("method").select_option("volumetric")
    check.get_by_test_id("measured").fill(BAG_ML)
    check.get_by_test_id("password").fill("a-long-test-password")
    check.get_by_test_id("verify-submit").click()
    expect(check.get_by_test_id("message")).to_contain_text(f"{bag_1.code} verified")
    href = check.get_by_test_id("label-pdf").get_attribute("href")
    assert href is not None
    pdf = check.request.get(f"{base}{href}")
    assert pdf.ok, pdf.status
    label = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.body())).pages)
    assert f"Dose {bag_1.dose_mg} mg in 48 h" in label
    assert "IV infusion over 48 h" in label
    check.get_by_test_id("release").click()
    expect(check.get_by_test_id("message")).to_contain_text("released")
    _accessible(check)

    # The nurse: the first bag of a step needs its dexamethasone recorded first.
    ward = browser.new_context().new_page()
    login(ward, base, nurse.username)
    ward.get_by_role("link", name="Administer").click()
    ward.get_by_test_id("ward-row").filter(has_text=bag_1.code).get_by_test_id("administer-link").click()
    ward.wait_for_load_state("load")  # scan.js (deferred)
    expect(ward.get_by_test_id("prep-facts")).to_contain_text("over 48 h")
    _accessible(ward)
    bedside_refused_for_premedication(ward, wristband=patient.mrn, label=bag_1.code, classes="Corticosteroid")
    _accessible(ward)
    assert Preparation.objects.get(pk=bag_1.pk).status == PreparationStatus.RELEASED

    ward.get_by_test_id("scan-wristband").fill(patient.mrn)
    ward.get_by_test_id("scan-label").fill(bag_1.code)
    ward.get_by_test_id("premed-at").fill(f"{timezone.localtime(timezone.now() - H):%Y-%m-%dT%H:%M}")
    ward.get_by_test_id("premed-corticosteroid").check()
    ward.get_by_test_id("premed-note").fill("Dexamethasone IV")
    ward.get_by_test_id("scan-submit").click()
    expect(ward.get_by_test_id("scan-result")).to_contain_text(f"Match: administration of {bag_1.code} started")
    expect(ward.get_by_test_id("prep-status")).to_have_text("Administered")
    hung = Preparation.objects.get(pk=bag_1.pk).administration_started_at
    assert hung is not None
    runs_out = hung + 48 * H
    assert course.doses.get(number=2).planned_at == runs_out  # no gap: bag 2 follows bag 1

    ward.get_by_role("link", name="Administer").click()
    change = ward.get_by_test_id("bag-change").filter(has_text=patient.family_name.upper())
    expect(change).to_contain_text(f"bag 1 (48 h) up since {_minute(hung)}")
    expect(change).to_contain_text(f"bag 2 due {_minute(runs_out)}")
    _accessible(ward)

    # 40 h later, 8 h before bag 1 runs out, bag 2 is on the worklist and is prepared: its own clocks.
    with time_machine.travel(hung + 40 * H, tick=True):
        later = browser.new_context().new_page()
        login(later, base, preparer.username)
        bag_2.refresh_from_db()
        _prepare_on_the_pages(later, base, bag_2, 48)
        bag_2.refresh_from_db()
        assert bag_2.punctured_at is not None
        assert bag_2.beyond_use_at is not None
        assert bag_2.punctured_at >= hung + 40 * H
        assert _minute(bag_2.beyond_use_at) != _minute(bag_1.beyond_use_at)
        later.goto(f"{base}/orders/preparations/{bag_2.pk}/verify/")
        facts = later.locator("dl.facts")
        expect(facts).to_contain_text(f"start administration by {_minute(bag_2.beyond_use_at)}")
        expect(facts).not_to_contain_text(_minute(bag_1.beyond_use_at))
        expect(later.get_by_test_id("prep-status")).to_have_text("Awaiting verification")
        _accessible(later)
