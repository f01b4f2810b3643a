"""Courses schedule doses, preparation orders and monitoring tests; the dose gate; overrides."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from monitoring.choices import MonitoringTestStatus
from orders.choices import GateVerdict, PreparationStatus
from orders.gate import dose_gate
from orders.models import CourseMonitoringTest
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

pytestmark = pytest.mark.django_db


def _schedule(course):
    links = CourseMonitoringTest.objects.filter(course=course).select_related("monitoring_test__lab_test", "dose")
    return Counter((link.monitoring_test.lab_test.name, link.dose_id is not None) for link in links), links


def test_pembrolizumab_q3w_schedules_pre_dose_labs_and_tsh_every_42_days(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w")
    doses = list(course.doses.order_by("number"))
    assert len(doses) == 35
    assert doses[1].planned_at - doses[0].planned_at == timedelta(days=21)
    counts, links = _schedule(course)
    assert counts[("CBC with differential", True)] == 35
    assert counts[("Comprehensive metabolic panel", True)] == 35
    tsh = sorted(
        link.monitoring_test.due_at
        for link in links
        if link.monitoring_test.lab_test.name == "TSH" and link.rule.kind == "every_n_days"
    )
    assert len(tsh) == 17  # day 42 .. day 714 (the last dose); the baseline TSH comes before dose 1
    assert tsh[0] - course.starts_at == timedelta(days=42)
    assert all(b - a == timedelta(days=42) for a, b in itertools.pairwise(tsh))
    cbc = next(
        link
        for link in links
        if link.dose == doses[0] and link.monitoring_test.lab_test.name == "CBC with differential"
    )
    assert cbc.monitoring_test.due_at == doses[0].planned_at - timedelta(hours=24)
    assert cbc.monitoring_test.deadline == cbc.monitoring_test.due_at + timedelta(hours=12)
    assert course.doses.filter(preparations__status=PreparationStatus.ORDERED).count() == 35


def test_nivolumab_q2w_schedules_tsh_every_second_dose(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Nivolumab 240 mg q2w")
    _, links = _schedule(course)
    tsh_doses = sorted(link.dose.number for link in links if link.monitoring_test.lab_test.name == "TSH")
    assert tsh_doses == list(range(1, 27, 2))
    first = live_preparation(first_dose(course))
    assert first.dose_mg == Decimal("240.0")
    assert first.volume_to_draw_ml == Decimal("24.0")


def test_car_t_course_schedules_daily_labs_day_0_to_14(oncologist_a, patient_a):
    with pytest.raises(Exception, match="chain-of-identity"):
        start_course(patient_a, oncologist_a, "Axicabtagene ciloleucel single infusion")
    course = start_course(
        patient_a, oncologist_a, "Axicabtagene ciloleucel single infusion", chain_of_identity="COI-2026-000123"
    )
    counts, links = _schedule(course)
    for name in ("CBC with differential", "Comprehensive metabolic panel", "CRP", "Ferritin"):
        # the CBC also has its follow-up after day 14 (D21, D28, D60, D90: tests/orders/test_follow_up.py)
        assert counts[(name, False)] == 15 + (4 if name == "CBC with differential" else 0), name
    infusion = first_dose(course).planned_at
    crp = sorted(link.monitoring_test.due_at for link in links if link.monitoring_test.lab_test.name == "CRP")
    assert crp[0] == infusion
    assert crp[-1] == infusion + timedelta(days=14)


def test_gate_blocks_until_pre_dose_labs_are_collected_and_verified(oncologist_a, nurse_a, patient_a, technicians):
    dose = first_dose(start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w"))
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.PENDING
    assert any("CBC with differential not collected" in r for r in gate.pending)
    clear_pre_dose(dose, nurse_a, *technicians)
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.CLEARED, gate.reasons
    assert gate.reasons == []


def test_collected_but_unverified_counts_as_pending(oncologist_a, nurse_a, patient_a, technicians):
    from specimens.services import specimens_collect

    dose = first_dose(start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w"))
    tests = [link.monitoring_test for link in dose.monitoring_links.all()]
    specimens_collect(
        patient=patient_a, wristband=patient_a.mrn, monitoring_tests=tests, user=nurse_a, now=timezone.now()
    )
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.PENDING
    assert gate.reasons == []
    labs = [p for p in gate.pending if "collected" in p]
    assert len(labs) == dose.monitoring_links.filter(rule__gates_dose=True).count()
    assert all("verified result pending" in p for p in labs)


def test_technician_cannot_start_a_blocked_dose_and_an_oncologist_can_override(
    api_as, oncologist_a, nurse_a, patient_a, technicians
):
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w")
    dose = first_dose(course)
    clear_pre_dose(dose, nurse_a, technicians[0], technicians[1], values={"Platelets": ("40", "10*3/uL")})
    prep = live_preparation(dose)
    tech = api_as(technicians[0])
    response = tech.post(f"/api/preparations/{prep.pk}/start/")
    assert response.status_code == 409
    assert "Platelets 40 10*3/uL < 50 10*3/uL: withhold" in response.json()["detail"]
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.ORDERED

    assert tech.post(f"/api/doses/{dose.pk}/override/", {"reason": "x"}).status_code == 403
    onc = api_as(oncologist_a)
    assert onc.post(f"/api/doses/{dose.pk}/override/", {}).status_code == 400
    response = onc.post(f"/api/doses/{dose.pk}/override/", {"reason": "Platelets stable at 40 for months; ITP"})
    assert response.status_code == 200
    body = response.json()
    assert body["gate"]["verdict"] == "overridden"
    assert any("Platelets 40 10*3/uL < 50" in r for r in body["gate"]["reasons"])
    assert tech.post(f"/api/preparations/{prep.pk}/start/").status_code == 200


def test_cleared_dose_cannot_be_overridden(api_as, oncologist_a, nurse_a, patient_a, technicians):
    dose = first_dose(start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w"))
    clear_pre_dose(dose, nurse_a, *technicians)
    assert api_as(oncologist_a).post(f"/api/doses/{dose.pk}/override/", {"reason": "why"}).status_code == 409


def test_reschedule_moves_doses_and_their_tests_keeping_the_old_ones(api_as, oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Nivolumab 240 mg q2w")
    second = course.doses.get(number=2)
    old_tests = [link.monitoring_test for link in second.monitoring_links.all()]
    new_time = second.planned_at + timedelta(days=7)
    response = api_as(oncologist_a).post(
        f"/api/courses/{course.pk}/reschedule/", {"dose": second.pk, "planned_at": new_time.isoformat()}
    )
    assert response.status_code == 200, response.content
    assert [d["number"] for d in response.json()] == list(range(2, 27))
    second.refresh_from_db()
    assert second.planned_at == new_time
    assert course.doses.get(number=3).planned_at - course.doses.get(number=1).planned_at == timedelta(days=35)
    for test in old_tests:
        test.refresh_from_db()
        assert test.status == MonitoringTestStatus.CANCELLED
        assert "rescheduled" in test.cancel_reason
    fresh = [
        link.monitoring_test for link in second.monitoring_links.all() if link.monitoring_test.status == "scheduled"
    ]
    assert len(fresh) == len(old_tests)
    assert all(t.due_at == new_time - timedelta(hours=24) for t in fresh)


def test_stopping_a_course_cancels_what_depends_on_it(api_as, oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w")
    client = api_as(oncologist_a)
    assert client.post(f"/api/courses/{course.pk}/stop/", {}).status_code == 400
    assert client.post(f"/api/courses/{course.pk}/stop/", {"reason": "Progression"}).status_code == 200
    assert not course.doses.filter(status="planned").exists()
    assert not CourseMonitoringTest.objects.filter(course=course, monitoring_test__status="scheduled").exists()
    assert course.doses.count() == 35  # nothing deleted
    assert client.post(f"/api/courses/{course.pk}/stop/", {"reason": "again"}).status_code == 409


def test_weight_change_flags_the_order_for_recalculation(api_as, oncologist_a, nurse_a, patient_a, technicians):
    course = start_course(patient_a, oncologist_a, "Ipilimumab 3 mg/kg q3w x4")
    dose = first_dose(course)
    prep = live_preparation(dose)
    assert prep.dose_mg == Decimal("200.0")  # 3 mg/kg x 70 kg = 210 mg, within 10 % of the 200 mg vial
    assert prep.calculation["weight_kg"] == "70.0"
    assert prep.calculation["calculated_mg"].startswith("210")
    clear_pre_dose(dose, nurse_a, *technicians)
    patient_a.weight_kg = Decimal("80.0")  # +14 %
    patient_a.save()
    tech = api_as(technicians[0])
    response = tech.post(f"/api/preparations/{prep.pk}/start/")
    assert response.status_code == 409
    assert "recalculate" in response.json()["detail"]
    prep.refresh_from_db()
    assert prep.recalculation_needed is True
    response = tech.post(f"/api/preparations/{prep.pk}/recalculate/")
    assert response.json()["dose_mg"] == "250.0"  # 240 mg rounds to 200 + 50 mg vials (4.2 %)
    assert response.json()["volume_to_draw_ml"] == "50.0"
    course.refresh_from_db()
    assert course.weight_kg_at_start == Decimal("80.0")
    assert tech.post(f"/api/preparations/{prep.pk}/start/").status_code == 200


def test_other_team_cannot_see_courses_or_preparations(api_as, oncologist_a, nurse_b, patient_a):
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w")
    prep = live_preparation(first_dose(course))
    client = api_as(nurse_b)
    assert client.get(f"/api/courses/{course.pk}/").status_code == 404
    assert client.get(f"/api/preparations/{prep.pk}/").status_code == 404
    assert api_as(nurse_b).post("/api/courses/", {}).status_code == 403
