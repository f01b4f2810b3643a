"""Preparation lifecycle through the API: transitions, record, verification, labels, administration, CAR-T."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from pypdf import PdfReader

from accounts.choices import Role
from alerts.choices import AlertAudience, AlertKind
from alerts.models import Alert
from orders.choices import PreparationStatus
from orders.models import IdentityCheck, Preparation
from orders.services.preparations import preparations_expire
from tests import factories
from tests.orders.cell_helpers import COI, car_t_ordered
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
NEXT_YEAR = (TODAY + timedelta(days=365)).isoformat()


@pytest.fixture
def techs(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "prep.one"), factories.make_user(
        Role.LAB_TECHNICIAN, None, "prep.two"
    )


@pytest.fixture
def cleared(oncologist_a, nurse_a, patient_a, techs):
    """A pembrolizumab 200 mg dose with its pre-dose labs verified: 8.0 mL into 50 mL -> 58 mL at 3.45 mg/mL."""
    dose = first_dose(start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w"))
    clear_pre_dose(dose, nurse_a, *techs)
    return live_preparation(dose)


def _components(vial_expiry=NEXT_YEAR, diluent="0.9% sodium chloride 50 mL"):
    return [
        {"kind": "vial", "product": "Pembrolizumab 100 mg/4 mL", "lot": "PB2611A", "expiry": vial_expiry,
         "volume_ml": "4.0", "count": 1},
        {"kind": "vial", "product": "Pembrolizumab 100 mg/4 mL", "lot": "PB2611A", "expiry": vial_expiry,
         "volume_ml": "4.0", "count": 1},
        {"kind": "diluent", "product": diluent, "lot": "NS0042", "expiry": NEXT_YEAR, "volume_ml": "50", "count": 1},
    ]  # fmt: skip


def _record(client, prep, **kwargs):
    payload = {"components": _components(**kwargs), "category": "category_1", "storage": "refrigerated"}
    return client.post(f"/api/preparations/{prep.pk}/record/", payload, format="json")


def _verify(client, prep, measured="8.00", password="a-long-test-password"):  # noqa: S107
    payload = {"password": password, "method": "gravimetric", "measured": measured}
    return client.post(f"/api/preparations/{prep.pk}/verify/", payload, format="json")


def _to_awaiting_verification(api_as, techs, prep):
    preparer = api_as(techs[0])
    assert preparer.post(f"/api/preparations/{prep.pk}/start/").status_code == 200
    response = _record(preparer, prep)
    assert response.status_code == 200, response.content
    return response.json()


def test_full_path_prepare_verify_release_administer(api_as, techs, nurse_a, patient_a, cleared):
    prep = cleared
    assert prep.dose_mg == Decimal("200.0")
    assert prep.volume_to_draw_ml == Decimal("8.0")
    assert prep.final_volume_ml == Decimal("58.0")
    body = _to_awaiting_verification(api_as, techs, prep)
    assert body["status"] == "awaiting_verification"
    assert body["prepared_by"] == techs[0].pk
    assert [c["lot"] for c in body["components"]] == ["PB2611A", "PB2611A", "NS0042"]
    verifier = api_as(techs[1])
    response = _verify(verifier, prep)
    assert response.status_code == 200, response.content
    assert response.json()["verified_by"] == techs[1].pk
    assert response.json()["expected_value"] == "8.00"
    pdf = verifier.get(f"/api/preparations/{prep.pk}/label/pdf/")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(__import__("io").BytesIO(pdf.content)).pages)
    assert prep.code in text  # the barcode's text
    assert patient_a.mrn in text
    assert "Pembrolizumab" in text
    assert verifier.post(f"/api/preparations/{prep.pk}/release/").json()["status"] == "released"
    nurse = api_as(nurse_a)
    response = nurse.post(
        f"/api/preparations/{prep.pk}/administer/", {"wristband": patient_a.mrn, "bag_label": prep.code}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "administered"
    assert nurse.post(f"/api/preparations/{prep.pk}/end-administration/").status_code == 200
    prep.refresh_from_db()
    assert prep.dose.status == "given"
    assert prep.administration_ended_at is not None


def test_beyond_use_time_for_two_categories(api_as, techs, cleared):
    """The clocks run from the first puncture (by default the start of preparation), not from recording."""
    preparer = api_as(techs[0])
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        preparer.post(f"/api/preparations/{cleared.pk}/start/")
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        payload = {"components": _components(), "category": "category_1", "storage": "room"}
        body = preparer.post(f"/api/preparations/{cleared.pk}/record/", payload, format="json").json()
    six_hours = (start + timedelta(hours=6)).isoformat().replace("+00:00", "Z")
    assert body["beyond_use_at"] == six_hours  # in-use stability
    assert body["infusion_end_by"] == six_hours  # pembrolizumab: to the end of the infusion
    now = start
    # Category 2, refrigerated: the drug's 96 h stability beats the 10-day category limit.
    from orders.bud import CompoundingCategory, Storage, beyond_use

    bud = beyond_use(prepared_at=now, category=CompoundingCategory.CATEGORY_2, storage=Storage.REFRIGERATED,
                     stability_room=timedelta(hours=6), stability_refrigerated=timedelta(hours=96))  # fmt: skip
    assert bud.at == now + timedelta(hours=96)
    bud = beyond_use(prepared_at=now, category=CompoundingCategory.CATEGORY_1, storage=Storage.REFRIGERATED,
                     stability_room=timedelta(hours=6), stability_refrigerated=timedelta(hours=96))  # fmt: skip
    assert bud.at == now + timedelta(hours=24)


def test_expired_and_soon_to_expire_vials_are_refused(api_as, techs, cleared):
    preparer = api_as(techs[0])
    preparer.post(f"/api/preparations/{cleared.pk}/start/")
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    response = _record(preparer, cleared, vial_expiry=yesterday)
    assert response.status_code == 400
    assert "expired" in response.json()["components[0].expiry"][0]
    response = _record(preparer, cleared, vial_expiry=TODAY.isoformat())  # before the BUD tomorrow
    assert response.status_code == 400
    assert "before the beyond-use time" in response.json()["components[0].expiry"][0]
    response = _record(preparer, cleared, diluent="Sterile water 50 mL")
    assert response.status_code == 400
    assert "may be diluted in" in response.json()["components[2].product"][0]
    cleared.refresh_from_db()
    assert cleared.status == PreparationStatus.IN_PREPARATION
    assert not cleared.components.exists()


def test_self_verification_and_wrong_password_are_refused(api_as, techs, cleared):
    _to_awaiting_verification(api_as, techs, cleared)
    response = _verify(api_as(techs[0]), cleared)
    assert response.status_code == 403
    assert "another technician" in response.json()["detail"]
    response = _verify(api_as(techs[1]), cleared, password="not-my-password")
    assert response.status_code == 403
    cleared.refresh_from_db()
    assert cleared.verified_by is None
    assert not api_as(techs[0]).get("/api/preparations/verification-queue/").json()["results"]
    assert [p["id"] for p in api_as(techs[1]).get("/api/preparations/verification-queue/").json()["results"]] == [
        cleared.pk
    ]


def test_failed_gravimetric_check_rejects_with_the_reason_and_allows_re_preparation(api_as, techs, cleared):
    _to_awaiting_verification(api_as, techs, cleared)
    response = _verify(api_as(techs[1]), cleared, measured="8.60")  # 7.5 % heavy
    assert response.json()["status"] == "rejected"
    assert "7.5 % off" in response.json()["rejection_reason"]
    assert api_as(techs[0]).post(f"/api/preparations/{cleared.pk}/start/").status_code == 200


ILLEGAL = {
    "ordered": ["record", "verify", "release", "administer", "end-administration"],
    "in_preparation": ["start", "verify", "release", "administer", "end-administration", "recalculate"],
    "awaiting_verification": ["start", "record", "administer", "end-administration", "release", "recalculate"],
    "released": ["start", "record", "verify", "release", "end-administration", "recalculate"],
    "administered": ["start", "record", "verify", "release", "administer", "waste", "recalculate"],
}


@pytest.mark.parametrize("state", list(ILLEGAL))
def test_every_illegal_transition_is_409_and_changes_nothing(api_as, techs, nurse_a, patient_a, cleared, state):
    prep = cleared
    preparer, verifier, nurse = api_as(techs[0]), api_as(techs[1]), api_as(nurse_a)
    steps = ["start", "record", "verify", "release", "administer"]
    done = {"ordered": 0, "in_preparation": 1, "awaiting_verification": 2, "released": 4, "administered": 5}[state]
    for step in steps[:done]:
        if step == "start":
            preparer.post(f"/api/preparations/{prep.pk}/start/")
        elif step == "record":
            _record(preparer, prep)
        elif step == "verify":
            _verify(verifier, prep)
        elif step == "release":
            verifier.post(f"/api/preparations/{prep.pk}/release/")
        else:
            nurse.post(f"/api/preparations/{prep.pk}/administer/", {"wristband": patient_a.mrn, "bag_label": prep.code})
    prep.refresh_from_db()
    assert prep.status == state
    before = Preparation.objects.filter(pk=prep.pk).values().get()
    payloads = {
        "record": {"components": _components(), "category": "category_1", "storage": "room"},
        "verify": {"password": "a-long-test-password", "method": "gravimetric", "measured": "8.0"},
        "administer": {"wristband": patient_a.mrn, "bag_label": prep.code},
        "waste": {"reason": "dropped"},
    }
    for action in ILLEGAL[state]:
        client = nurse if action in ("administer", "end-administration") else verifier
        if action in ("start", "record"):
            client = preparer
        response = client.post(f"/api/preparations/{prep.pk}/{action}/", payloads.get(action, {}), format="json")
        assert response.status_code == 409, (state, action, response.content)
    assert Preparation.objects.filter(pk=prep.pk).values().get() == before


def test_mismatching_scan_is_a_hard_stop_recorded_as_such(api_as, techs, nurse_a, patient_a, team_a, cleared):
    _to_awaiting_verification(api_as, techs, cleared)
    _verify(api_as(techs[1]), cleared)
    api_as(techs[1]).post(f"/api/preparations/{cleared.pk}/release/")
    other = factories.make_patient(team_a)
    nurse = api_as(nurse_a)
    response = nurse.post(
        f"/api/preparations/{cleared.pk}/administer/", {"wristband": other.mrn, "bag_label": cleared.code}
    )
    assert response.status_code == 409
    assert response.json()["matched"] is False
    assert "wristband does not match" in response.json()["note"]
    response = nurse.post(
        f"/api/preparations/{cleared.pk}/administer/", {"wristband": patient_a.mrn, "bag_label": "PRP-999999"}
    )
    assert response.status_code == 409
    assert "label does not match" in response.json()["note"]
    cleared.refresh_from_db()
    assert cleared.status == PreparationStatus.RELEASED
    checks = IdentityCheck.objects.filter(preparation=cleared).order_by("at", "id")
    assert [c.matched for c in checks] == [False, False]


def test_released_preparation_expires_past_its_bud_and_alerts_the_lab(api_as, techs, nurse_a, cleared):
    _to_awaiting_verification(api_as, techs, cleared)
    _verify(api_as(techs[1]), cleared)
    api_as(techs[1]).post(f"/api/preparations/{cleared.pk}/release/")
    cleared.refresh_from_db()
    assert preparations_expire(now=cleared.beyond_use_at - timedelta(seconds=1)) == []
    assert preparations_expire(now=cleared.beyond_use_at) == [cleared.pk]
    assert preparations_expire(now=cleared.beyond_use_at + timedelta(hours=1)) == []
    cleared.refresh_from_db()
    assert cleared.status == PreparationStatus.EXPIRED
    alert = Alert.objects.get(kind=AlertKind.PREPARATION_EXPIRED)
    assert alert.audience == AlertAudience.LAB
    assert api_as(techs[0]).get(f"/api/alerts/{alert.pk}/").status_code == 200
    assert api_as(nurse_a).get(f"/api/alerts/{alert.pk}/").status_code == 404
    assert live_preparation(cleared.dose).status == PreparationStatus.ORDERED  # a fresh order for the dose


def test_car_t_chain_of_identity_handoffs_stop_on_mismatch(api_as, oncologist_a, nurse_a, techs, patient_a):
    prep = car_t_ordered(patient_a, oncologist_a, nurse_a, techs)
    course = prep.dose.course
    client = api_as(techs[0])
    url = f"/api/courses/{course.pk}/handoff/"
    response = client.post(url, {"step": "shipment", "scanned": COI})
    assert response.status_code == 409  # collection first
    for step in ("collection", "shipment"):
        assert client.post(url, {"step": step, "scanned": COI}).status_code == 201
    receipt = {"coi_scanned": COI, "coa_cells": 140_000_000, "coa_bag_volume_ml": "68", "coa_lot": "YC-1"}
    assert client.post(f"/api/preparations/{prep.pk}/receive/", receipt, format="json").status_code == 200
    assert client.post(f"/api/preparations/{prep.pk}/start/").status_code == 200
    response = client.post(f"/api/preparations/{prep.pk}/thaw/", {"coi_scanned": "COI-2026-000999"})
    assert response.status_code == 409
    assert response.json()["matched"] is False
    assert "STOP" in response.json()["note"]
    assert client.post(f"/api/preparations/{prep.pk}/thaw/", {"coi_scanned": COI}).status_code == 200
    steps = list(IdentityCheck.objects.filter(course=course).values_list("step", "matched"))
    assert steps == [("collection", True), ("shipment", True), ("receipt", True), ("thaw", False), ("thaw", True)]
    prep.refresh_from_db()
    assert prep.dose_mg is None  # a cell product is dosed in cells, its volume is the certificate's
    assert prep.coa_bag_volume_ml == Decimal(68)
