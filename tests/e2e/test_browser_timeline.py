"""The patient timeline in a real browser at desktop (1280 px) and tablet (768 px) width: it opens on today, the
days run left to right (desktop) or top to bottom (tablet), every entry is a link, the test filter works by its
button, and axe-core finds no critical or serious violation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from assessments.services import assessment_record
from monitoring.services import monitoring_tests_flag_overdue
from results.services import ResultEntry, results_enter, results_verify
from tests import factories
from tests.assessments.test_assessments import CALM_ICANS, FEVER
from tests.e2e.pages import Staff, login, serious_violations
from tests.orders.helpers import start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def patient(staff: Staff):
    """A dose tomorrow, an overdue CRP (with its alert), a critical potassium and a normal sodium, a CRP due next
    week and an assessment with fever, and an old result ten days ago (left of today)."""
    now, patient = timezone.now(), staff.patient
    start_course(patient, staff.oncologist, "Pembrolizumab 200 mg q3w", in_hours=20)
    factories.make_test(patient, due_at=now - timedelta(hours=2), grace=timedelta(0), name="CRP")
    monitoring_tests_flag_overdue()
    specimen = collected_specimen(patient, staff.nurse, "Potassium", "Sodium")
    rows = results_enter(
        entries=[
            ResultEntry(specimen, analyte("Potassium"), "6.9", "mmol/L"),
            ResultEntry(specimen, analyte("Sodium"), "139", "mmol/L"),
        ],
        user=staff.technicians[0], now=now,
    )  # fmt: skip
    results_verify(results=rows, user=staff.technicians[1], now=now)
    earlier = collected_specimen(patient, staff.nurse, "Sodium")
    ten_days_ago = ResultEntry(earlier, analyte("Sodium"), "131", "mmol/L", observed_at=now - timedelta(days=10))
    old = results_enter(entries=[ten_days_ago], user=staff.technicians[0], now=now)
    results_verify(results=old, user=staff.technicians[1], now=now)
    factories.make_test(patient, due_at=now + timedelta(days=7), name="CRP")
    assessment_record(patient=patient, assessed_at=now, user=staff.nurse, now=now, **FEVER, **CALM_ICANS)
    return patient


@pytest.mark.parametrize("width", [1280, 768])
def test_timeline_opens_on_today_and_passes_axe(live_server, browser: Browser, staff: Staff, patient, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    login(page, live_server.url, staff.oncologist.username)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_test_id("timeline-link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Timeline")
    today = page.locator("#today")
    expect(today).to_be_in_viewport()
    expect(today).to_contain_text("Today")
    box = page.get_by_test_id("timeline").bounding_box()
    day = today.bounding_box()
    assert box is not None
    assert day is not None
    if width == 1280:
        # Days are columns: today sits in the middle, past to its left, the next two weeks to its right.
        assert box["x"] + box["width"] * 0.2 < day["x"] + day["width"] / 2 < box["x"] + box["width"] * 0.8
        past = page.locator('[data-testid="timeline-day"][data-date]').first.bounding_box()
        assert past is not None
        assert past["x"] < day["x"]
    else:
        # Days stack, past above: the list opens scrolled to today (at its top, unless the list ends first).
        assert day["width"] > box["width"] * 0.9
        past = page.locator(".ptl-day.past:not(.empty)").first.bounding_box()
        assert past is not None
        assert past["y"] < day["y"]
        at_end = page.get_by_test_id("timeline").evaluate(
            "b => b.scrollTop > 0 && b.scrollTop + b.clientHeight >= b.scrollHeight - 1"
        )
        assert day["y"] - box["y"] < 5 or at_end
    # Every entry is a link; the lanes are named on the day.
    entries = page.locator('[data-testid^="tl-"]')
    assert entries.count() >= 6
    for i in range(entries.count()):
        assert entries.nth(i).locator("a").count() == 1
    expect(today.get_by_role("heading", name="Labs")).to_be_visible()
    expect(today.get_by_role("heading", name="Alerts")).to_be_visible()
    expect(today.locator('[data-testid="tl-result"]', has_text="Potassium")).to_contain_text("Critically high (HH)")
    assert serious_violations(page) == []
    # The filter is a plain GET form: choose Sodium, press Show.
    page.get_by_label("Test").select_option(label="Sodium")
    page.get_by_role("button", name="Show").click()
    assert "test=" in page.url
    results = page.locator('[data-testid="tl-result"]')
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("Sodium")
    expect(page.locator('[data-testid="tl-dose"]')).to_have_count(1)
    assert serious_violations(page) == []
    # An entry opens its detail page.
    page.locator('[data-testid="tl-result"] a', has_text="139").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sodium")
    context.close()
