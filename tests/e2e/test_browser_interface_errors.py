"""In a real browser: a lab technician opens "Interface errors" from the header, sees a result message to the EHR
that could not be delivered (the endpoint refuses connections) and re-sends it. axe-core checks the page."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from results.choices import OutboundStatus
from results.models import OutboundMessage
from results.outbox import outbox_deliver
from results.services import ResultEntry, results_enter, results_verify
from tests.e2e.pages import Staff, login, serious_violations
from tests.results.helpers import analyte, collected_specimen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_technician_sees_an_undelivered_result_message_and_resends_it(
    live_server, browser: Browser, staff: Staff, settings
):
    specimen = collected_specimen(staff.patient, staff.nurse, "Potassium")
    entry = ResultEntry(specimen, analyte("Potassium"), "4.2", "mmol/L", timezone.now() - timedelta(minutes=5))
    (result,) = results_enter(entries=[entry], user=staff.technicians[0], now=timezone.now())
    results_verify(results=[result], user=staff.technicians[1], now=timezone.now())
    with socket.socket() as closed:  # a port nobody listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        settings.HL7_OUTBOUND_HOST, settings.HL7_OUTBOUND_PORT = "127.0.0.1", closed.getsockname()[1]
        assert outbox_deliver().failed == 1
    message = OutboundMessage.objects.get()

    page = browser.new_context().new_page()
    login(page, live_server.url, staff.technicians[0].username)
    page.get_by_role("link", name="Interface errors").click()
    row = page.get_by_test_id("interface-error-row")
    expect(row).to_contain_text(message.control_id)
    expect(row).to_contain_text("Retrying")
    expect(row).to_contain_text("connection")
    assert serious_violations(page) == []

    row.get_by_test_id("resend").click()
    expect(page.get_by_role("status")).to_contain_text(f"Message {message.control_id} will be sent again.")
    message.refresh_from_db()
    assert (message.status, message.resent_by) == (OutboundStatus.PENDING, staff.technicians[0])
    assert serious_violations(page) == []
