"""Blinatumomab bag changes each with a BUD (issue 14): a continuous infusion ordered with the site's bag duration,
each bag its own preparation with its own beyond-use clocks, the step from 9 to 28 µg/day on day 8, bags refused
when their infusion would outlast the label's in-use time, and the next bag due when the running one ends."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone
from pypdf import PdfReader

from orders.choices import PreparationStatus
from orders.models import Drug, Preparation, PreparationComponent, Regimen
from orders.services.identity import preparation_administer
from tests import factories
from tests.orders.helpers import live_preparation, start_course

pytestmark = pytest.mark.django_db

H, D = timedelta(hours=1), timedelta(days=1)
CYCLE_1 = "Blinatumomab cycle 1 (R/R B-ALL, 45 kg or more): 9 then 28 µg/day, continuous"
NEXT_YEAR = (timezone.localdate() + timedelta(days=365)).isoformat()
DEX = {"premedication_classes": ["corticosteroid"], "premedication_note": "Dexamethasone 20 mg IV"}


def components(volume: str = "1.5") -> list[dict]:
    """A 48 h bag of cycle 1 step 1 holds 0.018 mg: 1.44 mL of 12.5 µg/mL, with the bag's overfill 1.5 mL."""
    return [
        {"kind": "vial", "product": "Blinatumomab 35 µg", "lot": "BL2611", "expiry": NEXT_YEAR, "volume_ml": volume},
        {"kind": "diluent", "product": "0.9% sodium chloride 250 mL", "lot": "NS77", "expiry": NEXT_YEAR,
         "volume_ml": "270"},
    ]  # fmt: skip


def order(api_as, oncologist, patient, bag_hours, in_hours=2):
    starts_at = timezone.now() + in_hours * H
    body = {"patient": patient.pk, "regimen": Regimen.objects.get(name=CYCLE_1).pk, "starts_at": starts_at.isoformat()}
    if bag_hours is not None:
        body["bag_hours"] = bag_hours
    return api_as(oncologist).post("/api/courses/", body, format="json")


def prepared(api_as, techs, prep, storage="refrigerated", volume="250.0"):
    """Started, recorded with the bag's volume, verified by the other technician against it, released."""
    preparer, verifier = api_as(techs[0]), api_as(techs[1])
    assert preparer.post(f"/api/preparations/{prep.pk}/start/").status_code == 200
    body = {"components": components(), "category": "category_2", "storage": storage, "bag_volume_ml": volume}
    recorded = preparer.post(f"/api/preparations/{prep.pk}/record/", body, format="json")
    assert recorded.status_code == 200, recorded.content
    check = {"password": "a-long-test-password", "method": "volumetric", "measured": volume}
    verified = verifier.post(f"/api/preparations/{prep.pk}/verify/", check, format="json")
    assert verified.status_code == 200, verified.content
    assert verified.json()["status"] == "awaiting_verification", verified.json()["rejection_reason"]
    assert verifier.post(f"/api/preparations/{prep.pk}/release/").json()["status"] == "released"
    return Preparation.objects.get(pk=prep.pk)


def hang(prep, nurse, at, **premedication):
    return preparation_administer(
        preparation=prep, wristband=prep.dose.course.patient.mrn, label=prep.code, user=nurse, now=at, **premedication
    )


def test_a_cycle_in_48_h_bags_steps_from_9_to_28_ug_a_day_on_day_8(api_as, oncologist_a, patient_a):
    response = order(api_as, oncologist_a, patient_a, 48)
    assert response.status_code == 201, response.content
    assert response.json()["bag_hours"] == 48
    course = patient_a.courses.get()
    doses = list(course.doses.order_by("number"))
    assert [d.bag_hours for d in doses] == [48, 48, 48, 24] + [48] * 10 + [24]
    assert [(d.planned_at - course.starts_at) / H for d in doses[:6]] == [0, 48, 96, 144, 168, 216]
    preps = [live_preparation(d) for d in doses]
    assert [p.dose_mg for p in preps[:6]] == [Decimal("0.018")] * 3 + [Decimal("0.009")] + [Decimal("0.056")] * 2
    assert preps[4].dose.planned_at == course.starts_at + 7 * D  # day 8: 28 µg/day from here
    assert [p.calculation["mg_per_day"] for p in preps[3:5]] == ["0.009", "0.028"]
    assert {p.volume_to_draw_ml for p in preps} == {None}  # the label's volume table is the preparer's
    api = api_as(oncologist_a).get(f"/api/doses/?course={course.pk}").json()
    rows = api["results"] if isinstance(api, dict) else api
    assert {(r["number"], r["bag_hours"], r["starts_step"]) for r in rows if r["number"] in (1, 2, 5)} == {
        (1, 48, True), (2, 48, False), (5, 48, True)
    }  # fmt: skip


def test_24_h_bags_give_28_ug_from_the_bag_of_day_8(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, CYCLE_1, bag_hours=24)
    doses = list(course.doses.order_by("number"))
    assert len(doses) == 28
    assert [live_preparation(d).dose_mg for d in doses[6:9]] == [Decimal("0.009"), Decimal("0.028"), Decimal("0.028")]
    assert doses[7].planned_at - course.starts_at == 7 * D


@pytest.mark.parametrize(
    ("bag_hours", "message"),
    [
        (None, "Choose the bag duration: 24 h, 48 h."),
        (72, "A 72 h bag is not one of this regimen's bag durations (24 h, 48 h)."),
        (96, "A 96 h bag is not one of this regimen's bag durations (24 h, 48 h)."),
    ],
)
def test_a_bag_duration_not_offered_is_a_400_naming_bag_hours(api_as, oncologist_a, patient_a, bag_hours, message):
    response = order(api_as, oncologist_a, patient_a, bag_hours)
    assert response.status_code == 400
    assert message in str(response.json()["bag_hours"])
    assert not patient_a.courses.exists()


def test_a_bag_longer_than_the_in_use_time_is_refused_when_ordered(api_as, oncologist_a, patient_a):
    # A site that offered 72 h bags without a preservative: the label's 48 h at room temperature includes the infusion.
    Regimen.objects.filter(name=CYCLE_1).update(bag_hours_allowed=[24, 48, 72])
    response = order(api_as, oncologist_a, patient_a, 72)
    assert response.status_code == 400
    assert "A 72 h bag would run past the label's in-use time of 48 h at room temperature" in str(response.json())


def test_a_regimen_of_doses_takes_no_bag_duration(oncologist_a, patient_a):
    with pytest.raises(ValidationError) as refused:
        start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w", bag_hours=24)
    assert "bag_hours" in refused.value.message_dict


def test_under_45_kg_the_regimen_is_refused_not_guessed(api_as, oncologist_a, team_a):
    child = factories.make_patient(team_a, weight_kg=Decimal("30.0"))
    response = order(api_as, oncologist_a, child, 24)
    assert response.status_code == 400
    assert "5 then 15 µg/m²/day" in str(response.json()["weight_kg"])


def test_bag_1_and_bag_2_each_their_own_preparation_and_bud_the_next_due_at_the_end(
    api_as, client, oncologist_a, nurse_a, technicians, patient_a
):
    order(api_as, oncologist_a, patient_a, 48, in_hours=3)
    course = patient_a.courses.get()
    bag_1, bag_2 = (live_preparation(course.doses.get(number=n)) for n in (1, 2))
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        bag_1 = prepared(api_as, technicians, bag_1)
    assert (bag_1.final_volume_ml, bag_1.dose_mg) == (Decimal("250.0"), Decimal("0.018"))
    # refrigerated, category 2: start by punctured + 8 days (the label's in-use time, below USP's 10 days), and the
    # label counts that time to the end of the infusion
    assert bag_1.beyond_use_at == bag_1.punctured_at + 8 * D
    assert bag_1.infusion_end_by == bag_1.punctured_at + 8 * D
    pdf = api_as(technicians[1]).get(f"/api/preparations/{bag_1.pk}/label/pdf/")
    assert pdf.status_code == 200
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "IV infusion over 48 h" in text
    assert "Dose 0.018 mg in 48 h" in text
    hung = start + 3 * H
    refused = hang(bag_1, nurse_a, hung)
    assert not refused.matched
    assert "premedication not recorded before step-up dose 1" in refused.check.note
    given = hang(bag_1, nurse_a, hung, premedication_given_at=hung - H, **DEX)
    assert given.matched, given.check.note
    bag_2.refresh_from_db()
    assert bag_2.dose.planned_at == hung + 48 * H  # no gap: due when bag 1 runs out
    client.force_login(nurse_a)
    ward = client.get("/orders/ward/").content.decode()
    assert 'data-testid="bag-change"' in ward
    assert f"bag 2 due <strong>{timezone.localtime(hung + 48 * H):%Y-%m-%d %H:%M}</strong>" in ward
    # bag 2: its own preparation, its own clocks from its own puncture, no premedication (not a step's first bag)
    with time_machine.travel(hung + 40 * H, tick=False):
        bag_2 = prepared(api_as, technicians, bag_2)
    assert bag_2.pk != bag_1.pk
    assert bag_2.beyond_use_at == bag_2.punctured_at + 8 * D != bag_1.beyond_use_at
    second = hang(bag_2, nurse_a, hung + 48 * H)
    assert second.matched, second.check.note
    bag_3 = course.doses.get(number=3)
    assert bag_3.planned_at == hung + 96 * H


def test_a_48_h_bag_kept_at_room_temperature_cannot_be_hung_after_its_clock_started(
    api_as, oncologist_a, nurse_a, technicians, patient_a
):
    order(api_as, oncologist_a, patient_a, 48, in_hours=3)
    bag = live_preparation(patient_a.courses.get().doses.get(number=1))
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        bag = prepared(api_as, technicians, bag, storage="room")
    assert bag.infusion_end_by == bag.punctured_at + 48 * H
    outcome = hang(bag, nurse_a, start + 3 * H, premedication_given_at=start + 2 * H, **DEX)
    assert not outcome.matched
    assert "the in-use stability, which includes the infusion, runs out then" in outcome.check.note
    assert Preparation.objects.get(pk=bag.pk).status == PreparationStatus.RELEASED


def test_a_bag_whose_infusion_would_outlast_its_stability_is_refused_when_recorded(api_as, oncologist_a, technicians,
                                                                                   patient_a):  # fmt: skip
    order(api_as, oncologist_a, patient_a, 48)
    bag = live_preparation(patient_a.courses.get().doses.get(number=1))
    # the label's in-use time changes after the course was ordered: 24 h at room temperature
    Drug.objects.filter(name="Blinatumomab").update(stability_room=24 * H, stability_refrigerated=24 * H)
    preparer = api_as(technicians[0])
    assert preparer.post(f"/api/preparations/{bag.pk}/start/").status_code == 200
    body = {"components": components(), "category": "category_2", "storage": "room", "bag_volume_ml": "250"}
    response = preparer.post(f"/api/preparations/{bag.pk}/record/", body, format="json")
    assert response.status_code == 400
    assert "A 48 h bag: even hung at once" in str(response.json()["storage"])
    assert Preparation.objects.get(pk=bag.pk).status == PreparationStatus.IN_PREPARATION


def test_a_bag_drawn_short_of_its_dose_is_refused_naming_the_components(api_as, oncologist_a, technicians, patient_a):
    order(api_as, oncologist_a, patient_a, 48)
    bag = live_preparation(patient_a.courses.get().doses.get(number=1))
    preparer = api_as(technicians[0])
    assert preparer.post(f"/api/preparations/{bag.pk}/start/").status_code == 200
    body = {"components": components("1.4"), "category": "category_2", "storage": "refrigerated",
            "bag_volume_ml": "250"}  # fmt: skip
    response = preparer.post(f"/api/preparations/{bag.pk}/record/", body, format="json")
    assert response.status_code == 400
    assert "Bag 1: 1.4 mL at 0.0125 mg/mL holds 0.0175 mg, less than the bag's dose of 0.018 mg." in str(
        response.json()["components"]
    )
    assert Preparation.objects.get(pk=bag.pk).status == PreparationStatus.IN_PREPARATION
    assert not PreparationComponent.objects.filter(preparation=bag).exists()


def test_a_bag_needs_its_volume_and_a_dose_of_another_regimen_takes_none(api_as, oncologist_a, technicians, patient_a):
    order(api_as, oncologist_a, patient_a, 24)
    bag = live_preparation(patient_a.courses.get().doses.get(number=1))
    preparer = api_as(technicians[0])
    assert preparer.post(f"/api/preparations/{bag.pk}/start/").status_code == 200
    body = {"components": components(), "category": "category_2", "storage": "refrigerated"}
    response = preparer.post(f"/api/preparations/{bag.pk}/record/", body, format="json")
    assert response.status_code == 400
    assert "Enter the bag's final volume (mL) from the label's table." in str(response.json()["bag_volume_ml"])


def test_the_worklist_and_prepare_pages_show_a_bag(client, oncologist_a, technicians, patient_a):
    course = start_course(patient_a, oncologist_a, CYCLE_1, in_hours=2, bag_hours=48)
    bag = live_preparation(course.doses.get(number=1))
    client.force_login(technicians[0])
    worklist = client.get("/orders/worklist/").content.decode()
    assert 'data-testid="bag"' in worklist
    assert "bag 1, 48 h" in worklist
    assert client.post(f"/orders/preparations/{bag.pk}/start/").status_code == 302
    page = client.get(f"/orders/preparations/{bag.pk}/prepare/").content.decode()
    assert 'data-testid="bag-volume"' in page
    assert "Bag 1: 0.018 mg (0.009 mg/day) over 48 h" in page
    form = {"category": "category_2", "storage": "refrigerated", "kind-1": "diluent", "product-0": "Blinatumomab 35 µg",
            "lot-0": "BL1", "expiry-0": NEXT_YEAR, "volume-0": "1.5", "product-1": "0.9% sodium chloride 250 mL",
            "lot-1": "NS1", "expiry-1": NEXT_YEAR, "volume-1": "270"}  # fmt: skip
    missing = client.post(f"/orders/preparations/{bag.pk}/prepare/", form)
    assert missing.status_code == 400
    assert "from the label&#x27;s table" in missing.content.decode()
    done = client.post(f"/orders/preparations/{bag.pk}/prepare/", {**form, "bag_volume_ml": "250"})
    assert done.status_code == 302
    assert Preparation.objects.get(pk=bag.pk).final_volume_ml == Decimal("250.0")


def test_the_course_form_takes_the_bag_duration(client, oncologist_a, patient_a):
    client.force_login(oncologist_a)
    starts = f"{timezone.localtime(timezone.now() + D):%Y-%m-%dT09:00}"
    regimen = Regimen.objects.get(name=CYCLE_1).pk
    refused = client.post(f"/orders/patients/{patient_a.pk}/new-course/", {"regimen": regimen, "starts_at": starts})
    assert refused.status_code == 400
    assert "Choose the bag duration: 24 h, 48 h." in refused.content.decode()
    made = client.post(
        f"/orders/patients/{patient_a.pk}/new-course/", {"regimen": regimen, "starts_at": starts, "bag_hours": "24"}
    )
    assert made.status_code == 302
    assert patient_a.courses.get().doses.count() == 28


def test_widening_the_strength_column_leaves_other_drugs_records_as_they_were(oncologist_a, patient_a):
    # Drug.strength_mg_per_ml keeps 4 places for blinatumomab's 0.0125 mg/mL; pembrolizumab still reads 25.000.
    prep = live_preparation(start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w").doses.get(number=1))
    assert prep.calculation["strength_mg_per_ml"] == "25.000"
    assert Drug.objects.get(name="Blinatumomab").strength_mg_per_ml == Decimal("0.0125")
