"""Regimens in phases (nivolumab + ipilimumab, then nivolumab alone) and step-up doses (teclistamab, epcoritamab):
the schedule, the phase change, premedication before each step-up dose and the hospital stay after it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders.choices import CourseStatus, DoseStatus, PreparationStatus
from orders.models import Dose, Preparation, Regimen, RegimenStep, TherapyPlan, TreatmentCourse, TreatmentPlan
from orders.selectors import regimen_schedule
from orders.services.courses import (
    course_reschedule,
    course_stop,
    therapy_plan_advance,
    therapy_plan_start,
)
from orders.services.identity import preparation_administer
from tests.orders.helpers import clear_pre_dose, live_preparation, start_course

pytestmark = pytest.mark.django_db

H, D = timedelta(hours=1), timedelta(days=1)
NIVO_IPI = "Nivolumab + ipilimumab (melanoma), then nivolumab 480 mg q4w"
NIVO_COMBO = "Nivolumab 1 mg/kg q3w x4 (with ipilimumab)"
IPI, NIVO_480 = "Ipilimumab 3 mg/kg q3w x4", "Nivolumab 480 mg q4w"
TEC = "Teclistamab step-up 0.06/0.3/1.5 mg/kg then 1.5 mg/kg weekly"
EPC = "Epcoritamab DLBCL step-up 0.16/0.8 mg then 48 mg"
ALL_THREE = ["corticosteroid", "h1_antagonist", "antipyretic"]


def start_plan(patient, oncologist, name: str = NIVO_IPI, *, in_hours: float = 20) -> TreatmentPlan:
    now = timezone.now()
    return therapy_plan_start(
        patient=patient, plan=TherapyPlan.objects.get(name=name), starts_at=now + in_hours * H, user=oncologist,
        now=now,
    )  # fmt: skip


def course_of(plan: TreatmentPlan, regimen: str) -> TreatmentCourse:
    return plan.courses.get(regimen__name=regimen)


def give_all(course: TreatmentCourse) -> None:
    """Every planned dose of the course recorded as given at its planned time (the bedside is tested below)."""
    course.doses.filter(status=DoseStatus.PLANNED).update(status=DoseStatus.GIVEN)


def released(prep: Preparation, at) -> Preparation:
    """Prepared, verified and released (those steps are tested in test_preparations), usable for 6 h from `at`."""
    Preparation.objects.filter(pk=prep.pk).update(status=PreparationStatus.RELEASED, beyond_use_at=at + 6 * H)
    return Preparation.objects.get(pk=prep.pk)


def administer(prep: Preparation, nurse, now, **kwargs):
    patient = prep.dose.course.patient
    return preparation_administer(preparation=prep, wristband=patient.mrn, label=prep.code, user=nurse, now=now,
                                  **kwargs)  # fmt: skip


# --- nivolumab + ipilimumab, then nivolumab: the phase change ---------------------------------------------------


def test_a_plan_starts_its_first_phase_together(oncologist_a, patient_a):
    plan = start_plan(patient_a, oncologist_a)
    courses = list(plan.courses.order_by("regimen__name"))
    assert [c.regimen.name for c in courses] == [IPI, NIVO_COMBO]
    assert {c.phase_position for c in courses} == {1}
    assert courses[0].starts_at == courses[1].starts_at == plan.starts_at
    nivo = course_of(plan, NIVO_COMBO)
    assert [d.planned_at - plan.starts_at for d in nivo.doses.order_by("number")] == [0 * D, 21 * D, 42 * D, 63 * D]
    # 1 mg/kg at 70 kg: 70 mg (no vial total within 10 %); ipilimumab 3 mg/kg: 210 mg -> 200 mg (4.8 %)
    assert live_preparation(nivo.doses.get(number=1)).dose_mg == Decimal("70.0")
    assert live_preparation(course_of(plan, IPI).doses.get(number=1)).dose_mg == Decimal("200.0")


def test_phase_two_starts_21_days_after_the_last_phase_one_dose_and_only_once(oncologist_a, patient_a):
    plan = start_plan(patient_a, oncologist_a)
    nivo, ipi = course_of(plan, NIVO_COMBO), course_of(plan, IPI)
    give_all(ipi)
    nivo.doses.exclude(number=4).update(status=DoseStatus.GIVEN)
    now = timezone.now()
    assert therapy_plan_advance(treatment_plan=plan, now=now) == []  # nivolumab dose 4 still planned
    give_all(nivo)
    (started,) = therapy_plan_advance(treatment_plan=plan, now=now)
    last_dose = nivo.doses.get(number=4).planned_at
    assert started.regimen.name == NIVO_480
    assert started.phase_position == 2
    assert started.starts_at == last_dose + 21 * D
    assert started.started_by == oncologist_a  # ordered by the oncologist who started the plan
    assert started.doses.count() == 13
    assert therapy_plan_advance(treatment_plan=plan, now=now) == []  # idempotent
    assert therapy_plan_advance(treatment_plan=plan, now=now + H) == []
    assert plan.courses.filter(phase_position=2).count() == 1
    plan.refresh_from_db()
    assert plan.current_position == 2
    assert not plan.finished


def test_a_stopped_ipilimumab_does_not_stop_nivolumab(oncologist_a, patient_a):
    plan = start_plan(patient_a, oncologist_a)
    nivo, ipi = course_of(plan, NIVO_COMBO), course_of(plan, IPI)
    ipi.doses.filter(number=1).update(status=DoseStatus.GIVEN)
    course_stop(course=ipi, user=oncologist_a, now=timezone.now(), reason="Grade 3 colitis")
    nivo.refresh_from_db()
    assert nivo.status == CourseStatus.ACTIVE
    assert nivo.doses.filter(status=DoseStatus.PLANNED).count() == 4
    assert not plan.courses.filter(phase_position=2).exists()  # nivolumab's doses are still to come
    give_all(nivo)
    (started,) = therapy_plan_advance(treatment_plan=plan, now=timezone.now())
    assert started.starts_at == nivo.doses.get(number=4).planned_at + 21 * D


def test_stopping_every_course_of_the_phase_ends_the_plan_without_starting_the_next(oncologist_a, patient_a):
    plan = start_plan(patient_a, oncologist_a)
    for regimen in (IPI, NIVO_COMBO):
        course_stop(course=course_of(plan, regimen), user=oncologist_a, now=timezone.now(), reason="Progression")
    plan.refresh_from_db()
    assert plan.finished
    assert not plan.courses.filter(phase_position=2).exists()


def test_giving_the_last_phase_one_dose_at_the_bedside_starts_phase_two(oncologist_a, nurse_a, technicians, patient_a):
    """The phase change runs in the bedside transaction: the last nivolumab dose given starts phase 2."""
    plan = start_plan(patient_a, oncologist_a)
    nivo, ipi = course_of(plan, NIVO_COMBO), course_of(plan, IPI)
    course_stop(course=ipi, user=oncologist_a, now=timezone.now(), reason="Grade 3 hepatitis")
    now = timezone.now()
    dose = nivo.doses.get(number=4)
    course_reschedule(dose=dose, planned_at=now + 20 * H, user=oncologist_a, now=now)
    dose.refresh_from_db()
    for number in (1, 2, 3):  # given every 3 weeks before it
        nivo.doses.filter(number=number).update(
            status=DoseStatus.GIVEN, planned_at=dose.planned_at - (4 - number) * 21 * D
        )
    clear_pre_dose(dose, nurse_a, *technicians)
    at = dose.planned_at
    outcome = administer(released(live_preparation(dose), at - H), nurse_a, at)
    assert outcome.matched, outcome.check.note
    (maintenance,) = plan.courses.filter(phase_position=2)
    assert maintenance.regimen.name == NIVO_480
    assert maintenance.starts_at == at + 21 * D  # from the administration, not the first plan


def test_course_page_shows_the_plan_and_its_current_phase(client, oncologist_a, patient_a):
    plan = start_plan(patient_a, oncologist_a)
    client.force_login(oncologist_a)
    page = client.get(f"/orders/courses/{course_of(plan, NIVO_COMBO).pk}/").content.decode()
    assert NIVO_IPI in page
    assert page.count('data-testid="plan-phase"') == 2
    assert 'data-state="current"' in page
    assert 'data-state="next"' in page
    assert f"{NIVO_COMBO} + {IPI}" in page or f"{IPI} + {NIVO_COMBO}" in page


# --- teclistamab: step-up schedule, premedication, hospital stay ------------------------------------------------


def test_teclistamab_step_up_days_and_doses_for_80_kg(oncologist_a, team_a):
    from tests import factories

    patient = factories.make_patient(team_a, weight_kg=Decimal("80.0"))
    course = start_course(patient, oncologist_a, TEC)
    doses = list(course.doses.order_by("number"))
    assert [(d.planned_at - course.starts_at).days for d in doses[:5]] == [0, 3, 6, 13, 20]  # days 1, 4, 7, 14, 21
    preps = [live_preparation(d) for d in doses[:4]]
    assert [p.dose_mg for p in preps] == [Decimal("4.8"), Decimal("24.0"), Decimal("120.0"), Decimal("120.0")]
    # step-up doses from the 10 mg/mL vial, treatment doses from the 90 mg/mL vial; syringes to 0.01 mL
    assert [p.volume_to_draw_ml for p in preps] == [Decimal("0.48"), Decimal("2.40"), Decimal("1.33"), Decimal("1.33")]
    assert [Decimal(p.calculation["strength_mg_per_ml"]) for p in preps] == [10, 10, 90, 90]
    assert [Decimal(p.calculation["amount"]) for p in preps] == [Decimal("0.06"), Decimal("0.3"), Decimal("1.5"),
                                                                  Decimal("1.5")]  # fmt: skip


@pytest.fixture
def tec_step_one(oncologist_a, nurse_a, technicians, patient_a):
    course = start_course(patient_a, oncologist_a, TEC)
    dose = course.doses.get(number=1)
    clear_pre_dose(dose, nurse_a, *technicians)
    return released(live_preparation(dose), dose.planned_at - H)


def test_step_up_dose_refused_without_premedication_naming_what_is_missing(nurse_a, tec_step_one):
    assert Regimen.objects.get(name=TEC).drug.premedication == ""  # only the step asks for it
    at = tec_step_one.dose.planned_at
    outcome = administer(tec_step_one, nurse_a, at)
    assert not outcome.matched
    assert "premedication not recorded before step-up dose 1" in outcome.check.note
    assert "Corticosteroid, H1 antagonist, Antipyretic" in outcome.check.note
    partial = administer(tec_step_one, nurse_a, at, premedication_given_at=at - H,
                         premedication_classes=["corticosteroid", "h1_antagonist"])  # fmt: skip
    assert not partial.matched
    assert "Antipyretic not recorded" in partial.check.note
    assert "Corticosteroid" not in partial.check.note.split("missing")[1]
    stale = administer(tec_step_one, nurse_a, at, premedication_given_at=at - 4 * H, premedication_classes=ALL_THREE)
    assert not stale.matched
    assert "more than 3 h before step-up dose 1" in stale.check.note
    assert Preparation.objects.get(pk=tec_step_one.pk).status == PreparationStatus.RELEASED


def test_step_up_dose_accepted_with_premedication_and_the_stay_is_shown(client, nurse_a, tec_step_one):
    at = tec_step_one.dose.planned_at
    outcome = administer(tec_step_one, nurse_a, at, premedication_given_at=at - 2 * H,
                         premedication_classes=ALL_THREE, premedication_note="Dexamethasone 16 mg PO")  # fmt: skip
    assert outcome.matched, outcome.check.note
    prep = Preparation.objects.get(pk=tec_step_one.pk)
    assert prep.premedication_classes_given == sorted(ALL_THREE)
    until = f"{timezone.localtime(at + 48 * H):%Y-%m-%d %H:%M}"
    client.force_login(nurse_a)
    ward = client.get("/orders/ward/").content.decode()
    assert 'data-testid="hospital-stay"' in ward
    assert f"in hospital until <strong>{until}</strong>" in ward
    course = client.get(f"/orders/courses/{prep.dose.course_id}/").content.decode()
    assert f"in hospital until {until}" in course


def test_weekly_dose_needs_no_step_premedication(oncologist_a, nurse_a, technicians, patient_a):
    course = start_course(patient_a, oncologist_a, TEC)
    course.doses.filter(number__lte=3).update(status=DoseStatus.GIVEN)
    now = timezone.now()
    dose = course.doses.get(number=4)
    course_reschedule(dose=dose, planned_at=now + 20 * H, user=oncologist_a, now=now)
    dose.refresh_from_db()
    clear_pre_dose(dose, nurse_a, *technicians)
    outcome = administer(released(live_preparation(dose), dose.planned_at - H), nurse_a, dose.planned_at)
    assert outcome.matched, outcome.check.note
    assert not RegimenStep.objects.filter(regimen=course.regimen, dose_number=4).exists()


def test_api_bedside_takes_the_premedication_list(api_as, nurse_a, tec_step_one):
    at = timezone.now()
    Preparation.objects.filter(pk=tec_step_one.pk).update(beyond_use_at=at + 6 * H)
    body = {"wristband": tec_step_one.dose.course.patient.mrn, "bag_label": tec_step_one.code,
            "premedication_given_at": (at - H).isoformat(), "premedication_classes": ["corticosteroid"]}  # fmt: skip
    response = api_as(nurse_a).post(f"/api/preparations/{tec_step_one.pk}/administer/", body, format="json")
    assert response.status_code == 409
    assert "H1 antagonist, Antipyretic not recorded" in response.json()["note"]
    bad = api_as(nurse_a).post(
        f"/api/preparations/{tec_step_one.pk}/administer/", {**body, "premedication_classes": ["opioid"]},
        format="json",
    )  # fmt: skip
    assert bad.status_code == 400
    assert "premedication_classes" in bad.json()


# --- epcoritamab: days and flat doses across cycles --------------------------------------------------------------


def test_epcoritamab_schedule_across_cycles():
    schedule = regimen_schedule(Regimen.objects.get(name=EPC))
    days = [p.offset.days + 1 for p in schedule]
    assert days[:4] == [1, 8, 15, 22]  # cycle 1
    assert days[4:12] == [29, 36, 43, 50, 57, 64, 71, 78]  # cycles 2-3 weekly
    assert days[12:24] == [85, 99, 113, 127, 141, 155, 169, 183, 197, 211, 225, 239]  # cycles 4-9 every 2 weeks
    assert days[24:] == [253, 281, 309]  # cycle 10 on: day 1 of each 28-day cycle
    amounts = [p.step.dose_amount if p.step and p.step.dose_amount else None for p in schedule]
    assert amounts[:2] == [Decimal("0.16"), Decimal("0.8")]
    assert amounts[2:] == [None] * 25  # the regimen's 48 mg
    assert Regimen.objects.get(name=EPC).dose_amount == Decimal(48)
    steps = [p.step for p in schedule[:5] if p.step is not None]
    assert [s.premedication_required for s in steps] == [True, True, True, True, False]
    assert [s.hospital_stay_hours for s in steps[:4]] == [0, 0, 24, 0]


def test_epcoritamab_is_refused_until_pharmacy_enters_the_dilution(oncologist_a, patient_a):
    with pytest.raises(ValidationError) as refused:
        start_course(patient_a, oncologist_a, EPC)
    assert "regimen" in refused.value.message_dict  # seeded inactive
    Regimen.objects.filter(name=EPC).update(active=True)
    with pytest.raises(ValidationError) as too_small:
        start_course(patient_a, oncologist_a, EPC)
    assert "too small to measure" in str(too_small.value.message_dict)  # 0.16 mg of 60 mg/mL: not measurable
    assert not TreatmentCourse.objects.exists()


def test_epcoritamab_flat_doses_once_diluted(api_as, oncologist_a, patient_a):
    regimen = Regimen.objects.get(name=EPC)
    Regimen.objects.filter(pk=regimen.pk).update(active=True)
    # Test data: the strengths pharmacy would enter from the label's dilution (not seeded, see 0011).
    RegimenStep.objects.filter(regimen=regimen, dose_number=1).update(strength_mg_per_ml=Decimal("0.16"))
    RegimenStep.objects.filter(regimen=regimen, dose_number=2).update(strength_mg_per_ml=Decimal("0.8"))
    course = start_course(patient_a, oncologist_a, EPC)
    preps = {d.number: live_preparation(d) for d in course.doses.filter(number__in=[1, 2, 3, 5, 13, 25, 27])}
    assert {n: p.dose_mg for n, p in preps.items()} == {
        1: Decimal("0.16"), 2: Decimal("0.80"), 3: Decimal("48.00"), 5: Decimal("48.00"), 13: Decimal("48.00"),
        25: Decimal("48.00"), 27: Decimal("48.00"),
    }  # fmt: skip
    assert preps[1].volume_to_draw_ml == Decimal("1.00")
    assert preps[3].volume_to_draw_ml == Decimal("0.80")
    response = api_as(oncologist_a).get(f"/api/preparations/{preps[1].pk}/")
    assert response.json()["dose_mg"] == "0.16"  # kept to 0.01 mg, not rounded to 0.2


# --- ordering a plan: API and web form ---------------------------------------------------------------------------


def test_api_starts_a_plan(api_as, oncologist_a, patient_a):
    plan = TherapyPlan.objects.get(name=NIVO_IPI)
    starts = (timezone.now() + 20 * H).isoformat()
    response = api_as(oncologist_a).post(
        "/api/treatment-plans/", {"patient": patient_a.pk, "plan": plan.pk, "starts_at": starts}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["plan_name"] == NIVO_IPI
    assert body["current_position"] == 1
    assert sorted(c["regimen_name"] for c in body["courses"]) == [IPI, NIVO_COMBO]
    listed = api_as(oncologist_a).get("/api/therapy-plans/").json()
    phases = next(p for p in listed["results"] if p["name"] == NIVO_IPI)["phases"]
    assert [(p["position"], p["starts_days_after_previous"]) for p in phases][-1] == (2, 21)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"plan": None}, "plan"),
        ({"plan": 999999}, "plan"),
        ({"starts_at": "2001-01-01T00:00:00Z"}, "starts_at"),
        ({"starts_at": "not a time"}, "starts_at"),
    ],
)
def test_api_bad_plan_input_is_a_400_naming_the_field(api_as, oncologist_a, patient_a, change, field):
    body = {"patient": patient_a.pk, "plan": TherapyPlan.objects.get(name=NIVO_IPI).pk,
            "starts_at": (timezone.now() + 20 * H).isoformat(), **change}  # fmt: skip
    response = api_as(oncologist_a).post("/api/treatment-plans/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not TreatmentPlan.objects.exists()


def test_api_plan_of_another_team_is_refused(api_as, oncologist_a, patient_b):
    body = {"patient": patient_b.pk, "plan": TherapyPlan.objects.get(name=NIVO_IPI).pk,
            "starts_at": (timezone.now() + 20 * H).isoformat()}  # fmt: skip
    response = api_as(oncologist_a).post("/api/treatment-plans/", body, format="json")
    assert response.status_code == 400
    assert "patient" in response.json()


def test_web_form_orders_a_plan(client, oncologist_a, patient_a):
    client.force_login(oncologist_a)
    page = client.get(f"/orders/patients/{patient_a.pk}/new-course/").content.decode()
    assert NIVO_IPI in page
    starts = (timezone.localtime() + 20 * H).strftime("%Y-%m-%dT%H:%M")
    plan = TherapyPlan.objects.get(name=NIVO_IPI)
    response = client.post(f"/orders/patients/{patient_a.pk}/new-course/", {"plan": plan.pk, "starts_at": starts})
    assert response.status_code == 302
    treatment_plan = TreatmentPlan.objects.get()
    assert treatment_plan.courses.count() == 2
    assert "course-plan" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "Choose a regimen or a plan."),
        ({"plan": "999999"}, "Choose a plan."),
        ({"plan": "x"}, "Choose a plan."),
        ("both", "Choose a regimen or a plan, not both."),
    ],
)
def test_web_form_bad_plan_input_names_the_problem(client, oncologist_a, patient_a, form, message):
    client.force_login(oncologist_a)
    starts = (timezone.localtime() + 20 * H).strftime("%Y-%m-%dT%H:%M")
    if form == "both":
        form = {"plan": TherapyPlan.objects.get(name=NIVO_IPI).pk, "regimen": Regimen.objects.get(name=NIVO_480).pk}
    response = client.post(f"/orders/patients/{patient_a.pk}/new-course/", {**form, "starts_at": starts})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TreatmentCourse.objects.exists()
    assert not Dose.objects.exists()


def test_a_next_phase_that_cannot_start_does_not_undo_the_stop_and_is_shown(client, oncologist_a, patient_a):
    plan = start_plan(patient_a, oncologist_a)
    nivo, ipi = course_of(plan, NIVO_COMBO), course_of(plan, IPI)
    give_all(ipi)
    nivo.doses.filter(number__lte=3).update(status=DoseStatus.GIVEN)
    Regimen.objects.filter(name=NIVO_480).update(active=False)  # withdrawn meanwhile
    course_stop(course=nivo, user=oncologist_a, now=timezone.now(), reason="Grade 3 rash")
    nivo.refresh_from_db()
    assert nivo.status == CourseStatus.STOPPED  # the stop holds
    plan.refresh_from_db()
    assert "This regimen is no longer offered." in plan.blocked_reason
    assert plan.current_position == 1
    assert not plan.courses.filter(phase_position=2).exists()
    client.force_login(oncologist_a)
    page = client.get(f"/orders/courses/{nivo.pk}/").content.decode()
    assert 'data-testid="plan-blocked"' in page
    Regimen.objects.filter(name=NIVO_480).update(active=True)
    (started,) = therapy_plan_advance(treatment_plan=plan, now=timezone.now())  # retried: starts now
    assert started.regimen.name == NIVO_480


def test_the_bag_label_of_a_step_up_dose_names_its_premedication(technicians, tec_step_one):
    from orders.labelling import preparation_label

    Preparation.objects.filter(pk=tec_step_one.pk).update(prepared_by=technicians[0], verified_by=technicians[1])
    label = preparation_label(Preparation.objects.get(pk=tec_step_one.pk))
    assert label.premedication.startswith("step-up dose 1: Dexamethasone 16 mg")
    assert label.dose_mg == Decimal("4.2")  # 0.06 mg/kg x 70 kg
    assert label.volume_ml == Decimal("0.42")  # undiluted, 10 mg/mL, to 0.01 mL
