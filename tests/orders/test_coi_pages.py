"""The chain-of-identity page of a frozen cell product (orders/views_coi.py): the collection and shipment
hand-offs scanned in order (a mismatch kept and shown as a STOP, 409), pharmacy's confirmation of the rescue
doses on hand, shown to everyone who sees the course; permissions, care-team scoping and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orders.cells import rescue_medication_confirm
from orders.choices import CoiStep
from orders.models import IdentityCheck, RescueMedicationCheck
from orders.services.identity import chain_of_identity_handoff
from tests import factories
from tests.orders.cell_helpers import COI, PEMBRO
from tests.orders.helpers import start_course
from tests.query_counts import assert_same_cost, measure

pytestmark = pytest.mark.django_db


def _url(prep) -> str:
    return f"/orders/courses/{prep.dose.course_id}/identity/"


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _handoff(client: Client, prep, step: str, scanned: str, note: str = ""):
    return client.post(_url(prep), {"form": "handoff", "step": step, "scanned": scanned, "note": note})


def test_technician_records_collection_then_shipment(technicians, car_t):
    client = _as(technicians[0])
    page = client.get(_url(car_t))
    assert page.status_code == 200
    body = page.content.decode()
    assert COI in body
    assert 'name="step" value="collection"' in body
    assert "No hand-off recorded yet." in body

    response = _handoff(client, car_t, "collection", f"  {COI}  ", note="Apheresis unit 2")
    assert response.status_code == 302
    assert response["Location"] == _url(car_t)
    page = client.get(response["Location"])
    body = page.content.decode()
    assert "Leukapheresis collection recorded: the chain-of-identity ID matches." in body
    assert 'name="step" value="shipment"' in body
    assert "Apheresis unit 2" in body

    assert _handoff(client, car_t, "shipment", COI).status_code == 302
    body = client.get(_url(car_t)).content.decode()
    assert 'data-testid="handoffs-done"' in body
    assert 'data-testid="handoff-form"' not in body
    assert body.count('data-testid="coi-check"') == 2
    checks = list(IdentityCheck.objects.filter(course=car_t.dose.course).order_by("at", "id"))
    assert [(c.step, c.matched, c.by) for c in checks] == [
        (CoiStep.COLLECTION, True, technicians[0]),
        (CoiStep.SHIPMENT, True, technicians[0]),
    ]
    assert checks[0].note == "Apheresis unit 2"


def test_a_mismatch_is_recorded_and_shown_as_a_stop(technicians, car_t):
    client = _as(technicians[0])
    response = _handoff(client, car_t, "collection", "COI-2026-000999")
    assert response.status_code == 409
    body = response.content.decode()
    assert 'data-testid="coi-stop"' in body
    assert "STOP: the chain-of-identity ID does not match this patient&#x27;s product." in body
    check = IdentityCheck.objects.get(course=car_t.dose.course)
    assert (check.step, check.matched, check.scanned_label) == (CoiStep.COLLECTION, False, "COI-2026-000999")
    assert 'data-matched="no"' in body
    # the step stays undone: the next scan is still the collection, and a matching one records it
    assert 'name="step" value="collection"' in body
    assert _handoff(client, car_t, "collection", COI).status_code == 302
    assert IdentityCheck.objects.filter(course=car_t.dose.course, matched=True).count() == 1


def test_shipment_before_collection_is_refused_and_nothing_written(technicians, car_t):
    response = _handoff(_as(technicians[0]), car_t, "shipment", COI)
    assert response.status_code == 409
    assert "Record Leukapheresis collection first." in response.content.decode()
    assert not IdentityCheck.objects.filter(course=car_t.dose.course).exists()


def test_a_repeated_handoff_is_refused(technicians, car_t):
    client = _as(technicians[0])
    assert _handoff(client, car_t, "collection", COI).status_code == 302
    response = _handoff(client, car_t, "collection", COI)
    assert response.status_code == 409
    assert "Leukapheresis collection is already recorded." in response.content.decode()
    assert IdentityCheck.objects.filter(course=car_t.dose.course).count() == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"step": "collection", "scanned": ""}, "scanned"),
        ({"step": "receipt", "scanned": COI}, "step"),
        ({"step": "bedside", "scanned": COI}, "step"),
        ({"step": "collection", "scanned": "C" * 41}, "scanned"),
    ],
)
def test_bad_handoff_input_is_400_naming_the_field(technicians, car_t, data, field):
    response = _as(technicians[0]).post(_url(car_t), {"form": "handoff", **data})
    assert response.status_code == 400
    assert f'data-field="{field}"' in response.content.decode()
    assert not IdentityCheck.objects.exists()


def test_pharmacy_confirms_the_rescue_doses_and_the_ward_sees_them(technicians, nurse_a, car_t):
    nurse = _as(nurse_a)
    body = nurse.get(_url(car_t)).content.decode()
    assert "2 dose(s) of Tocilizumab" in body  # what the drug requires (the catalogue)
    assert "not confirmed yet" in body
    assert 'data-testid="rescue-form"' not in body  # a nurse does not confirm it

    tech = _as(technicians[1])
    assert 'data-testid="rescue-form"' in tech.get(_url(car_t)).content.decode()
    response = tech.post(_url(car_t), {"form": "rescue", "doses_on_hand": "2", "note": "Fridge 3, shelf B"})
    assert response.status_code == 302
    assert response["Location"] == _url(car_t)
    check = RescueMedicationCheck.objects.get(course=car_t.dose.course)
    assert (check.doses_on_hand, check.drug, check.confirmed_by, check.note) == (
        2, "Tocilizumab", technicians[1], "Fridge 3, shelf B"
    )  # fmt: skip

    latest = nurse.get(_url(car_t)).content.decode()
    assert "tech.two" in latest
    assert "Fridge 3, shelf B" in latest
    assert timezone.localtime(check.at).strftime("%Y-%m-%d %H:%M") in latest
    assert "not confirmed yet" not in latest
    assert "fewer than required" not in latest


def test_the_latest_confirmation_counts_and_a_short_count_is_flagged(technicians, nurse_a, car_t):
    course, now = car_t.dose.course, timezone.now()
    rescue_medication_confirm(course=course, doses_on_hand=2, user=technicians[0], now=now - timedelta(hours=2))
    rescue_medication_confirm(course=course, doses_on_hand=1, user=technicians[1], now=now - timedelta(hours=1))
    body = _as(nurse_a).get(_url(car_t)).content.decode()
    assert "1 dose(s) of Tocilizumab · tech.two" in body
    assert "fewer than required: the bedside check stops" in body


@pytest.mark.parametrize("doses", ["two", "", "-1", "51", "1.5"])
def test_bad_doses_count_is_400_naming_the_field_and_nothing_written(technicians, car_t, doses):
    response = _as(technicians[0]).post(_url(car_t), {"form": "rescue", "doses_on_hand": doses})
    assert response.status_code == 400
    assert 'data-field="doses_on_hand"' in response.content.decode()
    assert not RescueMedicationCheck.objects.exists()


def test_a_nurse_cannot_confirm_rescue_medication(nurse_a, car_t):
    response = _as(nurse_a).post(_url(car_t), {"form": "rescue", "doses_on_hand": "2"})
    assert response.status_code == 403
    assert not RescueMedicationCheck.objects.exists()


def test_a_user_without_the_course_permission_is_refused(car_t):
    stranger = _as(factories.make_user(None, None, "no.role"))
    assert stranger.get(_url(car_t)).status_code == 403
    assert _handoff(stranger, car_t, "collection", COI).status_code == 403
    assert stranger.post(_url(car_t), {"form": "rescue", "doses_on_hand": "2"}).status_code == 403
    assert not IdentityCheck.objects.exists()
    assert not RescueMedicationCheck.objects.exists()


def test_another_teams_course_is_not_found(nurse_b, car_t):
    client = _as(nurse_b)
    assert client.get(_url(car_t)).status_code == 404
    assert _handoff(client, car_t, "collection", COI).status_code == 404
    assert not IdentityCheck.objects.exists()


def test_a_nurse_of_the_team_may_record_a_handoff_as_the_api_allows(nurse_a, car_t):
    assert _handoff(_as(nurse_a), car_t, "collection", COI).status_code == 302
    assert IdentityCheck.objects.get(course=car_t.dose.course).by == nurse_a


def test_a_post_without_the_csrf_token_is_refused(technicians, car_t):
    client = Client(enforce_csrf_checks=True)
    client.force_login(technicians[0])
    assert _handoff(client, car_t, "collection", COI).status_code == 403
    assert not IdentityCheck.objects.exists()


def test_only_a_frozen_cell_product_has_the_page(technicians, oncologist_a, patient_a, car_t):
    pembro = start_course(patient_a, oncologist_a, PEMBRO)
    client = _as(technicians[0])
    assert client.get(f"/orders/courses/{pembro.pk}/identity/").status_code == 404
    assert 'data-testid="coi-link"' not in _as(oncologist_a).get(f"/orders/courses/{pembro.pk}/").content.decode()


def test_course_and_prepare_pages_link_to_it(technicians, oncologist_a, car_t):
    link = f'href="{_url(car_t)}"'
    assert link in _as(oncologist_a).get(f"/orders/courses/{car_t.dose.course_id}/").content.decode()
    assert link in _as(technicians[0]).get(f"/orders/preparations/{car_t.pk}/prepare/").content.decode()


def test_the_page_costs_the_same_queries_with_more_checks(technicians, car_t):
    course, user, now = car_t.dose.course, technicians[0], timezone.now()
    client = _as(user)
    chain_of_identity_handoff(course=course, step=CoiStep.COLLECTION, scanned=COI, user=user, now=now)
    rescue_medication_confirm(course=course, doses_on_hand=2, user=user, now=now)
    client.get(_url(car_t))  # warm-up
    few = measure(lambda: client.get(_url(car_t)))
    for scanned in ("COI-X1", "COI-X2", COI):
        chain_of_identity_handoff(course=course, step=CoiStep.SHIPMENT, scanned=scanned, user=technicians[1], now=now)
    rescue_medication_confirm(course=course, doses_on_hand=3, user=technicians[1], now=now)
    many = measure(lambda: client.get(_url(car_t)))
    assert_same_cost(few, many, lambda response: response.content.decode().count('data-testid="coi-check"'))
