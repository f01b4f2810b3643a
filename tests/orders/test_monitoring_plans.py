"""Monitoring plans that match the guidelines: the full CMP, the new tests' result specs, baseline labs before
dose 1 of a checkpoint inhibitor, the CAR-T daily labs (orders 0005, results 0005, monitoring 0010)."""

from __future__ import annotations

import importlib
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps

from monitoring.models import LabTest
from orders.choices import RuleKind
from orders.models import CourseMonitoringTest, LabPatternCondition, LabPatternRule, MonitoringRule, Regimen
from results import ctcae
from results.choices import ResultFlag
from results.interpretation import interpret
from results.models import ReferenceRange, ResultSpec
from specimens.models import TestSpecimenRequirement as SpecimenRequirement
from tests.orders.helpers import first_dose, start_course

pytestmark = pytest.mark.django_db

# LOINC 24323-8 "Comprehensive metabolic 2000 panel - Serum or Plasma": its 14 members.
CMP_COMPONENTS = {
    "1751-7": "Albumin", "6768-6": "ALP", "1742-6": "ALT", "1920-8": "AST", "3094-0": "BUN", "17861-6": "Calcium",
    "2028-9": "Bicarbonate (CO2)", "2075-0": "Chloride", "2160-0": "Creatinine", "2345-7": "Glucose",
    "2823-3": "Potassium", "2885-2": "Total protein", "2951-2": "Sodium", "1975-2": "Total bilirubin",
}  # fmt: skip
NEW_TESTS = {
    # name: (UCUM unit, decimals, CTCAE low term, CTCAE high term, turnaround hours)
    "Calcium": ("mg/dL", 1, "Hypocalcemia", "Hypercalcemia", 4),
    "Albumin": ("g/dL", 1, "Hypoalbuminemia", "", 4),
    "Total protein": ("g/dL", 1, "", "", 4),
    "Bicarbonate (CO2)": ("mmol/L", 0, "", "", 2),
    "Chloride": ("mmol/L", 0, "", "", 2),
    "BUN": ("mg/dL", 0, "", "", 4),
    "Troponin I (high-sensitivity)": ("ng/L", 0, "", "", 1),
    "Cortisol": ("ug/dL", 1, "", "", 24),
    "Uric acid": ("mg/dL", 1, "", "Hyperuricemia", 4),
    "Phosphate": ("mg/dL", 1, "", "", 4),
    "Magnesium": ("mg/dL", 1, "Hypomagnesemia", "Hypermagnesemia", 4),
    "PT": ("s", 1, "", "", 2),
}
BASELINE = {"TSH": True, "Free T4": True, "HbA1c": True, "CK": True, "Troponin I (high-sensitivity)": True}
BASELINE_ORDERED = {**BASELINE, "Cortisol": False}  # cortisol is ordered, it does not gate dose 1
CAR_T = "Axicabtagene ciloleucel single infusion"
CMP = "Comprehensive metabolic panel"
CAR_T_NEW_DAILY = ["PT", "INR", "aPTT", "Fibrinogen", "LDH", "Uric acid", "Phosphate", "Magnesium"]


def _links(course):
    return list(
        CourseMonitoringTest.objects.filter(course=course).select_related("monitoring_test__lab_test", "dose", "rule")
    )


def test_cmp_has_all_14_components_of_loinc_24323_8():
    cmp = LabTest.objects.get(loinc_code="24323-8")
    components = {t.loinc_code: t.name for t in cmp.components.all()}
    assert components == CMP_COMPONENTS
    # every component can be resulted: a spec and a reference range
    assert ResultSpec.objects.filter(lab_test__in=cmp.components.all()).count() == 14
    assert set(
        ReferenceRange.objects.filter(lab_test__in=cmp.components.all()).values_list("lab_test__name", flat=True)
    ) == set(CMP_COMPONENTS.values())


@pytest.mark.parametrize("name", list(NEW_TESTS))
def test_new_test_has_spec_range_specimen_and_turnaround(name):
    unit, decimals, low_term, high_term, hours = NEW_TESTS[name]
    test = LabTest.objects.get(name=name)
    spec = test.result_spec
    assert (spec.unit, spec.decimal_places, spec.ctcae_term_low, spec.ctcae_term_high) == (
        unit, decimals, low_term, high_term,
    )  # fmt: skip
    rng = ReferenceRange.objects.filter(lab_test=test).first()
    assert rng is not None
    assert rng.low is not None
    assert rng.high is not None
    for term in filter(None, (low_term, high_term)):
        assert term in ctcae.TERMS  # results.ctcae can grade it, in the spec's unit
        assert ctcae.grade(term, rng.low, unit=spec.unit, lln=float(rng.low), uln=float(rng.high)) is not None
    assert SpecimenRequirement.objects.filter(lab_test=test).exists()
    assert test.turnaround == timedelta(hours=hours)


def test_troponin_upper_limit_is_the_sex_specific_99th_percentile():
    ranges = {r.sex: r for r in ReferenceRange.objects.filter(lab_test__name="Troponin I (high-sensitivity)")}
    assert ranges["F"].high == Decimal(16)
    assert ranges["M"].high == Decimal(34)


@pytest.mark.parametrize(
    ("name", "value", "flag", "grade"),
    [
        ("Calcium", "6.5", ResultFlag.CRITICAL_LOW, 3),  # critical limit (clinical-sources), G3 < 7.0 mg/dL
        ("Calcium", "6.6", ResultFlag.LOW, 3),
        ("Calcium", "13.0", ResultFlag.CRITICAL_HIGH, 3),  # > 12.5 mg/dL: G3
        ("Calcium", "12.9", ResultFlag.HIGH, 3),
        ("Calcium", "9.5", ResultFlag.NORMAL, 0),
        ("Magnesium", "1.0", ResultFlag.CRITICAL_LOW, 2),  # < 1.2 mg/dL: G2
        ("Magnesium", "4.9", ResultFlag.CRITICAL_HIGH, 3),
        ("Phosphate", "1.0", ResultFlag.CRITICAL_LOW, None),  # no lab-gradable CTCAE term
        ("Phosphate", "1.1", ResultFlag.LOW, None),
        ("Albumin", "2.9", ResultFlag.LOW, 2),
        ("Uric acid", "5.0", ResultFlag.NORMAL, 0),
        ("Bicarbonate (CO2)", "10", ResultFlag.CRITICAL_LOW, None),
        ("Chloride", "120", ResultFlag.CRITICAL_HIGH, None),
    ],
)
def test_new_result_specs_flag_and_grade(name, value, flag, grade):
    test = LabTest.objects.get(name=name)
    rng = ReferenceRange.objects.filter(lab_test=test).order_by("sex").first()
    meaning = interpret(spec=test.result_spec, value=Decimal(value), rng=rng, baseline=None)
    assert meaning.flag == flag
    assert meaning.ctcae_grade == grade


def test_every_checkpoint_inhibitor_plan_has_baseline_labs():
    targets = ["PD-1", "PD-L1", "CTLA-4"]
    checkpoint_inhibitors = Regimen.objects.filter(drug__cell_therapy=False, drug__target__in=targets)
    assert checkpoint_inhibitors.filter(name="Nivolumab 1 mg/kg q3w x4 (with ipilimumab)").exists()
    for regimen in checkpoint_inhibitors:
        rules = {r.lab_test.name: r for r in regimen.monitoring_rules.filter(kind=RuleKind.BASELINE)}
        tsh_before_dose_1 = regimen.monitoring_rules.filter(
            lab_test__name="TSH", kind__in=[RuleKind.PRE_DOSE, RuleKind.EVERY_NTH_DOSE]
        ).exists()
        expected = {n: g for n, g in BASELINE_ORDERED.items() if not (n == "TSH" and tsh_before_dose_1)}
        assert {n: r.gates_dose for n, r in rules.items()} == expected, regimen.name
        assert {r.lead_hours for r in rules.values()} == {72}
        panels = regimen.monitoring_rules.filter(lab_test__name__in=["CBC with differential", CMP])
        kinds = set(panels.values_list("kind", flat=True))
        assert kinds == {RuleKind.PRE_DOSE}
    assert not MonitoringRule.objects.filter(regimen__drug__cell_therapy=True, kind=RuleKind.BASELINE).exists()
    # the step-up bispecifics are no checkpoint inhibitors: a CBC before each dose, no endocrine baseline
    assert not MonitoringRule.objects.filter(regimen__drug__name__in=["Teclistamab", "Epcoritamab"],
                                             kind=RuleKind.BASELINE).exists()  # fmt: skip


def test_q2w_and_ipilimumab_plans_get_no_second_tsh_before_dose_1():
    for name in ("Nivolumab 240 mg q2w", "Ipilimumab 3 mg/kg q3w x4"):
        regimen = Regimen.objects.get(name=name)
        assert regimen.monitoring_rules.filter(lab_test__name="TSH").count() == 1
        assert regimen.monitoring_rules.filter(lab_test__name="Free T4", kind=RuleKind.BASELINE).exists()


def test_plan_and_rule_seeds_are_idempotent():
    def counts():
        return (
            MonitoringRule.objects.count(),
            LabPatternRule.objects.count(),
            LabPatternCondition.objects.count(),
            ResultSpec.objects.count(),
            ReferenceRange.objects.count(),
            SpecimenRequirement.objects.count(),
        )

    before = counts()
    for module in (
        "results.migrations.0005_seed_new_tests",
        "monitoring.migrations.0010_seed_new_turnaround",
        "orders.migrations.0005_monitoring_plans",
        "orders.migrations.0006_lab_pattern_rules",
    ):
        importlib.import_module(module).seed(django_apps, None)
    assert counts() == before


def test_pembrolizumab_course_schedules_baseline_labs_once_before_dose_1(oncologist_a, patient_a):
    """Needs the BASELINE kind in orders.services.courses._rule_due_times (one test, lead_hours before dose 1,
    on dose 1)."""
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=96)
    dose_1 = first_dose(course)
    baseline = [link for link in _links(course) if link.rule.kind == RuleKind.BASELINE]
    assert Counter(link.monitoring_test.lab_test.name for link in baseline) == Counter(
        dict.fromkeys(BASELINE_ORDERED, 1)
    )
    for link in baseline:
        assert link.dose == dose_1, link.monitoring_test.lab_test.name
        assert link.monitoring_test.due_at == dose_1.planned_at - timedelta(hours=72)
    # the pre-dose CBC and CMP still cover dose 1
    pre_dose_1 = Counter(
        link.monitoring_test.lab_test.name
        for link in _links(course)
        if link.dose == dose_1 and link.rule.kind == RuleKind.PRE_DOSE
    )
    assert pre_dose_1 == Counter({"CBC with differential": 1, "Comprehensive metabolic panel": 1})


def test_car_t_course_schedules_the_new_daily_labs_day_0_to_14(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, CAR_T, chain_of_identity="COI-2026-000777")
    infusion = first_dose(course).planned_at
    links = _links(course)
    for name in CAR_T_NEW_DAILY:
        mine = [link for link in links if link.monitoring_test.lab_test.name == name]
        mine.sort(key=lambda link: link.monitoring_test.due_at)
        assert [link.monitoring_test.due_at - infusion for link in mine] == [timedelta(days=d) for d in range(15)], name
        assert all(link.dose is None and not link.rule.gates_dose for link in mine), name
