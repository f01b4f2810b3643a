"""In a real browser: the oncologist's inbox shows one folded, worsened alert for a patient's repeated
platelet counts, with the ladder step that reached the charge nurse; the attending reads the team's alert-burden
report. axe-core checks both pages (no critical or serious violations)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from accounts.choices import Role
from alerts.services import alerts_escalate_unacknowledged
from patients.choices import CareTeamRole
from patients.models import CareTeamMembership
from results.services import ResultEntry, results_enter, results_verify
from tests import factories
from tests.e2e.pages import login, serious_violations
from tests.results.helpers import analyte, collected_specimen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_inbox_shows_a_folded_worsened_escalated_alert_and_the_burden_report(
    live_server, reference_db, browser: Browser, team_a
):
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.fold")
    oncologist = factories.make_user(Role.ONCOLOGIST, team_a, "onc.fold")
    charge = factories.make_user(Role.NURSE, None, "charge.fold")
    attending = factories.make_user(Role.ONCOLOGIST, None, "attending.fold")
    CareTeamMembership.objects.create(care_team=team_a, user=charge, role=CareTeamRole.CHARGE_NURSE)
    CareTeamMembership.objects.create(care_team=team_a, user=attending, role=CareTeamRole.ATTENDING)
    enterer, verifier = (factories.make_user(Role.LAB_TECHNICIAN, None, f"tech.fold{n}") for n in (1, 2))
    patient = factories.make_patient(team_a)
    now = timezone.now()
    for hours_ago, value in ((26, "40"), (20, "45"), (1, "22")):  # grade 3, grade 3, grade 4
        at = now - timedelta(hours=hours_ago)
        specimen = collected_specimen(patient, nurse, "Platelets")
        rows = results_enter(
            entries=[ResultEntry(specimen, analyte("Platelets"), value, "10*3/uL")], user=enterer, now=at
        )
        results_verify(results=rows, user=verifier, now=at)
    alerts_escalate_unacknowledged(now=now + timedelta(minutes=15))

    page = browser.new_page()
    login(page, live_server.url, oncologist.username)
    (row,) = page.get_by_test_id("alert-row").all()
    expect(row.get_by_test_id("worsened")).to_be_visible()
    expect(row.get_by_test_id("folded")).to_contain_text("Seen 3 times")
    expect(row).to_contain_text("Platelets 22")
    expect(row.get_by_test_id("escalation")).to_contain_text("charge nurse: charge.fold")
    assert serious_violations(page) == []

    lead = browser.new_page()
    login(lead, live_server.url, attending.username)
    lead.get_by_role("link", name="Alert burden").click()
    expect(lead.get_by_role("heading", level=1)).to_contain_text("Alert burden")
    assert serious_violations(lead) == []
