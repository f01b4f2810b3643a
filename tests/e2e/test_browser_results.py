"""In a real browser: a technician enters a critical potassium, a second technician verifies it, the
nurse's open inbox shows the critical alert at once, and the oncologist reviews it with the trend chart."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from results.models import Result
from tests.e2e.pages import Staff, login, serious_violations
from tests.results.helpers import collected_specimen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_entry_verification_critical_alert_and_review(live_server, browser: Browser, staff: Staff):
    nurse, oncologist, (enterer, verifier) = staff.nurse, staff.oncologist, staff.technicians
    specimen = collected_specimen(staff.patient, nurse, "Potassium", "Sodium")

    ward = browser.new_context().new_page()
    login(ward, live_server.url, nurse.username)
    expect(ward.get_by_test_id("alert-count")).to_have_text("0")
    ward.evaluate("window.__sameDocument = true")

    lab = browser.new_context().new_page()
    login(lab, live_server.url, enterer.username)
    lab.goto(f"{live_server.url}/specimens/{specimen.pk}/")
    lab.get_by_test_id("enter-results").click()
    lab.wait_for_load_state("load")  # grid.js (deferred) handles Enter
    first = lab.get_by_test_id("value-input").first
    expect(first).to_be_focused()
    rows = lab.get_by_test_id("grid-row")
    potassium = rows.filter(has_text="Potassium").get_by_test_id("value-input")
    sodium = rows.filter(has_text="Sodium").get_by_test_id("value-input")
    potassium.fill("6.9")
    potassium.press("Enter")  # Enter moves to the next value like Tab
    expect(sodium).to_be_focused()
    sodium.fill("138")
    lab.get_by_role("button", name="Save results").click()
    expect(rows.filter(has_text="Potassium")).to_contain_text("HH")
    assert Result.objects.filter(status="preliminary").count() == 2

    second = browser.new_context().new_page()
    login(second, live_server.url, verifier.username)
    second.get_by_role("link", name="Verify").click()
    expect(second.get_by_test_id("verify-row")).to_have_count(2)
    second.get_by_test_id("verify-selected").click()
    expect(second.get_by_text("Nothing to verify.")).to_be_visible()

    critical = ward.get_by_test_id("alert-row").filter(has_text="Critical: Potassium 6.9")
    expect(critical).to_be_visible(timeout=15_000)  # raised in the verifying request; the inbox polls
    expect(ward.get_by_test_id("alert-count")).to_have_text("1")
    assert ward.evaluate("window.__sameDocument") is True

    onc = browser.new_context().new_page()
    login(onc, live_server.url, oncologist.username)
    onc.get_by_role("link", name="Review").click()
    review_rows = onc.get_by_test_id("review-row")
    expect(review_rows).to_have_count(1)  # one row per specimen
    expect(review_rows.first.get_by_test_id("to-read")).to_contain_text("Potassium")  # the critical value spelled out
    expect(review_rows.first.get_by_test_id("to-read")).not_to_contain_text("Sodium")  # normal: folded
    review_rows.first.get_by_test_id("normal").get_by_text("1 normal").click()
    expect(review_rows.first.get_by_test_id("normal")).to_contain_text("Sodium")
    assert serious_violations(onc) == []
    review_rows.first.get_by_role("link", name="trend").click()
    chart = onc.locator("canvas[data-trend]").first
    expect(chart).to_have_attribute("data-ready", "1")
    box = chart.bounding_box()
    assert box is not None
    assert box["height"] > 100
    expect(onc.get_by_test_id("trend-table").first).to_contain_text("6.9")  # the values also as a table
    assert serious_violations(onc) == []
    onc.go_back()
    onc.locator("input[name=results]").first.check()
    onc.get_by_test_id("review-selected").click()
    expect(onc.get_by_text("Reviewed 2 results.")).to_be_visible()  # the specimen's panel signed off at once
    assert Result.objects.filter(reviewed_by=oncologist, lab_test__name__in=["Potassium", "Sodium"]).count() == 2
