"""In a real browser: a nurse prints the collection list and collects with a wristband scan; the lab
receives the specimen by scanning its label."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from accounts.choices import Role
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from specimens.models import Specimen
from tests import factories
from tests.e2e.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_collect_with_wristband_scan_then_receive_by_label_scan(live_server, reference_db, browser: Browser, team_a):
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.ward")
    technician = factories.make_user(Role.LAB_TECHNICIAN, None, "tech.lab")
    patient = factories.make_patient(team_a)
    bystander = factories.make_patient(team_a)
    for name in ("CBC with differential", "Comprehensive metabolic panel", "TSH"):
        factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=5), grace=timedelta(0), name=name)

    ward = browser.new_context()
    page = ward.new_page()
    login(page, live_server.url, nurse.username)
    page.get_by_role("link", name="Collection").click()
    draw = page.locator(f"[data-testid=draw][data-patient-id='{patient.pk}']")
    expect(draw.get_by_test_id("tube")).to_have_count(2)
    expect(draw.get_by_test_id("tube").first).to_contain_text("Gold top SST")
    page.emulate_media(media="print")  # the printed list hides the navigation and buttons
    expect(page.locator("header.top")).to_be_hidden()
    expect(draw).to_be_visible()
    page.emulate_media(media="screen")

    draw.get_by_test_id("collect-link").click()
    wristband = page.get_by_test_id("wristband")
    expect(wristband).to_be_focused()
    wristband.fill(bystander.mrn)  # the scanner types the MRN and sends Enter
    wristband.press("Enter")
    expect(page.get_by_test_id("collect-error")).to_contain_text("does not match")
    assert not Specimen.objects.exists()

    page.get_by_test_id("wristband").fill(patient.mrn)
    page.get_by_test_id("wristband").press("Enter")
    expect(page.get_by_test_id("specimen-row")).to_have_count(2)
    accessions = page.get_by_test_id("accession").all_inner_texts()
    assert sorted(accessions) == sorted(Specimen.objects.values_list("accession", flat=True))
    assert set(MonitoringTest.objects.values_list("status", flat=True)) == {MonitoringTestStatus.COLLECTED}
    ward.close()

    lab = browser.new_context()
    page = lab.new_page()
    login(page, live_server.url, technician.username)
    page.get_by_role("link", name="Receive").click()
    for accession in accessions:
        scan = page.get_by_test_id("accession-input")
        expect(scan).to_be_focused()
        scan.fill(accession)
        scan.press("Enter")
        expect(page.get_by_test_id("receive-result")).to_contain_text(f"Received {accession}")
    expect(page.get_by_test_id("received-log").locator("li")).to_have_count(2)
    page.get_by_test_id("accession-input").fill(accessions[0])  # a second scan of the same tube
    page.get_by_test_id("accession-input").press("Enter")
    expect(page.get_by_test_id("receive-result")).to_contain_text("already received")
    assert set(Specimen.objects.values_list("status", flat=True)) == {"received"}
    lab.close()
