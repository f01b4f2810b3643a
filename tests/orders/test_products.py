"""CAR-T products beyond axi-cel, sipuleucel-T, talimogene laherparepvec and the hazardous lymphodepleting
chemotherapy, through the services and the API (docs/clinical-sources.md §11)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from orders.cells import cell_product_receive, cell_product_thaw
from orders.choices import CoiStep, ComponentKind, PreparationStatus
from orders.labelling import preparation_label
from orders.labels import label_pdf
from orders.models import ExposureReport, MonitoringRule, Preparation, Regimen
from orders.services.errors import OrderConflict
from orders.services.identity import chain_of_identity_handoff, preparation_administer
from orders.services.preparations import (
    ComponentInput,
    preparation_record,
    preparation_release,
    preparation_start,
    preparation_verify,
)
from orders.services.products import (
    fresh_product_collect,
    fresh_product_receive,
    preparer_exclusion_confirm,
    virus_thaw,
)
from patients.models import Patient
from tests.factories import signing_request
from tests.labelcheck import pdf_text
from tests.orders.cell_helpers import PASSWORD, H, M, base_time, cleared_preparation
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

D = Decimal
SIPULEUCEL = "Sipuleucel-T 3 doses q2w"
TVEC = "Talimogene laherparepvec intralesional"
FLUDARABINE = "Fludarabine 30 mg/m² daily x3 (lymphodepletion)"


def _weigh(patient, kg: str) -> None:
    Patient.objects.filter(pk=patient.pk).update(weight_kg=D(kg))
    patient.refresh_from_db()


# --- Cell doses of the seeded CAR-T products ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("regimen", "kg", "target", "low", "high"),
    [
        ("Tisagenlecleucel single infusion (adult LBCL)", "70", None, 60_000_000, 600_000_000),
        ("Lisocabtagene maraleucel single infusion (LBCL)", "70", None, 50_000_000, 110_000_000),
        ("Brexucabtagene autoleucel single infusion (MCL)", "70", 140_000_000, None, 200_000_000),
        ("Brexucabtagene autoleucel single infusion (MCL)", "120", 200_000_000, None, 200_000_000),
        ("Idecabtagene vicleucel single infusion (MM)", "70", None, 300_000_000, 510_000_000),
        ("Ciltacabtagene autoleucel single infusion (MM)", "70", 70_000_000, 35_000_000, 100_000_000),
        ("Ciltacabtagene autoleucel single infusion (MM)", "120", 100_000_000, 60_000_000, 100_000_000),
    ],
)
def test_seeded_car_t_cell_dose_for_a_weight(patient_a, oncologist_a, regimen, kg, target, low, high):
    _weigh(patient_a, kg)
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, regimen, chain_of_identity="COI-9")))
    assert (prep.cells_target, prep.cells_min, prep.cells_max) == (target, low, high)
    assert Regimen.objects.get(name=regimen).source  # every seeded row names its label


@pytest.mark.parametrize(
    ("regimen", "outside"),
    [
        ("Tisagenlecleucel single infusion (adult LBCL)", 59_000_000),
        ("Lisocabtagene maraleucel single infusion (LBCL)", 111_000_000),
        ("Brexucabtagene autoleucel single infusion (MCL)", 200_000_001),
        ("Idecabtagene vicleucel single infusion (MM)", 299_999_999),
        ("Ciltacabtagene autoleucel single infusion (MM)", 34_999_999),
    ],
)
def test_a_bag_outside_the_labelled_range_is_refused_at_receipt(patient_a, oncologist_a, technicians, regimen,
                                                                  outside):  # fmt: skip
    _weigh(patient_a, "70")
    course = start_course(patient_a, oncologist_a, regimen, chain_of_identity="COI-9")
    prep = live_preparation(first_dose(course))
    t0 = base_time()
    for step in (CoiStep.COLLECTION, CoiStep.SHIPMENT):
        chain_of_identity_handoff(course=course, step=step, scanned="COI-9", user=technicians[0], now=t0 - 9 * H)
    with pytest.raises(ValidationError) as error:
        cell_product_receive(preparation=prep, coi_scanned="COI-9", coa_cells=outside, coa_bag_volume_ml=D(50),
                             coa_lot="L1", user=technicians[0], now=t0)  # fmt: skip
    assert "coa_cells" in error.value.message_dict
    assert Preparation.objects.get(pk=prep.pk).coa_recorded_at is None


def _thawed_car_t(patient, oncologist, nurse, technicians, regimen: str, t0):
    """A 70 kg patient's bag of `regimen`, handed off, received with a certificate in range and thawed at t0."""
    _weigh(patient, "70")
    prep = cleared_preparation(patient, oncologist, nurse, technicians, regimen, chain_of_identity="COI-9")
    preparer, course = technicians[0], prep.dose.course
    for step, hours in ((CoiStep.COLLECTION, 30 * 24), (CoiStep.SHIPMENT, 29 * 24)):
        chain_of_identity_handoff(course=course, step=step, scanned="COI-9", user=preparer, now=t0 - hours * H)
    cells = prep.cells_target or prep.cells_min or 0
    cell_product_receive(preparation=prep, coi_scanned="COI-9", coa_cells=cells, coa_bag_volume_ml=D(50),
                         coa_lot="L1", user=preparer, now=t0 - 48 * H)  # fmt: skip
    preparation_start(preparation=prep, user=preparer, now=t0 - 5 * M)
    return cell_product_thaw(preparation=prep, coi_scanned="COI-9", user=preparer, now=t0).preparation


def _cell_verify(prep, checker, now):
    return preparation_verify(
        preparation=prep, user=checker, password=PASSWORD, request=signing_request(), method="cell_product",
        coi_label="COI-9", bag_intact=True, now=now,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("regimen", "limit"),
    [
        ("Tisagenlecleucel single infusion (adult LBCL)", 30 * M),
        ("Lisocabtagene maraleucel single infusion (LBCL)", 2 * H),
        ("Brexucabtagene autoleucel single infusion (MCL)", H),
        ("Idecabtagene vicleucel single infusion (MM)", H),
        ("Ciltacabtagene autoleucel single infusion (MM)", 2 * H + 30 * M),
    ],
)
def test_each_car_t_bag_is_thawed_against_its_labelled_limit(patient_a, oncologist_a, nurse_a, technicians, regimen,
                                                             limit):  # fmt: skip
    """The clock runs from the recorded thaw: the bag passes verification at its limit and is rejected after."""
    t0 = base_time()
    prep = _thawed_car_t(patient_a, oncologist_a, nurse_a, technicians, regimen, t0)
    assert prep.beyond_use_at == prep.infusion_end_by == t0 + limit
    late = _cell_verify(prep, technicians[1], t0 + limit + M)
    assert late.status == PreparationStatus.REJECTED
    assert "has passed" in late.rejection_reason


def test_a_car_t_verified_at_its_thaw_limit_passes(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    regimen = "Idecabtagene vicleucel single infusion (MM)"
    prep = _thawed_car_t(patient_a, oncologist_a, nurse_a, technicians, regimen, t0)
    verified = _cell_verify(prep, technicians[1], t0 + H)
    assert verified.status != PreparationStatus.REJECTED, verified.rejection_reason
    assert verified.verified_by == technicians[1]


def test_car_t_products_copy_the_axi_cel_monitoring_rules_and_name_their_lymphodepletion(db):
    axi = Regimen.objects.get(name="Axicabtagene ciloleucel single infusion")
    wanted = sorted((r.lab_test_id, r.kind, r.day_from, r.day_to, r.interval_days) for r in axi.monitoring_rules.all())
    car_t = Regimen.objects.filter(drug__cell_therapy=True, drug__target__contains="CAR T")
    for regimen in car_t.exclude(pk=axi.pk):
        rules = sorted((r.lab_test_id, r.kind, r.day_from, r.day_to, r.interval_days)
                       for r in MonitoringRule.objects.filter(regimen=regimen))  # fmt: skip
        assert rules == wanted, regimen.name
        assert "fludarabine" in regimen.lymphodepletion.lower(), regimen.name
        assert regimen.drug.proximity_days == regimen.drug.no_driving_days == 14


# --- Sipuleucel-T: each bag its own identity and expiry time ------------------------------------------------


def _sipuleucel_released(patient, oncologist, techs, t0, *, expires_in=timedelta(hours=20)):
    preparer, checker = techs
    course = start_course(patient, oncologist, SIPULEUCEL, chain_of_identity="SIP-PAT-001")
    prep = live_preparation(first_dose(course))
    fresh_product_collect(preparation=prep, bag_identity="SIP-D1-4471", collected_at=t0 - 72 * H, user=preparer,
                          now=t0 - 60 * H)  # fmt: skip
    preparation_start(preparation=prep, user=preparer, now=t0 - 30 * M)
    outcome = fresh_product_receive(
        preparation=prep, coi_scanned="SIP-D1-4471", coa_cells=62_000_000, coa_bag_volume_ml=D(250), coa_lot="PV-1",
        expires_at=t0 + expires_in, user=preparer, now=t0 - 20 * M,
    )  # fmt: skip
    assert outcome.matched
    assert outcome.preparation.status == PreparationStatus.AWAITING_VERIFICATION
    prep = preparation_verify(preparation=prep, user=checker, password=PASSWORD, method="cell_product",
                              coi_label="SIP-D1-4471", bag_intact=True, now=t0 - 10 * M,
                              request=signing_request())  # fmt: skip
    assert not prep.rejection_reason, prep.rejection_reason
    return preparation_release(preparation=prep, user=checker, now=t0 - 5 * M)


def _infuse(prep, nurse, at, coi="SIP-D1-4471"):
    patient = prep.dose.course.patient
    return preparation_administer(
        preparation=prep, wristband=patient.mrn, label=prep.code, coi_label=coi, user=nurse, now=at,
        premedication_given_at=at - 30 * M, premedication_note="Acetaminophen 650 mg, diphenhydramine 50 mg PO",
    )  # fmt: skip


def test_sipuleucel_doses_are_three_two_weeks_apart(patient_a, oncologist_a):
    course = start_course(patient_a, oncologist_a, SIPULEUCEL, chain_of_identity="SIP-PAT-001")
    doses = list(course.doses.order_by("number"))
    assert [(d.planned_at - doses[0].planned_at).days for d in doses] == [0, 14, 28]
    assert live_preparation(doses[0]).cells_min == 50_000_000


def test_sipuleucel_infusion_accepted_before_the_product_expiry(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    prep = _sipuleucel_released(patient_a, oncologist_a, technicians, t0, expires_in=2 * H)
    outcome = _infuse(prep, nurse_a, t0 + 2 * H - M)
    assert outcome.matched, outcome.check.note
    assert Preparation.objects.get(pk=prep.pk).status == PreparationStatus.ADMINISTERED


def test_sipuleucel_infusion_refused_after_the_product_expiry(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    prep = _sipuleucel_released(patient_a, oncologist_a, technicians, t0, expires_in=2 * H)
    outcome = _infuse(prep, nurse_a, t0 + 2 * H + M)
    assert not outcome.matched
    assert "expired" in outcome.check.note
    assert Preparation.objects.get(pk=prep.pk).status == PreparationStatus.RELEASED


def test_sipuleucel_infusion_refused_without_an_expiry_recorded(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    prep = _sipuleucel_released(patient_a, oncologist_a, technicians, t0)
    Preparation.objects.filter(pk=prep.pk).update(product_expires_at=None)
    outcome = _infuse(Preparation.objects.get(pk=prep.pk), nurse_a, t0)
    assert not outcome.matched
    assert "no product expiry time is recorded" in outcome.check.note


def test_sipuleucel_infusion_refused_for_another_bag(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    prep = _sipuleucel_released(patient_a, oncologist_a, technicians, t0)
    outcome = _infuse(prep, nurse_a, t0, coi="SIP-D2-9999")
    assert not outcome.matched
    assert "is not this dose's bag" in outcome.check.note


def test_sipuleucel_receipt_needs_the_expiry_and_the_dose_own_bag(patient_a, oncologist_a, technicians):
    t0, preparer = base_time(), technicians[0]
    course = start_course(patient_a, oncologist_a, SIPULEUCEL, chain_of_identity="SIP-PAT-001")
    prep = live_preparation(first_dose(course))
    fresh_product_collect(preparation=prep, bag_identity="SIP-D1-4471", collected_at=t0 - 72 * H, user=preparer,
                          now=t0 - 60 * H)  # fmt: skip
    preparation_start(preparation=prep, user=preparer, now=t0 - 30 * M)
    receipt = {"coa_cells": 62_000_000, "coa_bag_volume_ml": D(250), "coa_lot": "PV-1", "user": preparer, "now": t0}
    with pytest.raises(ValidationError) as error:
        fresh_product_receive(preparation=prep, coi_scanned="SIP-D1-4471", expires_at=None, **receipt)
    assert "expires_at" in error.value.message_dict
    with pytest.raises(ValidationError):
        fresh_product_receive(preparation=prep, coi_scanned="SIP-D1-4471", expires_at=t0 - M, **receipt)
    outcome = fresh_product_receive(preparation=prep, coi_scanned="SIP-XX", expires_at=t0 + H, **receipt)
    assert not outcome.matched
    assert "STOP" in outcome.check.note
    assert Preparation.objects.get(pk=prep.pk).product_expires_at is None
    with pytest.raises(OrderConflict):  # not frozen: never thawed
        cell_product_thaw(preparation=prep, coi_scanned="SIP-D1-4471", user=preparer, now=t0)


# --- Talimogene laherparepvec -------------------------------------------------------------------------------


def test_tvec_schedule_and_concentrations(patient_a, oncologist_a):
    course = start_course(patient_a, oncologist_a, TVEC)
    doses = list(course.doses.order_by("number"))
    assert [(d.planned_at - doses[0].planned_at).days for d in doses[:4]] == [0, 21, 35, 49]
    first, second = live_preparation(doses[0]), live_preparation(doses[1])
    assert (first.concentration_pfu_per_ml, second.concentration_pfu_per_ml) == (10**6, 10**8)
    assert (first.max_volume_ml, first.dose_mg, first.volume_to_draw_ml) == (D(4), None, None)


def test_tvec_preparer_must_confirm_not_excluded_before_starting(patient_a, oncologist_a, technicians):
    preparer = technicians[0]
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC)))
    with pytest.raises(OrderConflict, match="not excluded"):
        preparation_start(preparation=prep, user=preparer, now=base_time())
    with pytest.raises(ValidationError) as error:
        preparer_exclusion_confirm(preparation=prep, user=preparer, now=base_time(), not_pregnant=True,
                                   not_immunocompromised=False)  # fmt: skip
    assert list(error.value.message_dict) == ["not_immunocompromised"]
    preparer_exclusion_confirm(preparation=prep, user=technicians[1], now=base_time(), not_pregnant=True,
                               not_immunocompromised=True)  # fmt: skip
    with pytest.raises(OrderConflict):  # a colleague's confirmation does not count for this preparer
        preparation_start(preparation=prep, user=preparer, now=base_time())
    preparer_exclusion_confirm(preparation=prep, user=preparer, now=base_time(), not_pregnant=True,
                               not_immunocompromised=True)  # fmt: skip
    assert preparation_start(preparation=prep, user=preparer, now=base_time()).status == "in_preparation"


def test_tvec_thaw_plans_the_volume_and_goes_to_the_bedside(patient_a, oncologist_a, nurse_a, technicians):
    preparer, checker = technicians
    t0 = base_time()
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC)))
    preparer_exclusion_confirm(preparation=prep, user=preparer, now=t0, not_pregnant=True, not_immunocompromised=True)
    preparation_start(preparation=prep, user=preparer, now=t0)
    prep = virus_thaw(preparation=prep, lesions_cm=[D("0.4"), D(6)], vial_lot="TV-1",
                      vial_expiry=t0.date() + timedelta(days=90), user=preparer, now=t0 + 10 * M)  # fmt: skip
    assert prep.volume_ml_planned == D(4)
    assert prep.lesion_plan[0] == {"lesion": "2", "size_cm": "6", "volume_ml": "4"}
    assert prep.beyond_use_at == t0 + 10 * M + 12 * H
    prep = preparation_verify(preparation=prep, user=checker, password=PASSWORD, method="volumetric",
                              measured=D("4.0"), now=t0 + 15 * M, request=signing_request())  # fmt: skip
    assert not prep.rejection_reason
    label = preparation_label(prep)
    assert (label.pfu_per_ml, label.route, label.dose_mg) == (10**6, "Intralesional injection", None)
    assert "PFU/mL" in pdf_text(label_pdf(label, tz=timezone.get_current_timezone()))
    prep = preparation_release(preparation=prep, user=checker, now=t0 + 20 * M)
    outcome = preparation_administer(preparation=prep, wristband=patient_a.mrn, label=prep.code, user=nurse_a,
                                     now=t0 + 30 * M)  # fmt: skip
    assert outcome.matched, outcome.check.note


def test_exposure_report_recorded_and_listed_for_the_pharmacist(api_as, patient_a, oncologist_a, technicians):
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC)))
    client = api_as(technicians[0])
    body = {
        "person": "R. Nurse",
        "occurred_at": (base_time() - 2 * H).isoformat(),
        "kind": "needlestick",
        "what": "Needlestick after injecting lesion 2",
        "action_taken": "Washed, occupational health informed",
    }
    response = client.post(f"/api/preparations/{prep.pk}/exposure/", body, format="json")
    assert response.status_code == 201, response.content
    report = ExposureReport.objects.get()
    assert (report.person, report.kind, report.drug.name) == ("R. Nurse", "needlestick", "Talimogene laherparepvec")
    listed = client.get("/api/exposure-reports/").json()
    assert [r["id"] for r in listed["results"]] == [report.pk]
    bad = client.post(f"/api/preparations/{prep.pk}/exposure/", {**body, "kind": "bite"}, format="json")
    assert bad.status_code == 400
    assert "kind" in bad.json()


# --- Hazardous drugs (USP <800>) ----------------------------------------------------------------------------


def _fludarabine_recorded(patient, oncologist, nurse, techs, t0, device: str):
    preparer = techs[0]
    dose = first_dose(start_course(patient, oncologist, FLUDARABINE))
    clear_pre_dose(dose, nurse, *techs)
    prep = live_preparation(dose)
    preparation_start(preparation=prep, user=preparer, now=t0)
    expiry = t0.date() + timedelta(days=300)
    components = [
        ComponentInput(ComponentKind.VIAL, "Fludarabine 50 mg/2 mL", "FL-1", expiry, prep.volume_to_draw_ml or D(0)),
        ComponentInput(ComponentKind.DILUENT, "0.9% sodium chloride 100 mL", "NS-1", expiry, D(100)),
    ]
    return preparation_record(preparation=prep, components=components, category="category_1", storage="room",
                              user=preparer, now=t0 + 20 * M, closed_system_device=device)  # fmt: skip


def test_hazardous_record_needs_the_closed_system_device(patient_a, oncologist_a, nurse_a, technicians):
    with pytest.raises(ValidationError) as error:
        _fludarabine_recorded(patient_a, oncologist_a, nurse_a, technicians, base_time(), device=" ")
    assert "closed_system_device" in error.value.message_dict


def test_hazardous_release_refused_without_closed_system_transfer(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    prep = _fludarabine_recorded(patient_a, oncologist_a, nurse_a, technicians, t0, device="PhaSeal")
    prep = preparation_verify(preparation=prep, user=technicians[1], password=PASSWORD, method="volumetric",
                              measured=prep.final_volume_ml, now=t0 + 25 * M, request=signing_request())  # fmt: skip
    Preparation.objects.filter(pk=prep.pk).update(closed_system_device="")  # as if never recorded
    with pytest.raises(OrderConflict, match="closed-system transfer"):
        preparation_release(preparation=prep, user=technicians[1], now=t0 + 30 * M)
    Preparation.objects.filter(pk=prep.pk).update(closed_system_device="PhaSeal")
    released = preparation_release(preparation=prep, user=technicians[1], now=t0 + 30 * M)
    assert released.status == PreparationStatus.RELEASED


def test_hazardous_label_carries_the_banner(patient_a, oncologist_a, nurse_a, technicians):
    t0 = base_time()
    prep = _fludarabine_recorded(patient_a, oncologist_a, nurse_a, technicians, t0, device="PhaSeal")
    prep = preparation_verify(preparation=prep, user=technicians[1], password=PASSWORD, method="volumetric",
                              measured=prep.final_volume_ml, now=t0 + 25 * M, request=signing_request())  # fmt: skip
    label = preparation_label(prep)
    assert label.hazardous
    assert "HAZARDOUS DRUG: CHEMO PRECAUTIONS" in pdf_text(label_pdf(label, tz=timezone.get_current_timezone()))
    pembro = dict(label.__dict__, hazardous=False)
    assert "HAZARDOUS" not in pdf_text(label_pdf(type(label)(**pembro), tz=timezone.get_current_timezone()))


def test_only_the_preparer_may_thaw_tvec(patient_a, oncologist_a, technicians):
    preparer, other = technicians
    t0 = base_time()
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC)))
    preparer_exclusion_confirm(preparation=prep, user=preparer, now=t0, not_pregnant=True, not_immunocompromised=True)
    preparation_start(preparation=prep, user=preparer, now=t0)
    with pytest.raises(PermissionDenied):
        virus_thaw(preparation=prep, lesions_cm=[D(1)], vial_lot="TV-1", vial_expiry=t0.date(), user=other, now=t0)
