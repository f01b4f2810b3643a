"""The idle timeout in a real browser: a warning before it, "Stay signed in" keeps the session, and a session that
ends anyway sends the user to log in with a message and back to the page with what they typed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.pages import Staff, login, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IDLE_SECONDS = 20  # the page warns at 6 s, keeps the typed values at 12 s and reloads at 21 s


@pytest.fixture
def short_idle(settings):
    settings.IDLE_TIMEOUT = timedelta(seconds=IDLE_SECONDS)


def test_a_session_that_ends_returns_the_user_to_the_page_with_what_they_typed(
    live_server, browser: Browser, staff: Staff, short_idle
):
    page = browser.new_context().new_page()
    login(page, live_server.url, staff.nurse.username)
    page.goto(f"{live_server.url}/patients/search/")
    page.fill("#id_search_q", "Kowal")
    expect(page.get_by_test_id("session-warning")).to_be_visible(timeout=15_000)
    assert serious_violations(page) == []
    # no answer: the page keeps the value, reloads, and the server ends the session
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=%2Fpatients%2Fsearch%2F&reason=idle"), timeout=30_000)
    expect(page.get_by_test_id("idle-notice")).to_contain_text("without activity")
    assert serious_violations(page) == []
    page.fill("#id_username", staff.nurse.username)
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/patients/search/")
    expect(page.locator("#id_search_q")).to_have_value("Kowal")
    expect(page.get_by_test_id("restored")).to_be_visible()
    page.goto(f"{live_server.url}/patients/")  # kept only for the way back through the login
    page.goto(f"{live_server.url}/patients/search/")
    expect(page.locator("#id_search_q")).to_have_value("")
    expect(page.get_by_test_id("restored")).to_have_count(0)


def test_stay_signed_in_keeps_the_session_past_the_timeout(live_server, browser: Browser, staff: Staff, short_idle):
    page = browser.new_context().new_page()
    login(page, live_server.url, staff.nurse.username)
    page.goto(f"{live_server.url}/patients/")
    warning = page.get_by_test_id("session-warning")
    expect(warning).to_be_visible(timeout=15_000)
    page.get_by_test_id("stay-signed-in").click()
    expect(warning).to_be_hidden()
    page.wait_for_timeout((IDLE_SECONDS - 4) * 1000)  # past the end of the first timeout, before the second
    assert "/accounts/login/" not in page.url
    response = page.goto(f"{live_server.url}/patients/")
    assert response is not None
    assert response.url == f"{live_server.url}/patients/"  # still signed in
