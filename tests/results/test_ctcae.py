"""CTCAE v5.0 lab grading (results.ctcae): pure functions, no database."""

import copy
import json
import pickle
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from results import ctcae
from results.ctcae import SYSTEMS, TERMS, CtcaeGrade, UnknownTermError, _restore, grade, grade_detail, unit_for
from results.ctcae_table import TERMS_V5

ALT = "Alanine aminotransferase increased"
AST = "Aspartate aminotransferase increased"
NEUTROPHILS = "Neutrophil count decreased"
PLATELETS = "Platelet count decreased"
REFERENCE = Path(__file__).parent / "data" / "ctcae_v5_terms.json"  # CTCAE v5.0 lab terms: the tests' oracle


def graded(term: str, value: float, **kwargs: Any) -> CtcaeGrade:
    """grade() for a case that must get a grade."""
    result = grade(term, value, **kwargs)
    assert result is not None
    return result


# ------------------------------------------------------------------------------------------ the examples


@pytest.mark.parametrize(
    ("value", "expected"),
    [(40, 0), (30, 0), (40.01, 1), (120, 1), (120.4, 2), (140, 2), (200, 2), (240, 3), (800, 3), (801, 4), (840, 4)],
)
def test_alt_multiples_of_uln(value, expected):
    # >ULN - 3.0 x ULN: 1; >3.0 - 5.0: 2; >5.0 - 20.0: 3; >20.0: 4 (ULN 40: 3.5x = 140, 6x = 240, 21x = 840)
    assert grade(ALT, value, unit="U/L", uln=40) == expected


def test_alt_exactly_three_times_uln_is_grade_1_and_just_above_is_grade_2():
    assert grade(ALT, 3.0 * 37, unit="U/L", uln=37) == 1
    assert grade(ALT, 3.01 * 37, unit="U/L", uln=37) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100, 0), (140, 0), (149.9, 0), (150, 1), (160, 1), (300, 1), (350, 2), (500, 2), (600, 3), (2000, 3), (2100, 4)],
)
def test_alt_with_abnormal_baseline_grades_against_the_baseline(value, expected):
    # ULN 40, baseline 100 (abnormal): 1.5 - 3.0 x baseline is grade 1 (1.5 included), >3.0 - 5.0 grade 2, ...
    assert grade(ALT, value, unit="U/L", uln=40, baseline=100) == expected


def test_alt_with_normal_baseline_grades_against_the_uln():
    assert grade(ALT, 140, unit="U/L", uln=40, baseline=30) == 2
    assert grade(ALT, 140, unit="U/L", uln=40, baseline=40) == 2  # at the ULN is still normal
    assert grade(AST, 60, unit="U/L", uln=40, baseline=50) == 0  # abnormal baseline: 1.2 x baseline


def test_baseline_cannot_be_judged_without_the_uln():
    assert grade(ALT, 300, unit="U/L", baseline=100) is None
    assert grade(ALT, 300, unit="U/L") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2.5, 0), (2.0, 0), (1.99, 1), (1.5, 1), (1.49, 2), (1.0, 2), (0.99, 3), (0.5, 3), (0.49, 4)],
)
def test_neutrophils_with_lln(value, expected):
    assert grade(NEUTROPHILS, value, unit="10*9/L", lln=2.0) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(100, 0), (99, 1), (75, 1), (74, 2), (50, 2), (49, 3), (25, 3), (24, 4)]
)
def test_platelets_with_lln(value, expected):
    assert grade(PLATELETS, value, unit="10*9/L", lln=100) == expected


def test_anemia_grade_3_is_below_8_g_per_dl():
    assert grade("Anemia", 8.0, unit="g/dL", lln=12.0) == 2
    assert grade("Anemia", 7.99, unit="g/dL", lln=12.0) == 3
    assert grade("Anemia", 10.0, unit="g/dL", lln=12.0) == 1
    assert grade("Anemia", 12.0, unit="g/dL", lln=12.0) == 0


def test_decreased_terms_without_lln_grade_only_2_to_4():
    assert grade(NEUTROPHILS, 1.49, unit="10*9/L") == 2
    assert grade(NEUTROPHILS, 0.3, unit="10*9/L") == 4
    assert grade(NEUTROPHILS, 1.5, unit="10*9/L") is None  # grade 1 or 0: needs the LLN
    assert grade(NEUTROPHILS, 4.0, unit="10*9/L") is None
    assert grade(NEUTROPHILS, 4.0, unit="10*9/L", lln=2.0) == 0
    assert grade("Anemia", 11.0, unit="g/dL") is None
    assert grade("Haptoglobin decreased", 0.1, unit="g/L") is None  # "<LLN" is its only criterion
    assert grade("Hypokalemia", 3.2, unit="mmol/L") is None
    assert grade("Hypokalemia", 2.9, unit="mmol/L") == 3


def test_increased_terms_without_uln():
    assert grade(ALT, 1000, unit="U/L") is None
    assert grade("Hyperkalemia", 6.5, unit="mmol/L") == 3
    assert grade("Hyperkalemia", 5.2, unit="mmol/L") is None
    assert grade("Leukocytosis", 50, unit="10*9/L") == 0  # no grade below 3 exists: no ULN needed
    assert grade("Hypertriglyceridemia", 120, unit="mg/dL") == 0


# ------------------------------------------------------------------------------------- every term, both systems

# (term, system, value, lln, uln, baseline, expected grade, expected lab_only); the unit is unit_for(term, system).
CASES = [
    ("Anemia", "SI", 95, 120, None, None, 2, True),
    ("Anemia", "USCV", 7.9, 12, None, None, 3, True),
    ("Leukocytosis", "SI", 120, None, None, None, 3, True),
    ("Leukocytosis", "USCV", 50, None, None, None, 0, False),
    ("Activated partial thromboplastin time prolonged", "SI", 100, None, 40, None, 2, True),  # 2.5 x: still 2
    ("Activated partial thromboplastin time prolonged", "USCV", 101, None, 40, None, 3, True),
    (ALT, "SI", 130, None, 40, None, 2, False),
    (ALT, "USCV", 45, None, 40, None, 1, False),
    ("Alkaline phosphatase increased", "SI", 100, None, 40, None, 1, False),  # 2.5 x: still 1
    ("Alkaline phosphatase increased", "USCV", 400, None, 120, 200, 1, False),  # abnormal baseline, 2.0 x
    (AST, "SI", 900, None, 40, None, 4, False),
    (AST, "USCV", 30, None, 40, None, 0, False),
    ("Blood bilirubin increased", "SI", 70, None, 21, None, 3, False),
    ("Blood bilirubin increased", "USCV", 1.8, None, 1.2, None, 1, False),  # exactly 1.5 x (no float error)
    ("Blood lactate dehydrogenase increased", "SI", 300, None, 250, None, 1, False),
    ("Blood lactate dehydrogenase increased", "USCV", 200, None, 250, None, 0, False),
    ("CD4 lymphocytes decreased", "SI", 0.15, None, None, None, 3, False),
    ("CD4 lymphocytes decreased", "USCV", 40, None, None, None, 4, False),
    ("Cholesterol high", "SI", 8.0, None, 5.2, None, 2, False),
    ("Cholesterol high", "USCV", 250, None, 200, None, 1, False),
    ("CPK increased", "SI", 1100, None, 200, None, 3, False),
    ("CPK increased", "USCV", 2001, None, 200, None, 4, False),
    ("Creatinine increased", "SI", 100, None, 110, 60, 2, False),  # 1.67 x baseline, below the ULN
    ("Creatinine increased", "USCV", 1.3, None, 1.2, None, 1, False),
    ("Fibrinogen decreased", "SI", 0.9, 2.0, None, None, 3, False),
    ("Fibrinogen decreased", "USCV", 45, 200, None, None, 4, False),  # absolute < 50 mg/dL
    ("GGT increased", "SI", 130, None, 60, None, 1, False),
    ("GGT increased", "USCV", 301, None, 60, None, 3, False),
    ("Haptoglobin decreased", "SI", 0.2, 0.3, None, None, 1, False),
    ("Haptoglobin decreased", "USCV", 50, 30, None, None, 0, False),
    ("Hemoglobin increased", "SI", 185, None, 165, None, 1, False),  # +20 g/L = +2 g/dL: still 1
    ("Hemoglobin increased", "USCV", 21.0, None, 16.5, None, 3, False),
    ("INR increased", "SI", 1.3, None, None, None, 1, True),
    ("INR increased", "USCV", 2.6, None, None, 1.0, 3, True),
    ("Lipase increased", "SI", 70, None, 60, None, 1, True),
    ("Lipase increased", "USCV", 130, None, 60, None, 3, True),  # assumes signs or symptoms
    ("Lymphocyte count decreased", "SI", 0.6, None, None, None, 2, False),
    ("Lymphocyte count decreased", "USCV", 1.0, 1.0, None, None, 0, False),
    ("Lymphocyte count increased", "SI", 25, None, None, None, 3, False),
    ("Lymphocyte count increased", "USCV", 4.0, None, None, None, 0, False),
    (NEUTROPHILS, "SI", 0.4, None, None, None, 4, False),
    (NEUTROPHILS, "USCV", 1.8, 2.0, None, None, 1, False),
    (PLATELETS, "SI", 60, None, None, None, 2, False),
    (PLATELETS, "USCV", 140, 150, None, None, 1, False),
    ("Serum amylase increased", "SI", 110, None, 100, None, 1, True),
    ("Serum amylase increased", "USCV", 600, None, 100, None, 4, True),
    ("White blood cell decreased", "SI", 2.5, None, None, None, 2, False),
    ("White blood cell decreased", "USCV", 0.9, None, None, None, 4, False),
    ("Acidosis", "SI", 7.32, 7.35, None, None, 1, True),
    ("Acidosis", "USCV", 7.25, None, None, None, 3, True),
    ("Alkalosis", "SI", 7.47, None, 7.45, None, 1, True),
    ("Alkalosis", "USCV", 7.55, None, None, None, 3, True),
    ("Hypercalcemia", "SI", 3.0, None, 2.6, None, 2, True),
    ("Hypercalcemia", "USCV", 11.0, None, 10.5, None, 1, True),
    ("Hypercalcemia (Ionized)", "SI", 1.7, None, 1.3, None, 3, True),
    ("Hypercalcemia (Ionized)", "USCV", 7.5, None, 5.3, None, 4, True),  # 1.87 mmol/L
    ("Hyperkalemia", "SI", 5.8, None, 5.1, None, 2, True),
    ("Hyperkalemia", "USCV", 7.1, None, 5.1, None, 4, True),
    ("Hypermagnesemia", "SI", 1.5, None, 1.05, None, 3, True),
    ("Hypermagnesemia", "USCV", 2.8, None, 2.6, None, 1, True),
    ("Hypernatremia", "SI", 152, None, 145, None, 2, True),
    ("Hypernatremia", "USCV", 146, None, 145, None, 1, True),
    ("Hypertriglyceridemia", "SI", 1.71, None, None, None, 1, True),  # "150 mg/dL - ...": bound included
    ("Hypertriglyceridemia", "USCV", 149, None, None, None, 0, False),
    ("Hyperuricemia", "SI", 500, None, 420, None, 3, True),  # assumes physiologic consequences
    ("Hyperuricemia", "USCV", 6.0, None, 7.0, None, 0, False),
    ("Hypoalbuminemia", "SI", 25, 35, None, None, 2, True),
    ("Hypoalbuminemia", "USCV", 1.9, 3.5, None, None, 3, True),
    ("Hypocalcemia", "SI", 1.6, 2.1, None, None, 3, True),
    ("Hypocalcemia", "USCV", 5.9, 8.5, None, None, 4, True),
    ("Hypocalcemia (Ionized)", "SI", 0.95, 1.12, None, None, 2, True),
    ("Hypocalcemia (Ionized)", "USCV", 4.2, 4.5, None, None, 1, True),  # 1.05 mmol/L
    ("Hypoglycemia", "SI", 2.0, 3.9, None, None, 3, True),
    ("Hypoglycemia", "USCV", 60, 70, None, None, 1, True),
    ("Hypokalemia", "SI", 3.2, 3.5, None, None, 2, True),  # assumes symptomatic
    ("Hypokalemia", "USCV", 2.4, 3.5, None, None, 4, True),
    ("Hypomagnesemia", "SI", 0.45, 0.7, None, None, 2, True),
    ("Hypomagnesemia", "USCV", 0.6, 1.7, None, None, 4, True),
    ("Hyponatremia", "SI", 128, 135, None, None, 3, True),  # assumes symptomatic
    ("Hyponatremia", "USCV", 133, 135, None, None, 1, True),
]


@pytest.mark.parametrize(
    ("term", "system", "value", "lln", "uln", "baseline", "expected", "lab_only"),
    CASES,
    ids=[f"{case[0]}-{case[1]}" for case in CASES],
)
def test_every_term_in_both_unit_systems(term, system, value, lln, uln, baseline, expected, lab_only):
    result = grade(term, value, unit=unit_for(term, system), lln=lln, uln=uln, baseline=baseline)
    assert result == expected
    assert isinstance(result, CtcaeGrade)
    assert result.lab_only is lab_only
    assert result.term == term
    assert result.version == "5.0"


def test_cases_cover_every_term_in_both_systems():
    assert {(case[0], case[1]) for case in CASES} == {(term, system) for term in TERMS for system in SYSTEMS}
    assert len(TERMS) == 40


# --------------------------------------------------------------------------------------------- unit handling


@pytest.mark.parametrize(
    ("value", "unit"),
    [(7.5, "g/dL"), (75, "g/L"), (4.65, "mmol/L"), (Decimal("7.5"), "g/dL"), (7.5, "G/DL"), (75, " g / L ")],
)
def test_hemoglobin_in_any_unit_gives_the_same_grade(value, unit):
    assert grade("Anemia", value, unit=unit) == 3


@pytest.mark.parametrize("unit", ["g/dL", "g/L", "mmol/L"])
def test_hemoglobin_lln_is_converted_with_the_value(unit):
    factor = {"g/dL": 1, "g/L": 10, "mmol/L": 0.6206}[unit]
    assert grade("Anemia", 11.0 * factor, unit=unit, lln=12.0 * factor) == 1
    assert grade("Hemoglobin increased", 19.0 * factor, unit=unit, uln=16.5 * factor) == 2


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (0.8, "10*9/L"),
        (0.8, "10*3/uL"),
        (0.8, "10^9/L"),
        (0.8, "10^3/µL"),
        (800, "/mm3"),
        (800, "/uL"),
        (800, "10*6/L"),
    ],
)
def test_cell_counts_in_any_unit_give_the_same_grade(value, unit):
    assert grade(NEUTROPHILS, value, unit=unit) == 3
    assert grade(NEUTROPHILS, value * 2, unit=unit, lln=value * 2.5) == 1


def test_10_3_per_ml_is_read_as_ucum_10_6_per_l():
    # The reference file's legacy USCV "10^3/mL" is, in UCUM, 10*6/L: the same as /uL and /mm3.
    assert grade(NEUTROPHILS, 800, unit="10^3/mL") == 3
    assert grade(NEUTROPHILS, 800, unit="10*6/L") == 3
    assert grade(NEUTROPHILS, 0.8, unit="10^3/mL") == 4  # 0.8 per uL


@pytest.mark.parametrize(
    ("term", "si_value", "si_unit", "cv_value", "cv_unit", "expected"),
    [
        ("Hypoglycemia", 2.0, "mmol/L", 36, "mg/dL", 3),
        ("Hypercalcemia", 3.2, "mmol/L", 12.9, "mg/dL", 3),
        ("Hypomagnesemia", 0.35, "mmol/L", 0.85, "mg/dL", 3),
        ("Cholesterol high", 11.0, "mmol/L", 425, "mg/dL", 3),
        ("Hypertriglyceridemia", 6.0, "mmol/L", 531, "mg/dL", 3),
        ("Hypoalbuminemia", 19, "g/L", 1.9, "g/dL", 3),
        ("Fibrinogen decreased", 0.45, "g/L", 45, "mg/dL", 4),
        ("Hyperkalemia", 6.5, "mmol/L", 6.5, "meq/L", 3),
        ("Hypocalcemia (Ionized)", 0.85, "mmol/L", 3.4, "mg/dL", 3),
        ("Hypocalcemia", 1.6, "mmol/L", 3.2, "meq/L", 3),
    ],
)
def test_si_and_conventional_units_agree(term, si_value, si_unit, cv_value, cv_unit, expected):
    assert grade(term, si_value, unit=si_unit) == expected
    assert grade(term, cv_value, unit=cv_unit) == expected


def test_a_unit_the_text_gives_thresholds_in_is_compared_without_conversion():
    # CTCAE rounds its SI and conventional numbers independently: 4.9 mmol/L is 7.9 g/dL, yet the mmol/L
    # threshold of grade 3 is 4.9, so 4.92 mmol/L is grade 2 even though it converts to 7.93 g/dL.
    assert grade("Anemia", 4.92, unit="mmol/L") == 2
    assert grade("Anemia", 7.93, unit="g/dL") == 3


def test_missing_or_incompatible_unit_gives_none():
    assert grade("Hyperkalemia", 6.5, unit=None) is None
    assert grade("Hyperkalemia", 6.5, unit="") is None
    assert grade("Hyperkalemia", 6.5, unit="U/L") is None
    assert grade("Hyperkalemia", 6.5, unit="mg/dL") is None
    assert grade(NEUTROPHILS, 0.4, unit=None, lln=2.0) is None
    assert grade(NEUTROPHILS, 40, unit="%", lln=45) is None
    assert grade("Anemia", 7.5, unit="mg") is None
    assert grade(ALT, 140, unit="mmol/L", uln=40) is None  # a unit that is not an enzyme activity


def test_ratio_terms_need_no_unit():
    assert grade(ALT, 140, unit=None, uln=40) == 2
    assert grade("Creatinine increased", 7.3, unit=None, uln=1.2) == 4
    assert grade("Creatinine increased", 330, unit="umol/L", uln=110) == 2  # 3.0 x ULN: still 2


def test_dimensionless_terms_accept_their_units_or_none():
    for unit in (None, "{INR}", "1"):
        assert grade("INR increased", 1.6, unit=unit) == 2
    for unit in (None, "[pH]"):
        assert grade("Acidosis", 7.29, unit=unit) == 3
    assert grade("INR increased", 1.6, unit="s") is None


def test_fibrinogen_without_unit_cannot_rule_out_the_absolute_grade_4():
    assert grade("Fibrinogen decreased", 0.9, unit=None, lln=2.0) is None  # < 50 mg/dL unknown
    assert grade("Fibrinogen decreased", 0.4, unit=None, lln=2.0) == 4  # 0.2 x LLN is grade 4 anyway


# ------------------------------------------------------------------------------------------------- baselines


@pytest.mark.parametrize(
    ("value", "baseline", "expected"),
    [
        (1.0, None, 0),  # below the ULN, no baseline
        (1.0, 0.8, 0),  # 1.25 x baseline
        (1.25, 0.8, 2),  # 1.56 x baseline (AKI) although below the ULN
        (2.5, 0.8, 3),  # 3.1 x baseline; 2.1 x ULN alone would be grade 2
        (2.5, None, 2),
        (7.3, 0.8, 4),  # > 6 x ULN
    ],
)
def test_creatinine_against_baseline(value, baseline, expected):
    assert grade("Creatinine increased", value, unit="mg/dL", uln=1.2, baseline=baseline) == expected


@pytest.mark.parametrize(
    ("value", "baseline", "expected"),
    [
        (1.9, None, 1),  # 0.95 x LLN
        (1.4, None, 2),  # 0.7 x LLN
        (1.4, 2.5, 2),  # normal baseline: LLN multiples
        (1.8, 1.8, 1),  # abnormal baseline (< LLN 2.0), unchanged: 0 by the baseline, 1 by 0.9 x LLN: worst
        (1.9, 1.8, 1),  # risen, still 0.95 x LLN
        (1.6, 1.8, 1),  # 11 % decrease
        (1.35, 1.8, 2),  # 25 % decrease
        (0.9, 1.2, 3),  # 25 % decrease is 2, 0.45 x LLN is 3: worst case 3
        (0.7, 1.0, 3),  # 30 % decrease is 2, 0.35 x LLN is 3
        (0.9, 1.8, 3),  # 50 % decrease
        (0.55, 1.8, 3),  # 69 % decrease
        (0.6, 1.2, 3),  # 50 % decrease
        (0.52, 2.0, 3),  # baseline at the LLN is normal: 0.26 x LLN
        (0.45, 1.8, 4),  # 75 % decrease (and < 50 mg/dL)
        (0.49, 0.6, 4),  # 18 % decrease, but < 50 mg/dL whatever the baseline
    ],
)
def test_fibrinogen_against_baseline(value, baseline, expected):
    assert grade("Fibrinogen decreased", value, unit="g/L", lln=2.0, baseline=baseline) == expected


def test_fibrinogen_baseline_in_conventional_units_and_without_lln():
    # 120 mg/dL from an abnormal 150 (LLN 200): 20 % decrease -> 1, 0.6 x LLN -> 2: the worse, 2.
    assert grade("Fibrinogen decreased", 120, unit="mg/dL", lln=200, baseline=150) == 2
    # 100 from an abnormal 180 (LLN 200): 44 % decrease -> 2, 0.5 x LLN -> 2 (not < 0.5).
    assert grade("Fibrinogen decreased", 100, unit="mg/dL", lln=200, baseline=180) == 2
    assert grade("Fibrinogen decreased", 120, unit="mg/dL", lln=200) == 2
    # A 33 % drop from a normal baseline is not graded by the drop: 160 from 240 with LLN 150 is 0.
    assert grade("Fibrinogen decreased", 160, unit="mg/dL", lln=150, baseline=240) == 0
    # Without the LLN the baseline cannot be judged: only the absolute grade 4 is left.
    assert grade("Fibrinogen decreased", 45, unit="mg/dL", baseline=150) == 4
    assert grade("Fibrinogen decreased", 120, unit="mg/dL", baseline=150) is None


def test_bilirubin_alp_ggt_against_abnormal_baseline():
    assert grade("Blood bilirubin increased", 2.1, unit="mg/dL", uln=1.2, baseline=2.0) == 1  # > 1.0 x baseline
    assert grade("Blood bilirubin increased", 2.0, unit="mg/dL", uln=1.2, baseline=2.0) == 0
    assert grade("Alkaline phosphatase increased", 390, unit="U/L", uln=120, baseline=200) == 0  # 1.95 x
    assert grade("GGT increased", 1100, unit="U/L", uln=60, baseline=100) == 3  # 11 x baseline


def test_inr_baseline_assumes_anticoagulation():
    result = graded("INR increased", 1.1, unit=None, baseline=1.0)
    assert result == 1
    assert result.lab_only
    assert "on anticoagulation" in result.criterion
    assert grade("INR increased", 1.1, unit=None) == 0
    assert graded("INR increased", 1.6, unit=None, baseline=1.0).criterion == "> 1.5"  # plain lab criterion first


# ------------------------------------------------------------------------------------------------- lab_only


def test_lab_only_for_worst_case_assumptions():
    lipase = graded("Lipase increased", 6 * 60, unit="U/L", uln=60)
    assert lipase == 4
    assert lipase.lab_only
    assert lipase.criterion == "> 5.0 x ULN (assuming with signs or symptoms)"
    sodium = graded("Hyponatremia", 127, unit="mmol/L", lln=135)
    assert (sodium, sodium.lab_only) == (3, True)
    uric = graded("Hyperuricemia", 7.5, unit="mg/dL", uln=7.0)
    assert (uric, uric.lab_only) == (3, True)
    potassium = graded("Hypokalemia", 3.4, unit="mmol/L", lln=3.5)
    assert (potassium, potassium.lab_only) == (2, True)


def test_lab_only_where_a_grade_also_needs_clinical_findings():
    anemia = graded("Anemia", 7.0, unit="g/dL")
    assert (anemia, anemia.lab_only) == (3, True)  # grade 4 is "life-threatening consequences" only
    albumin = graded("Hypoalbuminemia", 15, unit="g/L")
    assert (albumin, albumin.lab_only) == (3, True)
    leukocytosis = graded("Leukocytosis", 150, unit="10*3/uL")
    assert (leukocytosis, leukocytosis.lab_only) == (3, True)
    hyperkalemia = graded("Hyperkalemia", 7.5, unit="mmol/L")
    assert (hyperkalemia, hyperkalemia.lab_only) == (4, True)  # "; life-threatening consequences"
    aptt = graded("Activated partial thromboplastin time prolonged", 45, unit="s", uln=40)
    assert (aptt, aptt.lab_only) == (1, True)  # grade 3 adds "bleeding"


def test_purely_laboratory_terms_are_not_lab_only():
    assert graded(NEUTROPHILS, 0.3, unit="10*9/L").lab_only is False
    assert graded(ALT, 900, unit="U/L", uln=40).lab_only is False
    assert graded("Hypertriglyceridemia", 6.0, unit="mmol/L").lab_only is True  # grade 4 mentions consequences
    assert graded("Anemia", 13, unit="g/dL", lln=12).lab_only is False  # grade 0 never is


# -------------------------------------------------------------------------------------- edge cases and errors


def test_boundaries_are_exact_for_floats_and_decimals():
    assert grade("Blood bilirubin increased", 1.8, unit="mg/dL", uln=1.2) == 1  # 1.2 * 1.5 == 1.8 exactly
    assert grade("Blood bilirubin increased", Decimal("1.81"), unit="mg/dL", uln=Decimal("1.2")) == 2
    assert grade("Hypercalcemia (Ionized)", 1.5, unit="mmol/L", uln=1.3) == 1
    assert grade("Hyponatremia", 129.5, unit="mmol/L", lln=135) == 3
    assert grade("Hyponatremia", 130, unit="mmol/L", lln=135) == 1
    assert graded("Hyponatremia", 124.9, unit="mmol/L", lln=135).criterion == "< 125 mmol/L"


def test_non_finite_values_give_none():
    assert grade(NEUTROPHILS, float("nan"), unit="10*9/L", lln=2.0) is None
    assert grade(NEUTROPHILS, Decimal("NaN"), unit="10*9/L", lln=2.0) is None


def test_unknown_term_raises():
    with pytest.raises(KeyError, match="Neutrophil count decreased"):
        grade("Neutrophils decreased", 1.0, unit="10*9/L")
    with pytest.raises(ValueError, match=re.escape("unknown CTCAE v5.0 lab term 'Sepsis'")):
        grade("Sepsis", 1.0, unit=None)
    with pytest.raises(UnknownTermError):
        unit_for("sepsis", "SI")


def test_unknown_version_raises():
    with pytest.raises(ValueError, match=re.escape("only '5.0'")):
        grade(NEUTROPHILS, 1.0, unit="10*9/L", version="4.03")
    with pytest.raises(ValueError, match="version"):
        grade(NEUTROPHILS, 1.0, unit="10*9/L", version="5")


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="ULN must be positive"):
        grade(ALT, 100, unit="U/L", uln=0)
    with pytest.raises(ValueError, match="LLN must be positive"):
        grade(NEUTROPHILS, 1.0, unit="10*9/L", lln=-1)
    with pytest.raises(TypeError):
        grade(NEUTROPHILS, "1.0", unit="10*9/L")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unit system"):
        unit_for(NEUTROPHILS, "US")


def test_ctcae_grade_is_an_immutable_int():
    result = graded(ALT, 140, unit="U/L", uln=40)
    assert result == 2
    assert result.grade == 2
    assert isinstance(result, int)
    assert str(result) == "2"
    assert f"{result}" == "2"
    assert json.dumps({"grade": result}) == '{"grade": 2}'
    assert hash(result) == hash(2)
    assert repr(result) == (
        "CtcaeGrade(grade=2, lab_only=False, version='5.0', term='Alanine aminotransferase increased', "
        "criterion='> 3.0 x ULN', assumed=False)"
    )
    with pytest.raises(AttributeError):
        result.lab_only = True
    clone = copy.deepcopy(result)  # goes through __reduce__, as pickle does
    assert type(clone) is CtcaeGrade
    assert (clone, clone.lab_only, clone.term, clone.criterion, clone.assumed) == (2, False, ALT, "> 3.0 x ULN", False)
    assumed = graded("Lipase increased", 301, unit="U/L", uln=60)
    restored = pickle.loads(pickle.dumps(assumed))  # noqa: S301 -- our own bytes
    assert (restored, restored.lab_only, restored.assumed, restored.criterion) == (
        4,
        True,
        True,
        "> 5.0 x ULN (assuming with signs or symptoms)",
    )
    assert repr(restored).endswith(", assumed=True)")
    with pytest.raises(AttributeError):
        assumed.assumed = False
    # A grade pickled before ``assumed`` existed (five arguments) unpickles as not assumed.
    old = _restore(3, True, "5.0", "Hyponatremia", "< 125 mmol/L")
    assert (old, old.assumed, old.lab_only) == (3, False, True)
    assert CtcaeGrade(1, lab_only=False, version="5.0", term=ALT).assumed is False
    with pytest.raises(ValueError, match="0-4"):
        CtcaeGrade(5, lab_only=False, version="5.0", term=ALT)
    assert grade_detail is grade


def test_unit_for():
    assert unit_for("Anemia", "SI") == "g/L"
    assert unit_for("Anemia", "USCV") == "g/dL"
    assert unit_for(NEUTROPHILS, "USCV") == "10*3/uL"
    assert unit_for("CD4 lymphocytes decreased", "USCV") == "/uL"
    assert unit_for("Hyperkalemia", "USCV") == "mmol/L"
    assert unit_for(ALT, "SI") == "U/L"
    assert unit_for("INR increased", "SI") == "{INR}"


# ------------------------------------------------------------------------------------------ the table itself

CLINICAL_WORDS = re.compile(
    r"symptom|indicated|initiated|consequences|bleeding|seizures|leucostasis|anticoagulation", re.I
)


@pytest.mark.parametrize("term", sorted(TERMS_V5))
def test_clinical_flags_follow_the_criteria_text(term):
    for number, row in TERMS_V5[term]["grades"].items():
        assert row.get("clinical", False) == bool(CLINICAL_WORDS.search(row["text"])), (term, number)


def test_table_matches_the_reference_file():
    ucum = {"10^9/L": "10*9/L", "10^3/uL": "10*3/uL", "1/uL": "/uL", "MMOL/L": "mmol/L"}
    rows = json.loads(REFERENCE.read_text())
    assert {row["TERM"] for row in rows} == TERMS
    for row in rows:
        term = TERMS_V5[row["TERM"]]
        assert term["direction"] == row["DIRECTION"], row["TERM"]
        for number in (1, 2, 3, 4):
            assert term["grades"][number]["text"] == row[f"GRADE_{number}"], (row["TERM"], number)
        unit_check = row["UNIT_CHECK"]
        if unit_check == "10^3/mL":  # legacy conventional unit, refused (see test_legacy_10_3_per_ml_is_refused)
            continue
        if unit_check is not None:
            assert unit_for(row["TERM"], row["units_system"]) == ucum.get(unit_check, unit_check), row["TERM"]


# ------------------------------------------------------------------------------ messages and limits, exactly


def test_unknown_term_messages():
    with pytest.raises(UnknownTermError) as caught:
        grade("Hypo", 1.0, unit="mmol/L")  # four close terms: the three closest are named
    error = caught.value
    expected = "unknown CTCAE v5.0 lab term 'Hypo'; did you mean 'Hypokalemia' or 'Hyponatremia' or 'Hypoglycemia'?"
    assert str(error) == error.message == expected
    assert error.args == (expected,)
    assert error.term == "Hypo"
    # 'Calcium high' is 0.57 similar to 'Cholesterol high': found with the cutoff 0.5 (not with difflib's 0.6).
    with pytest.raises(UnknownTermError, match=re.escape("'Calcium high'; did you mean 'Cholesterol high'?")):
        grade("Calcium high", 1.0, unit="mmol/L")
    with pytest.raises(UnknownTermError) as caught:
        grade("Sepsis", 1.0, unit=None)
    assert str(caught.value) == "unknown CTCAE v5.0 lab term 'Sepsis'"


def test_error_texts_of_bad_values():
    with pytest.raises(TypeError, match=r"^value must be a number, not str$"):
        grade(NEUTROPHILS, "1.0", unit="10*9/L")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^lln must be a number, not str$"):
        grade(NEUTROPHILS, 1.0, unit="10*9/L", lln="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^uln must be a number, not bool$"):
        grade(ALT, 1.0, unit="U/L", uln=True)
    with pytest.raises(TypeError, match=r"^baseline must be a number, not list$"):
        grade(ALT, 1.0, unit="U/L", baseline=[1])  # type: ignore[arg-type]
    result = graded(ALT, 100, unit="U/L", uln=40)
    with pytest.raises(AttributeError, match=r"^CtcaeGrade is immutable$"):
        del result.lab_only
    with pytest.raises(AttributeError, match=r"^CtcaeGrade is immutable$"):
        result.term = "x"
    with pytest.raises(ValueError, match=r"^unknown unit 'furlongs'$"):
        ctcae._unit("furlongs")


def test_a_zero_lln_or_baseline_is_allowed():
    assert grade(NEUTROPHILS, 0.4, unit="10*9/L", lln=0) == 4


def test_a_baseline_at_the_limit_is_normal():
    # ALT 50 with ULN 40 and baseline 40: normal baseline, 1.25 x ULN -> 1 (1.25 x baseline would be 0).
    assert grade(ALT, 50, unit="U/L", uln=40, baseline=40) == 1
    assert grade(ALT, 50, unit="U/L", uln=40, baseline=41) == 0
    # Fibrinogen 150 with LLN 200 and baseline 200: normal, 0.75 x LLN -> 1 ("<= 0.75 x baseline" would be 2).
    assert grade("Fibrinogen decreased", 150, unit="mg/dL", lln=200, baseline=200) == 1
    assert grade("Fibrinogen decreased", 150, unit="mg/dL", lln=200, baseline=199) == 1


def test_restored_grade_keeps_every_field():
    result = graded("Hyponatremia", 127, unit="mmol/L", lln=135)
    restored = copy.deepcopy(result)
    assert (restored.version, restored.term, restored.criterion, restored.assumed, restored.lab_only) == (
        "5.0",
        "Hyponatremia",
        "< 130 mmol/L (assuming symptomatic)",
        True,
        True,
    )
