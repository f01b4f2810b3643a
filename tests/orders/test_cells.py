"""Cell products: dosed in cells, received with the certificate of analysis, thawed, verified by the bag's
identity, integrity and thaw time; rescue medication confirmed by pharmacy; the label."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from pypdf import PdfReader

from orders.cells import cell_product_receive, cell_product_thaw, rescue_medication_confirm
from orders.choices import CoiStep, PreparationStatus
from orders.models import IdentityCheck, Preparation, RescueMedicationCheck
from orders.services.errors import OrderConflict
from orders.services.identity import chain_of_identity_handoff
from orders.services.preparations import preparation_start, preparation_verify
from tests import factories
from tests.labelcheck import zpl_fields
from tests.orders.cell_helpers import (
    COI,
    PASSWORD,
    PEMBRO,
    H,
    M,
    base_time,
    car_t_received,
    cleared_preparation,
)

pytestmark = pytest.mark.django_db
TIMES = "\u00d7"


def _handoffs(prep, user, *steps):
    for step in steps:
        chain_of_identity_handoff(course=prep.dose.course, step=step, scanned=COI, user=user, now=base_time() - 9 * H)


RECEIPT = {"coi_scanned": COI, "coa_cells": 140_000_000, "coa_bag_volume_ml": "68.0", "coa_lot": "YC-7781"}


def test_a_car_t_order_is_in_cells_capped_at_the_maximum(car_t, patient_a):
    weight = patient_a.weight_kg
    assert car_t.dose_mg is None
    assert car_t.cells_target == min(int(2_000_000 * weight), 200_000_000)
    assert car_t.cells_max == 200_000_000


def test_receipt_needs_collection_and_shipment_first_and_writes_nothing_without(api_as, technicians, car_t):
    client = api_as(technicians[0])
    response = client.post(f"/api/preparations/{car_t.pk}/receive/", RECEIPT, format="json")
    assert response.status_code == 409
    assert "Leukapheresis collection" in response.json()["detail"]
    _handoffs(car_t, technicians[0], CoiStep.COLLECTION)
    response = client.post(f"/api/preparations/{car_t.pk}/receive/", RECEIPT, format="json")
    assert response.status_code == 409
    assert "Shipment" in response.json()["detail"]
    car_t.refresh_from_db()
    assert car_t.coa_cells is None
    assert not IdentityCheck.objects.filter(step=CoiStep.RECEIPT).exists()


def test_receipt_records_the_certificate_and_the_receipt_handoff(api_as, technicians, car_t):
    _handoffs(car_t, technicians[0], CoiStep.COLLECTION, CoiStep.SHIPMENT)
    response = api_as(technicians[0]).post(f"/api/preparations/{car_t.pk}/receive/", RECEIPT, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["coa_cells"], body["coa_bag_volume_ml"], body["coa_lot"]) == (140_000_000, "68.0", "YC-7781")
    assert body["coa_recorded_by"] == technicians[0].pk
    assert body["volume_to_draw_ml"] is None  # no mg, no volume to draw
    receipt = IdentityCheck.objects.get(step=CoiStep.RECEIPT)
    assert (receipt.preparation_id, receipt.matched) == (car_t.pk, True)


def test_receipt_of_a_mismatching_bag_is_recorded_and_stops(api_as, technicians, car_t):
    _handoffs(car_t, technicians[0], CoiStep.COLLECTION, CoiStep.SHIPMENT)
    payload = {**RECEIPT, "coi_scanned": "COI-2026-000999"}
    response = api_as(technicians[0]).post(f"/api/preparations/{car_t.pk}/receive/", payload, format="json")
    assert response.status_code == 409
    assert response.json()["matched"] is False
    assert "STOP" in response.json()["note"]
    car_t.refresh_from_db()
    assert car_t.coa_cells is None
    assert car_t.coa_recorded_at is None


@pytest.mark.parametrize("cells", [200_000_001, 250_000_000])
def test_a_certificate_above_the_maximum_is_refused_and_nothing_is_written(api_as, technicians, car_t, cells):
    _handoffs(car_t, technicians[0], CoiStep.COLLECTION, CoiStep.SHIPMENT)
    payload = {**RECEIPT, "coa_cells": cells}
    response = api_as(technicians[0]).post(f"/api/preparations/{car_t.pk}/receive/", payload, format="json")
    assert response.status_code == 400
    assert f"above the maximum of 2 {TIMES} 10⁸" in response.json()["coa_cells"][0]
    car_t.refresh_from_db()
    assert car_t.coa_cells is None
    assert not IdentityCheck.objects.filter(step=CoiStep.RECEIPT).exists()  # the hand-off is undone too


def test_a_certificate_below_a_flat_minimum_is_refused(technicians, car_t):
    Preparation.objects.filter(pk=car_t.pk).update(cells_min=100_000_000)
    _handoffs(car_t, technicians[0], CoiStep.COLLECTION, CoiStep.SHIPMENT)
    with pytest.raises(ValidationError) as error:
        cell_product_receive(preparation=car_t, coi_scanned=COI, coa_cells=99_999_999,
                             coa_bag_volume_ml=Decimal(68), coa_lot="L1", user=technicians[0],
                             now=base_time())  # fmt: skip
    assert "below the minimum" in error.value.message_dict["coa_cells"][0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("coa_cells", 0), ("coa_cells", "many"), ("coa_bag_volume_ml", "0"), ("coa_bag_volume_ml", "1001"),
     ("coa_lot", ""), ("coi_scanned", "")],
)  # fmt: skip
def test_receipt_fields_are_validated_by_name(api_as, technicians, car_t, field, value):
    response = api_as(technicians[0]).post(
        f"/api/preparations/{car_t.pk}/receive/", {**RECEIPT, field: value}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_vials_cannot_be_recorded_for_a_cell_product(api_as, technicians, car_t):
    client = api_as(technicians[0])
    assert client.post(f"/api/preparations/{car_t.pk}/start/").status_code == 200
    payload = {"components": [{"kind": "vial", "product": "Axicabtagene ciloleucel", "lot": "L", "expiry": "2099-01-01",
                               "volume_ml": "68"}], "category": "category_1", "storage": "room"}  # fmt: skip
    response = client.post(f"/api/preparations/{car_t.pk}/record/", payload, format="json")
    assert response.status_code == 409
    assert "receipt" in response.json()["detail"]


def test_thaw_is_the_record_step_and_starts_the_three_hour_clock(api_as, technicians, car_t):
    t0 = base_time()
    car_t_received(car_t, technicians[0], t0)
    client = api_as(technicians[0])
    with time_machine.travel(t0 - 5 * M, tick=False):
        assert client.post(f"/api/preparations/{car_t.pk}/start/").status_code == 200
    with time_machine.travel(t0, tick=False):
        response = client.post(f"/api/preparations/{car_t.pk}/thaw/", {"coi_scanned": "COI-2026-000999"})
        assert response.status_code == 409  # a mismatching bag: recorded, not thawed
        response = client.post(f"/api/preparations/{car_t.pk}/thaw/", {"coi_scanned": COI})
    assert response.status_code == 200, response.content
    car_t.refresh_from_db()
    assert car_t.status == PreparationStatus.AWAITING_VERIFICATION
    assert car_t.beyond_use_at == car_t.infusion_end_by == t0 + 3 * H
    thaws = IdentityCheck.objects.filter(step=CoiStep.THAW).order_by("id")
    assert [(c.matched, c.preparation_id) for c in thaws] == [(False, car_t.pk), (True, car_t.pk)]


def test_thaw_time_must_lie_between_the_start_and_now(technicians, car_t):
    t0 = base_time()
    car_t_received(car_t, technicians[0], t0)
    preparation_start(preparation=car_t, user=technicians[0], now=t0)
    for thawed_at in (t0 - M, t0 + 2 * M):
        with pytest.raises(ValidationError) as error:
            cell_product_thaw(preparation=car_t, coi_scanned=COI, user=technicians[0], now=t0 + M, thawed_at=thawed_at)
        assert "thawed_at" in error.value.message_dict


def _thawed(car_t, technicians, t0):
    car_t_received(car_t, technicians[0], t0)
    preparation_start(preparation=car_t, user=technicians[0], now=t0 - 5 * M)
    cell_product_thaw(preparation=car_t, coi_scanned=COI, user=technicians[0], now=t0)
    return car_t


def _verify(prep, tech, now, **kwargs):
    return preparation_verify(
        preparation=prep, user=tech, password=PASSWORD, request=factories.signing_request(), method="cell_product",
        now=now, **kwargs,
    )  # fmt: skip


def test_cell_verification_checks_identity_integrity_and_thaw_time(api_as, technicians, car_t):
    t0 = base_time()
    _thawed(car_t, technicians, t0)
    checker = api_as(technicians[1])
    url = f"/api/preparations/{car_t.pk}/verify/"
    response = checker.post(url, {"password": PASSWORD, "method": "cell_product", "bag_intact": True})
    assert response.status_code == 400
    assert "coi_label" in response.json()
    response = checker.post(url, {"password": PASSWORD, "method": "cell_product", "coi_label": COI})
    assert response.status_code == 400
    assert "bag_intact" in response.json()
    response = checker.post(url, {"password": PASSWORD, "method": "gravimetric", "measured": "68"})
    assert response.status_code == 400
    assert "method" in response.json()
    prep = _verify(car_t, technicians[1], t0 + 10 * M, coi_label=COI, bag_intact=False)
    assert prep.status == PreparationStatus.REJECTED
    assert "not intact" in prep.rejection_reason


def test_cell_verification_rejects_a_bag_of_another_patient_or_past_the_thaw_limit(technicians, car_t):
    t0 = base_time()
    _thawed(car_t, technicians, t0)
    prep = _verify(car_t, technicians[1], t0 + 3 * H + M, coi_label="COI-2026-000999", bag_intact=True)
    assert prep.status == PreparationStatus.REJECTED
    assert "does not match" in prep.rejection_reason
    assert "has passed" in prep.rejection_reason
    assert prep.verified_by == technicians[1]


def test_cell_verification_passes_and_the_label_shows_cells_and_coi(api_as, technicians, car_t, patient_a):
    t0 = base_time()
    _thawed(car_t, technicians, t0)
    with time_machine.travel(t0 + 10 * M, tick=False):
        response = api_as(technicians[1]).post(
            f"/api/preparations/{car_t.pk}/verify/",
            {"password": PASSWORD, "method": "cell_product", "coi_label": COI, "bag_intact": True},
        )
    assert response.status_code == 200, response.content
    assert response.json()["bag_intact"] is True
    assert response.json()["verification_method"] == "cell_product"
    pdf = api_as(technicians[1]).get(f"/api/preparations/{car_t.pk}/label/pdf/")
    assert pdf.status_code == 200
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    expected_lines = [
        f"COI {COI}", f"1.4 {TIMES} 10⁸ CAR+ viable T cells", "Bag 68 mL", "Do not use a leukodepleting filter",
        "Biosafety BSL-2", "Premedication", patient_a.mrn,
    ]  # fmt: skip
    for expected in expected_lines:
        assert expected in text, (expected, text)
    assert " mg" not in text.replace("650 mg", "").replace("12.5 mg", "")
    zpl = api_as(technicians[1]).get(f"/api/preparations/{car_t.pk}/label/zpl/").content.decode()
    assert f"1.4 {TIMES} 10^8 CAR+ viable T cells" in zpl_fields(zpl)


def test_rescue_medication_is_confirmed_by_pharmacy(api_as, technicians, nurse_a, car_t, patient_a, oncologist_a):
    url = f"/api/courses/{car_t.dose.course_id}/rescue-check/"
    assert api_as(nurse_a).post(url, {"doses_on_hand": 2}).status_code == 403
    response = api_as(technicians[1]).post(url, {"doses_on_hand": -1})
    assert response.status_code == 400
    assert "doses_on_hand" in response.json()
    response = api_as(technicians[1]).post(url, {"doses_on_hand": 2, "note": "2 x 8 mg/kg in the ward fridge"})
    assert response.status_code == 201, response.content
    assert response.json()["drug"] == "Tocilizumab"
    assert response.json()["confirmed_by"] == technicians[1].pk
    pembro = cleared_preparation(patient_a, oncologist_a, nurse_a, technicians, PEMBRO)
    with pytest.raises(ValidationError) as error:
        rescue_medication_confirm(course=pembro.dose.course, doses_on_hand=2, user=technicians[1], now=base_time())
    assert "course" in error.value.message_dict
    assert RescueMedicationCheck.objects.count() == 1


def test_receipt_thaw_and_bedside_are_not_bare_handoffs(api_as, technicians, car_t):
    url = f"/api/courses/{car_t.dose.course_id}/handoff/"
    client = api_as(technicians[0])
    for step in ("collection", "shipment"):
        assert client.post(url, {"step": step, "scanned": COI}).status_code == 201
    for step in ("receipt", "thaw", "bedside"):
        response = client.post(url, {"step": step, "scanned": COI})
        assert response.status_code == 400
        assert "step" in response.json()


def test_receipt_is_recorded_once(technicians, car_t):
    car_t_received(car_t, technicians[0], base_time())
    with pytest.raises(OrderConflict):
        cell_product_receive(preparation=car_t, coi_scanned=COI, coa_cells=1, coa_bag_volume_ml=Decimal(1),
                             coa_lot="x", user=technicians[0], now=base_time())  # fmt: skip
    assert IdentityCheck.objects.filter(step=CoiStep.RECEIPT).count() == 1
