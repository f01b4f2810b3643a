"""The bedside: beyond-use time from the first puncture with both clocks, premedication, the dose gate
re-checked, and the CAR-T chain of identity enforced (every hand-off in order, thaw window, tocilizumab on hand).
Times are explicit: "09:00" is base_time()."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from orders.cells import rescue_medication_confirm
from orders.choices import CoiStep, DoseStatus, GateCheckPurpose, PreparationStatus
from orders.models import Drug, GateCheck, IdentityCheck, Preparation
from orders.selectors import use_by
from orders.services.identity import preparation_administer
from orders.services.preparations import preparation_record, preparation_start, preparations_expire
from results.models import Result
from results.services import result_amend, results_verify
from tests import factories
from tests.orders.cell_helpers import (
    COI,
    PEMBRO,
    H,
    M,
    base_time,
    car_t_released,
    cleared_preparation,
    pembro_components,
    pembro_released,
)

pytestmark = pytest.mark.django_db
PREMED = "Acetaminophen 650 mg PO, diphenhydramine 25 mg PO"


@pytest.fixture
def pembro(patient_a, oncologist_a, nurse_a, technicians):
    return cleared_preparation(patient_a, oncologist_a, nurse_a, technicians, PEMBRO)


def hhmm(moment):
    return f"{timezone.localtime(moment):%H:%M}"


def administer(prep, nurse, now, **kwargs):
    patient = prep.dose.course.patient
    values = {"wristband": patient.mrn, "label": prep.code, **kwargs}
    return preparation_administer(preparation=prep, user=nurse, now=now, **values)


def unchanged(prep):
    return Preparation.objects.filter(pk=prep.pk).values().get()


# --- Beyond-use time from the first puncture, both clocks ------------------------------------------------------


def test_bud_counts_from_the_first_puncture_not_from_recording(technicians, pembro):
    """Started 09:00, punctured 09:10, recorded 11:00: category 1 at room temperature, no shorter in-use
    stability -> start administration by 21:10."""
    Drug.objects.filter(name="Pembrolizumab").update(stability_room=None, in_use_includes_infusion=False)
    t0 = base_time()
    preparation_start(preparation=pembro, user=technicians[0], now=t0)
    prep = preparation_record(
        preparation=pembro, components=pembro_components(t0.date() + timedelta(days=365)), category="category_1",
        storage="room", user=technicians[0], now=t0 + 2 * H, punctured_at=t0 + 10 * M,
    )  # fmt: skip
    assert prep.punctured_at == t0 + 10 * M
    assert prep.beyond_use_at == t0 + 12 * H + 10 * M  # 21:10, not 23:00
    assert prep.infusion_end_by is None


def test_pembrolizumab_in_use_time_runs_to_the_end_of_the_infusion(technicians, pembro):
    """Pembrolizumab at room temperature: 6 h from puncture to the END of the infusion -> 15:10."""
    Drug.objects.filter(name="Pembrolizumab").update(stability_room=6 * H, in_use_includes_infusion=True)
    t0 = base_time()
    prep = pembro_released(pembro, technicians, t0)
    assert prep.infusion_end_by == t0 + 6 * H + 10 * M
    assert prep.beyond_use_at == t0 + 6 * H + 10 * M
    assert "end within 6 h" in prep.beyond_use_note


def test_default_puncture_is_the_start_and_a_puncture_outside_start_and_now_is_refused(api_as, technicians, pembro):
    t0 = base_time()
    preparation_start(preparation=pembro, user=technicians[0], now=t0)
    expiry = t0.date() + timedelta(days=365)
    for punctured_at in (t0 - M, t0 + 2 * H + M):
        with pytest.raises(ValidationError) as error:
            preparation_record(preparation=pembro, components=pembro_components(expiry), category="category_1",
                               storage="room", user=technicians[0], now=t0 + 2 * H,
                               punctured_at=punctured_at)  # fmt: skip
        assert "punctured_at" in error.value.message_dict
    with time_machine.travel(t0 + 2 * H, tick=False):
        payload = {
            "components": [
                {"kind": c.kind, "product": c.product, "lot": c.lot, "expiry": c.expiry.isoformat(),
                 "volume_ml": str(c.volume_ml)} for c in pembro_components(expiry)
            ],
            "category": "category_1", "storage": "room", "punctured_at": "not a time",
        }  # fmt: skip
        response = api_as(technicians[0]).post(f"/api/preparations/{pembro.pk}/record/", payload, format="json")
        assert response.status_code == 400
        assert "punctured_at" in response.json()
        del payload["punctured_at"]
        response = api_as(technicians[0]).post(f"/api/preparations/{pembro.pk}/record/", payload, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["punctured_at"] == t0.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_an_infusion_that_would_end_after_the_in_use_limit_is_refused(technicians, nurse_a, pembro):
    """In use until 15:10: a 30-min infusion at 14:50 would end 15:20 -> refused with the times; at 14:30 it
    is given."""
    Drug.objects.filter(name="Pembrolizumab").update(stability_room=6 * H, in_use_includes_infusion=True)
    t0 = base_time()
    prep = pembro_released(pembro, technicians, t0)
    before = unchanged(prep)
    late = t0 + 5 * H + 50 * M
    outcome = administer(prep, nurse_a, late)
    assert not outcome.matched
    note = outcome.check.note
    assert note.startswith("STOP: ")
    assert f"ends at {hhmm(late + 30 * M)}" in note
    assert f"after {hhmm(t0 + 6 * H + 10 * M)}" in note
    assert unchanged(prep) == before
    outcome = administer(prep, nurse_a, t0 + 5 * H + 30 * M)
    assert outcome.matched, outcome.check.note
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.ADMINISTERED
    assert prep.dose.status == DoseStatus.GIVEN
    assert GateCheck.objects.filter(dose=prep.dose, purpose=GateCheckPurpose.ADMINISTER).count() == 1


def test_starting_after_the_beyond_use_time_is_refused(technicians, nurse_a, pembro):
    t0 = base_time()
    prep = pembro_released(pembro, technicians, t0, storage="refrigerated")  # start by 24 h, end by 96 h
    assert prep.beyond_use_at is not None
    outcome = administer(prep, nurse_a, prep.beyond_use_at + M)
    assert not outcome.matched
    assert "after the beyond-use time" in outcome.check.note


def test_released_preparations_expire_at_the_earlier_clock(technicians, pembro):
    t0 = base_time()
    prep = pembro_released(pembro, technicians, t0)
    end = use_by(prep)
    assert end is not None
    assert end == min(t for t in (prep.beyond_use_at, prep.infusion_end_by) if t is not None)
    assert preparations_expire(now=end - timedelta(seconds=1)) == []
    assert preparations_expire(now=end) == [prep.pk]


# --- Premedication and the dose gate ---------------------------------------------------------------------------


def test_premedication_must_be_recorded_within_four_hours_before(api_as, technicians, nurse_a, pembro):
    Drug.objects.filter(name="Pembrolizumab").update(premedication="Acetaminophen 650 mg PO")
    t0 = base_time()
    prep = pembro_released(pembro, technicians, t0)
    now = t0 + 3 * H
    outcome = administer(prep, nurse_a, now)
    assert not outcome.matched
    assert "premedication not recorded (Acetaminophen 650 mg PO)" in outcome.check.note
    outcome = administer(prep, nurse_a, now, premedication_given_at=now - 4 * H - M, premedication_note=PREMED)
    assert "more than 4 h before" in outcome.check.note
    outcome = administer(prep, nurse_a, now, premedication_given_at=now - H)
    assert "premedication note missing" in outcome.check.note
    with pytest.raises(ValidationError) as error:
        administer(prep, nurse_a, now, premedication_given_at=now + M, premedication_note=PREMED)
    assert "premedication_given_at" in error.value.message_dict
    assert IdentityCheck.objects.filter(preparation=prep, matched=False).count() == 3
    outcome = administer(prep, nurse_a, now, premedication_given_at=now - H, premedication_note=PREMED)
    assert outcome.matched, outcome.check.note
    prep.refresh_from_db()
    assert (prep.premedication_given_at, prep.premedication_note) == (now - H, PREMED)


def test_premedication_in_the_future_is_a_400_naming_the_field(api_as, technicians, nurse_a, pembro):
    prep = pembro_released(pembro, technicians, base_time() - 3 * H)
    future = (timezone.now() + H).isoformat()
    response = api_as(nurse_a).post(f"/api/preparations/{prep.pk}/administer/", {
        "wristband": prep.dose.course.patient.mrn, "bag_label": prep.code, "premedication_given_at": future,
        "premedication_note": PREMED,
    })  # fmt: skip
    assert response.status_code == 400
    assert "premedication_given_at" in response.json()


def test_a_result_verified_after_release_stops_the_dose_at_the_bedside(technicians, nurse_a, pembro):
    t0 = base_time()
    prep = pembro_released(pembro, technicians, t0)
    alt = Result.objects.get(patient=prep.dose.course.patient, lab_test__name="ALT", is_current=True)
    amended = result_amend(result=alt, value="200", unit="U/L", reason="Re-run: haemolysis ruled out",
                           user=technicians[1], now=t0 + 2 * H + 20 * M)  # fmt: skip
    results_verify(results=[amended], user=technicians[0], now=t0 + 2 * H + 25 * M)
    before = unchanged(prep)
    outcome = administer(prep, nurse_a, t0 + 2 * H + 30 * M)
    assert not outcome.matched
    assert "the dose gate is now withheld: ALT 200 U/L" in outcome.check.note
    assert unchanged(prep) == before
    assert not GateCheck.objects.filter(dose=prep.dose, purpose=GateCheckPurpose.ADMINISTER).exists()


# --- CAR-T: chain of identity at the bedside -------------------------------------------------------------------


def _car_t_administer(prep, nurse, now, **kwargs):
    values = {"coi_label": COI, "premedication_given_at": now - H, "premedication_note": PREMED, **kwargs}
    return administer(prep, nurse, now, **values)


def test_car_t_infusion_is_given_when_every_check_holds(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    outcome = _car_t_administer(prep, nurse_a, thawed + H)
    assert outcome.matched, outcome.check.note
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.ADMINISTERED
    assert COI in outcome.check.note  # the COI label scanned is kept with the check
    steps = list(IdentityCheck.objects.filter(course=prep.dose.course).values_list("step", flat=True))
    assert steps == ["collection", "shipment", "receipt", "thaw", "bedside"]


@pytest.mark.parametrize(
    ("coi_label", "reason"),
    [("", "chain-of-identity label was not scanned"), ("COI-2026-000999", "does not match this patient's product")],
)
def test_car_t_infusion_stops_without_or_with_a_mismatching_coi_scan(technicians, nurse_a, car_t, coi_label, reason):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    before = unchanged(prep)
    outcome = _car_t_administer(prep, nurse_a, thawed + H, coi_label=coi_label)
    assert not outcome.matched
    assert outcome.check.step == CoiStep.BEDSIDE
    assert outcome.check.note.startswith("STOP: ")
    assert reason in outcome.check.note
    assert unchanged(prep) == before


def test_car_t_infusion_stops_when_the_wristband_is_another_patients(technicians, nurse_a, car_t, team_a):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    other = factories.make_patient(team_a)
    outcome = _car_t_administer(prep, nurse_a, thawed + H, wristband=other.mrn)
    assert "wristband does not match the patient" in outcome.check.note


def test_car_t_infusion_stops_when_thawed_more_than_three_hours_before_its_end(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    outcome = _car_t_administer(prep, nurse_a, thawed + 2 * H + 31 * M)  # would end 3 h 1 min after the thaw
    assert not outcome.matched
    assert f"thawed at {hhmm(thawed)}" in outcome.check.note
    assert "3 h thaw-to-infusion limit" in outcome.check.note
    outcome = _car_t_administer(prep, nurse_a, thawed + 2 * H + 30 * M)  # ends exactly at 3 h
    assert outcome.matched, outcome.check.note


@pytest.mark.parametrize(("doses", "reason"), [
    (None, "Tocilizumab not confirmed on hand by pharmacy (2 doses required)"),
    (1, "only 1 dose(s) of Tocilizumab confirmed on hand, 2 required"),
    (0, "only 0 dose(s) of Tocilizumab"),
])  # fmt: skip
def test_car_t_infusion_stops_without_two_doses_of_tocilizumab_on_hand(technicians, nurse_a, car_t, doses, reason):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed, rescue_doses=doses)
    outcome = _car_t_administer(prep, nurse_a, thawed + H)
    assert not outcome.matched
    assert reason in outcome.check.note
    rescue_medication_confirm(course=prep.dose.course, doses_on_hand=2, user=technicians[1], now=thawed + H + M)
    assert _car_t_administer(prep, nurse_a, thawed + H + 2 * M).matched  # the latest confirmation counts


def _released_by_hand(prep, technicians, thawed, steps):
    """A released CAR-T bag whose hand-offs are exactly `steps` (step, minutes after the thaw): the services
    would not record them so, the bedside must catch it all the same."""
    course = prep.dose.course
    for step, minutes in steps:
        IdentityCheck.objects.create(
            course=course, preparation=prep if step in ("receipt", "thaw") else None, step=step,
            at=thawed + minutes * M, by=technicians[0], scanned_label=COI, matched=True,
        )  # fmt: skip
    Preparation.objects.filter(pk=prep.pk).update(
        status=PreparationStatus.RELEASED, prepared_by=technicians[0], started_at=thawed - 5 * M, ended_at=thawed,
        punctured_at=thawed, coa_cells=140_000_000, coa_bag_volume_ml=Decimal(68), coa_lot="YC-7781",
        coa_recorded_by=technicians[0], coa_recorded_at=thawed - 2 * 24 * H, beyond_use_at=thawed + 3 * H,
        infusion_end_by=thawed + 3 * H, verified_by=technicians[1], verified_at=thawed + 10 * M,
        verification_method="cell_product", bag_intact=True, released_by=technicians[1], released_at=thawed + 15 * M,
    )  # fmt: skip
    rescue_medication_confirm(course=course, doses_on_hand=2, user=technicians[1], now=thawed + 20 * M)
    prep.refresh_from_db()
    return prep


def test_car_t_infusion_stops_with_a_handoff_missing(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = _released_by_hand(
        car_t, technicians, thawed, [("collection", -60 * 24 * 30), ("receipt", -60 * 48), ("thaw", 0)]
    )
    outcome = _car_t_administer(prep, nurse_a, thawed + H)
    assert not outcome.matched
    assert "hand-off not recorded: shipment to manufacturer" in outcome.check.note


def test_car_t_infusion_stops_with_handoffs_out_of_order(technicians, nurse_a, car_t):
    thawed = base_time()
    steps = [("collection", -60 * 24 * 30), ("shipment", -60 * 24 * 29), ("receipt", 5), ("thaw", 0)]
    prep = _released_by_hand(car_t, technicians, thawed, steps)
    outcome = _car_t_administer(prep, nurse_a, thawed + H)
    assert "not recorded in order" in outcome.check.note


def test_every_problem_is_listed_and_the_api_answers_409(api_as, technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed, rescue_doses=None)
    before = unchanged(prep)
    with time_machine.travel(thawed + 3 * H, tick=False):  # logged in then: idle sessions end after 15 min
        response = api_as(nurse_a).post(f"/api/preparations/{prep.pk}/administer/", {
            "wristband": prep.dose.course.patient.mrn, "bag_label": prep.code, "coi_label": "COI-2026-000999",
        })  # fmt: skip
    assert response.status_code == 409
    body = response.json()
    assert body["matched"] is False
    assert body["step"] == "bedside"
    for reason in ("does not match this patient's product", "thaw-to-infusion limit", "premedication not recorded",
                   "Tocilizumab not confirmed"):  # fmt: skip
        assert reason in body["note"]
    assert unchanged(prep) == before


def test_car_t_given_through_the_api_and_the_end_of_infusion_recorded(api_as, technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    with time_machine.travel(thawed + H, tick=False):
        nurse = api_as(nurse_a)  # logged in at the bedside time (sessions end after 15 idle minutes)
        response = nurse.post(f"/api/preparations/{prep.pk}/administer/", {
            "wristband": prep.dose.course.patient.mrn, "bag_label": prep.code, "coi_label": COI,
            "premedication_given_at": (thawed + 5 * M).isoformat(), "premedication_note": PREMED,
        })  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "administered"
    with time_machine.travel(thawed + H + 30 * M, tick=False):
        response = api_as(nurse_a).post(f"/api/preparations/{prep.pk}/end-administration/")
    assert response.status_code == 200
    assert response.json()["administration_ended_at"] is not None


# --- The bedside page --------------------------------------------------------------------------------------------


def _logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_bedside_page_for_a_car_t_bag_asks_for_coi_and_premedication_and_stops(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    url = f"/orders/preparations/{prep.pk}/administer/"
    with time_machine.travel(thawed + H, tick=False):
        client = _logged_in(nurse_a)  # at the bedside time: idle sessions end after 15 min
        page = client.get(url).content.decode()
        for field in ('name="coi_label"', 'name="premedication_given_at"', 'name="premedication_note"', "Tocilizumab"):
            assert field in page
        response = client.post(url, {"wristband": prep.dose.course.patient.mrn, "label": prep.code,
                                     "coi_label": "COI-2026-000999"})  # fmt: skip
    assert response.status_code == 409
    assert "STOP: the bag&#x27;s chain-of-identity label COI-2026-000999 does not match" in response.content.decode()
    local = timezone.localtime(thawed + 5 * M).strftime("%Y-%m-%dT%H:%M")
    with time_machine.travel(thawed + H, tick=False):
        client = _logged_in(nurse_a)
        response = client.post(url, {"wristband": prep.dose.course.patient.mrn, "label": prep.code, "coi_label": COI,
                                     "premedication_given_at": local, "premedication_note": PREMED},
                               follow=True)  # fmt: skip
    assert response.redirect_chain == [(url, 302)]
    page = response.content.decode()
    assert "Match: administration of" in page
    assert 'data-testid="end-infusion"' in page
    with time_machine.travel(thawed + 2 * H, tick=False):
        client = _logged_in(nurse_a)
        response = client.post(url, {"step": "end"}, follow=True)
    assert "End of infusion" in response.content.decode()
    assert "ended " in response.content.decode()


def test_prepare_and_verify_pages_of_a_car_t_bag(client, technicians, car_t):
    client.force_login(technicians[0])
    page = client.get(f"/orders/preparations/{car_t.pk}/prepare/").content.decode()
    assert 'name="coa_cells"' in page
    assert 'name="product-0"' not in page
    response = client.post(f"/orders/preparations/{car_t.pk}/prepare/", {
        "step": "receive", "coi_scanned": COI, "coa_cells": "140000000", "coa_bag_volume_ml": "68", "coa_lot": "L1",
    })  # fmt: skip
    assert response.status_code == 409  # collection and shipment first
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    Preparation.objects.filter(pk=prep.pk).update(status=PreparationStatus.AWAITING_VERIFICATION, verified_at=None,
                                                  verified_by=None)  # fmt: skip
    client.force_login(technicians[1])
    page = client.get(f"/orders/preparations/{prep.pk}/verify/").content.decode()
    assert 'name="coi_label"' in page
    assert 'name="bag_intact"' in page
    assert 'name="measured"' not in page
