"""Lab pattern rules as data: HLH/MAS suspicion on CAR-T daily labs (orders.patterns, orders 0006)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.models import Alert
from monitoring.models import LabTest
from orders.choices import LabPatternChange
from orders.models import LabPatternCondition, LabPatternMatch, LabPatternRule, TreatmentCourse
from orders.patterns import (
    Point,
    evaluate_condition,
    lab_pattern_rule_revise,
    lab_patterns_check,
)
from orders.versioning import RuleVersionConflict
from results.models import Result
from results.services import ResultEntry, results_enter, results_verify
from specimens.services import specimens_collect
from tests import factories
from tests.orders.helpers import first_dose, start_course

pytestmark = pytest.mark.django_db

CAR_T = "Axicabtagene ciloleucel single infusion"
HLH = "hlh-mas-ferritin-fibrinogen"
CARHLH = "carhlh-ferritin-10000"


@pytest.fixture
def car_t(oncologist_a, patient_a) -> TreatmentCourse:
    # Here the course itself, overriding the conftest's car_t (the course's ordered bag).
    return start_course(patient_a, oncologist_a, CAR_T, in_hours=1, chain_of_identity="COI-2026-000321")


def verify(patient, lab, nurse, at: datetime, **values: str) -> list[Result]:
    """Draw, result and verify analytes at `at` (ferritin=ng/mL, fibrinogen=mg/dL): the verification is `now`."""
    units = {"Ferritin": "ng/mL", "Fibrinogen": "mg/dL"}
    tests = {name.capitalize(): factories.make_test(patient, name=name.capitalize(), due_at=at) for name in values}
    specimens = specimens_collect(
        patient=patient, wristband=patient.mrn, monitoring_tests=list(tests.values()), user=nurse, now=at
    )
    entries = [
        ResultEntry(specimen, test.lab_test, values[test.lab_test.name.lower()], units[test.lab_test.name])
        for specimen in specimens
        for test in specimen.monitoring_tests.select_related("lab_test")
    ]
    rows = results_enter(entries=entries, user=lab[0], now=at)
    return results_verify(results=rows, user=lab[1], now=at).verified


def pattern_alerts(key: str | None = None):
    alerts = Alert.objects.filter(kind=AlertKind.LAB_PATTERN)
    if key is not None:
        matches = LabPatternMatch.objects.filter(rule_key=key).values_list("pk", flat=True)
        alerts = alerts.filter(subject_id__in=list(matches))
    return alerts


def test_hlh_fires_once_on_steep_ferritin_rise_with_falling_fibrinogen(car_t, technicians, nurse_a, oncologist_a):
    patient = car_t.patient
    t0 = first_dose(car_t).planned_at + timedelta(hours=20)  # day 0
    verify(patient, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    verify(patient, technicians, nurse_a, t0 + timedelta(hours=30), fibrinogen="232")  # -42 %: one condition only
    assert not pattern_alerts().exists()
    verify(patient, technicians, nurse_a, t0 + timedelta(hours=36), ferritin="3100")  # x3.1 in 36 h: both hold
    alert = pattern_alerts().get()
    assert alert.audience == AlertAudience.ONCOLOGISTS
    assert alert.severity == AlertSeverity.HIGH
    assert alert.patient_id == patient.pk
    assert alert.subject_type == ContentType.objects.get_for_model(LabPatternMatch)
    assert alert.summary == (
        "HLH/MAS suspected: Ferritin 3,100 ng/mL (\u00d73.1 in 36 h), Fibrinogen 232 mg/dL (\u221242 % in 30 h)"
    )
    match = LabPatternMatch.objects.get(pk=alert.subject_id)
    assert (match.course, match.rule_key, match.rule.version) == (car_t, HLH, 1)
    assert [v["lab_test"] for v in match.values] == ["Ferritin", "Fibrinogen"]
    assert match.values[0]["measure"].startswith("3.1")

    # the same episode: still rising, still low, a later day - no second alert
    verify(patient, technicians, nurse_a, t0 + timedelta(hours=44), ferritin="6200", fibrinogen="150")
    assert pattern_alerts(HLH).count() == 1
    assert LabPatternMatch.objects.filter(course=car_t, rule_key=HLH).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        LabPatternMatch.objects.create(
            rule=match.rule, rule_key=HLH, patient=patient, course=car_t, matched_at=t0, summary="again"
        )


def test_hlh_does_not_fire_on_a_ferritin_rise_alone(car_t, technicians, nurse_a):
    t0 = first_dose(car_t).planned_at + timedelta(hours=2)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=24), ferritin="4000", fibrinogen="380")  # -5 %
    assert not pattern_alerts().exists()


def test_hlh_does_not_fire_without_fibrinogen_results(car_t, technicians, nurse_a):
    t0 = first_dose(car_t).planned_at + timedelta(hours=2)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="1000")
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=24), ferritin="4000")
    assert not pattern_alerts().exists()


def test_hlh_ignores_results_older_than_the_window(car_t, technicians, nurse_a):
    t0 = first_dose(car_t).planned_at + timedelta(hours=2)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=49), ferritin="3100", fibrinogen="232")
    assert not pattern_alerts().exists()


def test_hlh_does_not_fire_for_a_checkpoint_inhibitor_course(oncologist_a, patient_a, technicians, nurse_a):
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=1)
    t0 = first_dose(course).planned_at + timedelta(hours=2)
    verify(patient_a, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    verify(patient_a, technicians, nurse_a, t0 + timedelta(hours=36), ferritin="12400", fibrinogen="232")
    assert not pattern_alerts().exists()
    assert not LabPatternMatch.objects.exists()


def test_hlh_does_not_fire_after_day_14(car_t, technicians, nurse_a):
    t0 = first_dose(car_t).planned_at + timedelta(days=15, hours=1)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=24), ferritin="3100", fibrinogen="232")
    assert not pattern_alerts().exists()


def test_carhlh_ferritin_above_10000_is_its_own_episode(car_t, technicians, nurse_a):
    t0 = first_dose(car_t).planned_at + timedelta(hours=30)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="10000")  # not above
    assert not pattern_alerts().exists()
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=6), ferritin="10001")
    alert = pattern_alerts(CARHLH).get()
    assert alert.audience == AlertAudience.ONCOLOGISTS
    assert alert.summary.startswith("HLH/MAS suspected (carHLH")
    assert "Ferritin 10,001 ng/mL (> 10,000 ng/mL)" in alert.summary
    assert not pattern_alerts(HLH).exists()  # x1.0: no steep rise


def test_an_inactive_rule_does_not_fire(car_t, technicians, nurse_a):
    LabPatternRule.objects.filter(key=CARHLH).update(active=False)
    t0 = first_dose(car_t).planned_at + timedelta(hours=30)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="20000")
    assert not pattern_alerts().exists()


def test_rule_versions_are_frozen():
    rule = LabPatternRule.objects.get(key=HLH)
    with pytest.raises(Exception, match="pgtrigger"), transaction.atomic():
        LabPatternRule.objects.filter(pk=rule.pk).update(message="changed")
    with pytest.raises(Exception, match="pgtrigger"), transaction.atomic():
        LabPatternCondition.objects.filter(rule=rule).update(threshold=3)
    LabPatternRule.objects.filter(pk=rule.pk).update(active=False)  # switching off is allowed


def test_a_revised_rule_is_a_new_version_and_the_episode_stays_one(car_t, technicians, nurse_a, oncologist_a):
    t0 = first_dose(car_t).planned_at + timedelta(hours=2)
    verify(car_t.patient, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=24), ferritin="2500", fibrinogen="290")
    assert pattern_alerts(HLH).count() == 1
    old = LabPatternRule.objects.get(key=HLH)
    ferritin = LabTest.objects.get(name="Ferritin")
    stricter = [
        LabPatternCondition(lab_test=ferritin, change=LabPatternChange.RISE_FACTOR, threshold=3, within_hours=72),
        *[c for c in old.conditions.all() if c.lab_test_id != ferritin.pk],
    ]
    new = lab_pattern_rule_revise(
        rule=old, changes={"source": "site policy (GK) 2027"}, conditions=stricter, user=oncologist_a, now=t0
    )
    old.refresh_from_db()
    assert (new.key, new.version, old.superseded_by, old.active) == (HLH, 2, new, False)
    assert set(new.drugs.all()) == set(old.drugs.all())
    assert {(c.lab_test.name, c.threshold, c.within_hours) for c in new.conditions.all()} == {
        ("Ferritin", Decimal(3), 72),
        ("Fibrinogen", Decimal(25), 48),
    }
    assert {(c.lab_test.name, c.threshold) for c in old.conditions.all()} == {
        ("Ferritin", Decimal(2)),
        ("Fibrinogen", Decimal(25)),
    }
    verify(car_t.patient, technicians, nurse_a, t0 + timedelta(hours=30), ferritin="4000", fibrinogen="250")
    assert pattern_alerts(HLH).count() == 1  # same course, same key: the same episode
    with pytest.raises(RuleVersionConflict):
        lab_pattern_rule_revise(rule=old, changes={}, user=oncologist_a, now=t0)


def test_the_check_is_set_based(oncologist_a, team_a, technicians, nurse_a):
    patients = [factories.make_patient(team_a) for _ in range(3)]
    courses = [
        start_course(p, oncologist_a, CAR_T, in_hours=1, chain_of_identity=f"COI-2026-00090{n}")
        for n, p in enumerate(patients)
    ]
    t0 = first_dose(courses[0]).planned_at + timedelta(hours=2)
    for patient in patients:
        verify(patient, technicians, nurse_a, t0, ferritin="1000", fibrinogen="400")
    ferritin = LabTest.objects.get(name="Ferritin").pk
    with CaptureQueriesContext(connection) as one:
        lab_patterns_check(patient_ids=[patients[0].pk], lab_test_ids=[ferritin], now=t0)
    with CaptureQueriesContext(connection) as three:
        lab_patterns_check(patient_ids=[p.pk for p in patients], lab_test_ids=[ferritin], now=t0)
    assert len(three.captured_queries) == len(one.captured_queries) <= 8


# --- each condition kind at, just below and just above its threshold -------------------------------------------

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
FERRITIN = LabTest(pk=1, name="Ferritin", loinc_code="2276-4")
FIBRINOGEN = LabTest(pk=2, name="Fibrinogen", loinc_code="3255-7")


def _condition(change: str, threshold: str, test: LabTest = FERRITIN, unit: str = "", hours: int = 48):
    return LabPatternCondition(
        lab_test=test, change=change, threshold=Decimal(threshold), unit=unit, within_hours=hours
    )


def _points(*values: str, unit: str = "ng/mL", hours_apart: int = 12) -> list[Point]:
    start = NOW - timedelta(hours=hours_apart * (len(values) - 1))
    return [
        Point(n, Decimal(v), unit, 0, start + timedelta(hours=hours_apart * n)) for n, v in enumerate(values, start=0)
    ]


@pytest.mark.parametrize(
    ("change", "threshold", "values", "fires"),
    [
        (LabPatternChange.RISE_FACTOR, "2", ("1000", "2000"), True),  # at: x2.0
        (LabPatternChange.RISE_FACTOR, "2", ("1000", "1999"), False),  # just below
        (LabPatternChange.RISE_FACTOR, "2", ("1000", "2001"), True),  # just above
        (LabPatternChange.RISE_FACTOR, "2", ("500", "1500", "1000"), True),  # latest / lowest, not / previous
        (LabPatternChange.RISE_FACTOR, "2", ("2000",), False),  # one value: no rise
        (LabPatternChange.FALL_PERCENT, "25", ("400", "300"), True),  # at: -25 %
        (LabPatternChange.FALL_PERCENT, "25", ("400", "301"), False),  # just below: -24.75 %
        (LabPatternChange.FALL_PERCENT, "25", ("400", "299"), True),  # just above
        (LabPatternChange.FALL_PERCENT, "25", ("300", "400", "300"), True),  # from the highest in the window
        (LabPatternChange.ABOVE, "10000", ("10000",), False),  # at: not above
        (LabPatternChange.ABOVE, "10000", ("9999",), False),
        (LabPatternChange.ABOVE, "10000", ("10001",), True),
        (LabPatternChange.ABOVE, "10000", ("20000", "9000"), False),  # the latest decides
        (LabPatternChange.BELOW, "150", ("150",), False),  # at: not below
        (LabPatternChange.BELOW, "150", ("149",), True),
        (LabPatternChange.BELOW, "150", ("151",), False),
    ],
)
def test_condition_thresholds(change, threshold, values, fires):
    assert (evaluate_condition(_condition(change, threshold), _points(*values), NOW) is not None) is fires


def test_condition_window_ends_now_and_reaches_back_within_hours():
    condition = _condition(LabPatternChange.RISE_FACTOR, "2", hours=24)
    assert evaluate_condition(condition, _points("1000", "3000", hours_apart=24), NOW) is not None  # exactly 24 h
    assert evaluate_condition(condition, _points("1000", "3000", hours_apart=25), NOW) is None
    future = [*_points("1000"), Point(9, Decimal(3000), "ng/mL", 0, NOW + timedelta(minutes=1))]
    assert evaluate_condition(condition, future, NOW) is None


def test_absolute_threshold_is_converted_to_the_result_unit():
    below_1_5_g_per_l = _condition(LabPatternChange.BELOW, "1.5", FIBRINOGEN, unit="g/L")
    assert evaluate_condition(below_1_5_g_per_l, _points("149", unit="mg/dL"), NOW) is not None
    assert evaluate_condition(below_1_5_g_per_l, _points("150", unit="mg/dL"), NOW) is None
    not_convertible = _condition(LabPatternChange.BELOW, "1.5", FIBRINOGEN, unit="U/L")
    assert evaluate_condition(not_convertible, _points("10", unit="mg/dL"), NOW) is None
