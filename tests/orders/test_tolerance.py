"""Lifileucel and high-dose aldesleukin: six doses 8 h apart, each given only after a bedside tolerance check that
found it tolerated within the last 2 h; a held or incomplete check stops the dose at the bedside with its reasons."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders.choices import PreparationStatus
from orders.models import Drug, Preparation, Regimen, ToleranceCheck, TreatmentCourse
from orders.services.courses import course_start
from orders.services.tolerance import tolerance_check_record
from tests.orders.cell_helpers import PEMBRO, H, M, base_time, cleared_preparation, pembro_released
from tests.orders.helpers import start_course
from tests.orders.test_bedside import administer

pytestmark = pytest.mark.django_db
IL2 = "Aldesleukin 600,000 IU/kg q8h up to 6 doses (after lifileucel)"
WELL: dict[str, Any] = {
    "systolic_bp_mmhg": 112, "target_systolic_mmhg": 90, "vasopressors": False, "heart_rate_bpm": 96,
    "new_arrhythmia": False, "spo2_percent": 97, "oxygen_l_min": Decimal(0), "urine_ml_per_kg_h": Decimal("0.8"),
    "creatinine_mg_dl": Decimal("1.1"), "mental_status_changed": False,
}  # fmt: skip


LIFILEUCEL = "Lifileucel single infusion (melanoma)"


def lifileucel_infused(patient, oncologist, ended_at) -> None:
    """A completed lifileucel infusion (set directly: no thaw limit is seeded, so it cannot be thawed through the
    services until an admin enters one)."""
    course = start_course(patient, oncologist, LIFILEUCEL, in_hours=-2, chain_of_identity="COI-TIL-1")
    Preparation.objects.filter(dose__course=course).update(
        administration_started_at=ended_at - 100 * M, administration_ended_at=ended_at
    )


def test_the_aldesleukin_course_is_six_doses_8_hours_apart_and_stops_there(patient_a, oncologist_a):
    lifileucel_infused(patient_a, oncologist_a, timezone.now())
    course = start_course(patient_a, oncologist_a, IL2, in_hours=6)
    planned = [d.planned_at for d in course.doses.order_by("number")]
    assert len(planned) == 6
    assert [later - earlier for earlier, later in pairwise(planned)] == [8 * H] * 5
    assert Regimen.objects.get(name=IL2).drug.tolerance_check_required


def test_lifileucel_is_a_flat_cell_dose_with_its_lymphodepletion_and_no_guessed_thaw_limit():
    regimen = Regimen.objects.get(name="Lifileucel single infusion (melanoma)")
    assert (regimen.cells_min, regimen.cells_max) == (7_500_000_000, 72_000_000_000)
    assert "Cyclophosphamide 60 mg/kg" in regimen.lymphodepletion
    assert regimen.drug.cell_therapy
    assert regimen.drug.thaw_to_infusion_limit is None  # not verified: cannot be thawed until entered


def test_aldesleukin_starts_3_to_24_hours_after_the_lifileucel_infusion_and_never_without_it(
    patient_a, oncologist_a, api_as
):
    with pytest.raises(ValidationError) as refused:
        start_course(patient_a, oncologist_a, IL2, in_hours=6)
    assert "completed Lifileucel single infusion (melanoma) infusion" in refused.value.message_dict["starts_at"][0]
    ended = timezone.now()
    lifileucel_infused(patient_a, oncologist_a, ended)
    for too_early_or_late in (2.99, 24.01):
        with pytest.raises(ValidationError) as refused:
            start_course(patient_a, oncologist_a, IL2, in_hours=too_early_or_late)
        assert "3-24 h after" in refused.value.message_dict["starts_at"][0]
    body = {"patient": patient_a.pk, "regimen": Regimen.objects.get(name=IL2).pk,
            "starts_at": (ended + 25 * H).isoformat()}  # fmt: skip
    response = api_as(oncologist_a).post("/api/courses/", body, format="json")
    assert response.status_code == 400
    assert "starts_at" in response.json()
    assert not TreatmentCourse.objects.filter(regimen__name=IL2).exists()  # nothing half-written
    for hours in (3, 24):
        start = ended + hours * H
        course = course_start(patient=patient_a, regimen=Regimen.objects.get(name=IL2), starts_at=start,
                              user=oncologist_a, now=ended)  # fmt: skip
        assert course.doses.get(number=1).planned_at == start


@pytest.fixture
def il2_dose(patient_a, oncologist_a):
    lifileucel_infused(patient_a, oncologist_a, timezone.now())
    return start_course(patient_a, oncologist_a, IL2, in_hours=6).doses.get(number=1)


def test_a_check_is_judged_from_its_findings_and_kept(il2_dose, nurse_a):
    now = base_time()
    held = tolerance_check_record(dose=il2_dose, user=nurse_a, now=now, **{**WELL, "urine_ml_per_kg_h": Decimal("0.3")})
    assert held.verdict == "hold"
    assert held.reasons == ["urine output 0.3 mL/kg/h < 0.5 mL/kg/h"]
    partial = tolerance_check_record(dose=il2_dose, user=nurse_a, now=now, **{**WELL, "creatinine_mg_dl": None})
    assert partial.verdict == "pending"
    assert partial.missing == ["creatinine_mg_dl"]
    assert tolerance_check_record(dose=il2_dose, user=nurse_a, now=now, **WELL).verdict == "tolerated"
    assert ToleranceCheck.objects.filter(dose=il2_dose).count() == 3  # every check kept


@pytest.mark.parametrize(
    ("change", "field"),
    [({"spo2_percent": 140}, "spo2_percent"), ({"checked_at_offset": 1}, "checked_at"), ({"pulse": 80}, "pulse")],
)
def test_bad_checks_are_refused_naming_the_field_and_nothing_is_written(il2_dose, nurse_a, change, field):
    now = base_time()
    findings = {**WELL, **change}
    offset = findings.pop("checked_at_offset", None)
    checked_at = now + timedelta(minutes=offset) if offset else None
    with pytest.raises(ValidationError) as refused:
        tolerance_check_record(dose=il2_dose, user=nurse_a, now=now, checked_at=checked_at, **findings)
    assert field in refused.value.message_dict
    assert not ToleranceCheck.objects.exists()


def test_a_drug_that_needs_no_check_refuses_one(patient_a, oncologist_a, nurse_a):
    dose = start_course(patient_a, oncologist_a, PEMBRO).doses.get(number=1)
    with pytest.raises(ValidationError) as refused:
        tolerance_check_record(dose=dose, user=nurse_a, now=base_time(), **WELL)
    assert "dose" in refused.value.message_dict


@pytest.fixture
def released_needing_a_check(patient_a, oncologist_a, nurse_a, technicians):
    """A released preparation whose drug needs a tolerance check (the bedside wiring, on a simple infusion)."""
    prep = cleared_preparation(patient_a, oncologist_a, nurse_a, technicians, PEMBRO)
    Drug.objects.filter(pk=prep.dose.course.regimen.drug_id).update(tolerance_check_required=True)
    return pembro_released(prep, technicians, base_time())


def test_the_bedside_refuses_without_a_check_within_2_hours(released_needing_a_check, nurse_a):
    prep, now = released_needing_a_check, base_time() + 3 * H
    outcome = administer(prep, nurse_a, now)
    assert outcome.preparation.status == PreparationStatus.RELEASED
    assert "no bedside tolerance check in the last 2 h" in outcome.check.note
    tolerance_check_record(dose=prep.dose, user=nurse_a, now=now - 2 * H - M, **WELL)  # too old
    assert "no bedside tolerance check in the last 2 h" in administer(prep, nurse_a, now).check.note


def test_a_held_or_incomplete_check_stops_the_dose_with_its_reasons(released_needing_a_check, nurse_a):
    prep, now = released_needing_a_check, base_time() + 3 * H
    tolerance_check_record(dose=prep.dose, user=nurse_a, now=now - 30 * M, **{**WELL, "heart_rate_bpm": 138})
    note = administer(prep, nurse_a, now).check.note
    assert "hold dose 1 (heart rate 138/min > 130/min)" in note
    tolerance_check_record(dose=prep.dose, user=nurse_a, now=now - 10 * M, **{**WELL, "spo2_percent": None})
    assert "incomplete: spo2_percent not recorded" in administer(prep, nurse_a, now).check.note


def test_the_dose_is_given_after_a_tolerated_check(released_needing_a_check, nurse_a):
    prep, now = released_needing_a_check, base_time() + 3 * H
    tolerance_check_record(dose=prep.dose, user=nurse_a, now=now - 20 * M, **WELL)
    outcome = administer(prep, nurse_a, now)
    assert outcome.check.note == ""
    assert outcome.preparation.status == PreparationStatus.ADMINISTERED


def test_the_api_records_a_check_and_refuses_a_bad_one_naming_the_field(api_as, il2_dose, nurse_a, technician):
    url = f"/api/doses/{il2_dose.pk}/tolerance-check/"
    body = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in WELL.items()}
    created = api_as(nurse_a).post(url, {**body, "heart_rate_bpm": 135}, format="json")
    assert created.status_code == 201
    assert created.json()["verdict"] == "hold"
    assert created.json()["reasons"] == ["heart rate 135/min > 130/min"]
    bad = api_as(nurse_a).post(url, {**body, "spo2_percent": 150}, format="json")
    assert bad.status_code == 400
    assert "spo2_percent" in bad.json()
    assert api_as(technician).post(url, body, format="json").status_code == 403
    assert ToleranceCheck.objects.count() == 1


def test_the_page_records_a_check_and_shows_the_verdict(client, il2_dose, nurse_a):
    client.force_login(nurse_a)
    url = f"/orders/doses/{il2_dose.pk}/tolerance/"
    assert client.get(url).status_code == 200
    form = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in WELL.items()}
    form["creatinine_mg_dl"] = ""  # not assessed
    assert client.post(url, form).status_code == 302
    page = client.get(url).content.decode()
    assert "Pending: a finding is not recorded" in page
    assert "not recorded: creatinine_mg_dl" in page
    refused = client.post(url, {**form, "systolic_bp_mmhg": "999"})
    assert refused.status_code == 400
    assert 'value="999"' in refused.content.decode()
