"""One lock-out for every password: the login page, the API token login and signatures (a preparation's
verification, a co-signature) count failures together per username and address (django-axes), and once locked
out an account can neither log in nor sign until the cool-off ends. A refused signature writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pghistory.models
import pytest
import time_machine
from axes.models import AccessAttempt
from django.utils import timezone

from accounts.choices import Role
from orders.choices import PreparationStatus
from orders.models import DoseDecision, Preparation
from orders.services.preparations import preparation_record, preparation_start
from tests import factories
from tests.orders.cell_helpers import PEMBRO, cleared_preparation, pembro_components
from tests.orders.helpers import clear_pre_dose, first_dose, start_course

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"  # tests.factories.make_user's
LOCKED = "Too many wrong passwords: signing in and signing with this account are locked for 15 minutes."
WRONG_SIGNATURE = "Password does not match: re-enter your own password to sign the verification."


@pytest.fixture
def awaiting(oncologist_a, nurse_a, patient_a, technicians) -> Preparation:
    """A pembrolizumab preparation recorded by technicians[0], awaiting its verification."""
    prep = cleared_preparation(patient_a, oncologist_a, nurse_a, technicians, PEMBRO)
    start = timezone.now() - timedelta(minutes=20)
    preparation_start(preparation=prep, user=technicians[0], now=start)
    preparation_record(
        preparation=prep, components=pembro_components(start.date() + timedelta(days=365)), category="category_1",
        storage="room", user=technicians[0], now=start + timedelta(minutes=10),
    )  # fmt: skip
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.AWAITING_VERIFICATION
    return prep


def _verify(api, prep: Preparation, password: str):
    body = {"password": password, "method": "gravimetric", "measured": "8.00"}
    return api.post(f"/api/preparations/{prep.pk}/verify/", body, format="json")


def _page_login(client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def _token_login(api, username: str, password: str):
    return api.post("/api/auth/login/", {"username": username, "password": password}, format="json")


def _events(prep: Preparation) -> int:
    return pghistory.models.Events.objects.references(prep).count()


def _unchanged(prep: Preparation, events_before: int) -> None:
    """Nothing of a refused verification was written: no signature, no measurement, no new audit event."""
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.AWAITING_VERIFICATION
    assert (prep.verified_by, prep.verified_at, prep.measured_value) == (None, None, None)
    assert _events(prep) == events_before


def test_wrong_signature_passwords_lock_out_the_login_too(client, api, api_as, technicians, awaiting):
    checker, events = api_as(technicians[1]), _events(awaiting)
    for _ in range(4):
        refused = _verify(checker, awaiting, "not-my-password")
        assert refused.status_code == 403
        assert refused.json() == {"detail": WRONG_SIGNATURE}
    fifth = _verify(checker, awaiting, "not-my-password")
    assert (fifth.status_code, fifth.json()) == (403, {"detail": LOCKED})
    # Locked out everywhere, even with the right password:
    signed = _verify(checker, awaiting, PASSWORD)
    assert (signed.status_code, signed.json()) == (403, {"detail": LOCKED})
    page = _page_login(client, technicians[1].username, PASSWORD)
    assert page.status_code == 429
    assert "_auth_user_id" not in client.session
    token = _token_login(api, technicians[1].username, PASSWORD)
    assert (token.status_code, token.json()) == (429, {"detail": LOCKED})
    _unchanged(awaiting, events)
    # Per username: the other technician still logs in.
    assert _page_login(client, technicians[0].username, PASSWORD).status_code == 302


def test_wrong_logins_lock_out_signatures_too(client, api, api_as, technicians, awaiting):
    username, events = technicians[1].username, _events(awaiting)
    for _ in range(3):
        assert _page_login(client, username, "wrong").status_code == 200  # the form again, with its error
    assert _token_login(api, username, "wrong").status_code == 400
    assert _token_login(api, username, "wrong").json() == {"detail": LOCKED}  # the fifth failure
    signed = _verify(api_as(technicians[1]), awaiting, PASSWORD)
    assert (signed.status_code, signed.json()) == (403, {"detail": LOCKED})
    _unchanged(awaiting, events)


def test_the_lock_out_ends_after_the_cool_off(client, api_as, technicians, awaiting):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(5):
            _page_login(client, technicians[1].username, "wrong")
        assert _verify(api_as(technicians[1]), awaiting, PASSWORD).json() == {"detail": LOCKED}
        traveller.move_to(start + timedelta(minutes=14))
        assert _verify(api_as(technicians[1]), awaiting, PASSWORD).status_code == 403  # and restarts the cool-off
        traveller.move_to(start + timedelta(minutes=14 + 16))
        signed = _verify(api_as(technicians[1]), awaiting, PASSWORD)
        assert signed.status_code == 200, signed.content
        assert signed.json()["verified_by"] == technicians[1].pk


def test_a_signature_with_the_right_password_is_not_a_failure(client, api_as, technicians, awaiting):
    for _ in range(4):
        _page_login(client, technicians[1].username, "wrong")
    signed = _verify(api_as(technicians[1]), awaiting, PASSWORD)
    assert signed.status_code == 200, signed.content
    assert _page_login(client, technicians[1].username, PASSWORD).status_code == 302


@pytest.fixture
def discontinued(oncologist_a, nurse_a, patient_a, team_a):
    """A dose that meets a permanent-discontinuation rule (ALT 8.1 x ULN): two oncologists must decide."""
    tech, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"lock.t{i}") for i in range(2))
    factories.make_user(Role.ONCOLOGIST, team_a, "onc.second")
    dose = first_dose(start_course(patient_a, oncologist_a, PEMBRO))
    clear_pre_dose(dose, nurse_a, tech, checker, values={"ALT": ("454", "U/L")})
    return dose


def test_wrong_cosigner_passwords_lock_out_the_cosigner(client, oncologist_a, discontinued):
    url = f"/orders/courses/{discontinued.course_id}/"
    form = {"dose": discontinued.pk, "decision": "cosigned", "reason": "MDT decision on the liver lesions",
            "cosigner": "onc.second"}  # fmt: skip
    client.force_login(oncologist_a)
    for _ in range(5):
        refused = client.post(url, {**form, "cosigner_password": "wrong"})
        assert refused.status_code == 403
    assert LOCKED in client.post(url, {**form, "cosigner_password": PASSWORD}).content.decode()
    assert not DoseDecision.objects.exists()
    # The lock-out tables hold who and where from, never the form's clinical reason.
    attempt = AccessAttempt.objects.get(username="onc.second")
    assert attempt.failures_since_start >= 5
    assert "MDT" not in attempt.post_data + attempt.get_data
    # The cosigner is locked out of the login; the oncologist who asked is not.
    client.logout()
    assert _page_login(client, "onc.second", PASSWORD).status_code == 429
    assert _page_login(client, oncologist_a.username, PASSWORD).status_code == 302
