"""What a result means (results/interpretation.py): reference range by sex and age, HL7 0078 flags, the delta
check, CTCAE glue for exact and censored values, and the finding a verified result raises. Pure: no database,
mutation-tested (docs/mutation-testing.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from alerts.choices import AlertAudience, AlertSeverity
from alerts.findings import Finding
from results.interpretation import (
    CRITICAL_FLAGS,
    Interpretation,
    _age_years,
    _direction,
    ctcae_label,
    flag_for,
    interpret,
    interpret_censored,
    is_delta_failure,
    reference_range_for,
    result_findings,
)

D = Decimal
TOP = D(999_999_999)  # the largest value a result stores (10^9 - 1)


@dataclass(frozen=True)
class Rng:
    low: Decimal | None = None
    high: Decimal | None = None
    critical_low: Decimal | None = None
    critical_high: Decimal | None = None
    sex: str = ""
    age_min_years: int = 0
    age_max_years: int = 150


@dataclass(frozen=True)
class Spec:
    unit: str = "mmol/L"
    ctcae_term_low: str = ""
    ctcae_term_high: str = ""
    delta_absolute: Decimal | None = None
    delta_percent: Decimal | None = None


@dataclass(frozen=True)
class Person:
    birth_date: date
    sex: str = "F"


@dataclass(frozen=True)
class Analyte:
    name: str = "Potassium"


@dataclass(frozen=True)
class Stored:
    flag: str = "N"
    ctcae_term: str = ""
    ctcae_grade: int | None = None
    ctcae_assumed: bool = False
    display_value: str = "6.9 mmol/L"
    lab_test: Analyte = field(default_factory=Analyte)
    lab_test_id: int = 7
    root_id: int | None = None
    pk: int = 11


POTASSIUM = Rng(low=D("3.5"), high=D("5.1"), critical_low=D("2.7"), critical_high=D("6.2"))
POTASSIUM_SPEC = Spec(ctcae_term_low="Hypokalemia", ctcae_term_high="Hyperkalemia")
ALT = "Alanine aminotransferase increased"
ALT_SPEC = Spec(unit="U/L", ctcae_term_high=ALT)
ALT_RANGE = Rng(low=D(7), high=D(40), critical_high=D(1000))
SODIUM = Rng(low=D(135), high=D(145), critical_low=D(120), critical_high=D(160))
SODIUM_SPEC = Spec(ctcae_term_low="Hyponatremia", ctcae_term_high="Hypernatremia")


def meaning(
    low: Decimal | None,
    high: Decimal | None,
    flag: str,
    term: str = "",
    grade: int | None = None,
    lab_only: bool = False,
    assumed: bool = False,
) -> Interpretation:
    return Interpretation(low, high, flag, term, grade, lab_only, assumed)


# ------------------------------------------------------------------------------------------ age and reference range


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2008, 6, 15), date(2026, 6, 14), 17),  # the day before the 18th birthday
        (date(2008, 6, 15), date(2026, 6, 15), 18),  # the birthday
        (date(2008, 6, 15), date(2026, 6, 16), 18),
        (date(2000, 3, 31), date(2018, 4, 1), 18),  # a later month with an earlier day
        (date(2000, 12, 1), date(2018, 11, 30), 17),  # an earlier month with a later day
        (date(2000, 2, 29), date(2018, 2, 28), 17),  # born on 29 February: 18 on 1 March
        (date(2000, 2, 29), date(2018, 3, 1), 18),
        (date(2026, 6, 15), date(2026, 6, 15), 0),
    ],
)
def test_age_in_whole_years(born, on, age):
    assert _age_years(born, on) == age


CHILD = Rng(low=D(1), age_min_years=0, age_max_years=17)
ADULT = Rng(low=D(2), age_min_years=18, age_max_years=150)


@pytest.mark.parametrize(
    ("on", "expected"), [(date(2026, 6, 14), CHILD), (date(2026, 6, 15), ADULT), (date(2026, 6, 16), ADULT)]
)
def test_the_adult_range_applies_from_the_18th_birthday(on, expected):
    patient = Person(date(2008, 6, 15))
    assert reference_range_for([CHILD, ADULT], patient, on) is expected
    assert reference_range_for([ADULT, CHILD], patient, on) is expected


@pytest.mark.parametrize(
    ("born", "matches"),
    [
        (date(2008, 6, 16), False),  # 17 on 15 June 2026
        (date(2008, 6, 15), True),  # 18: the band's first year
        (date(1961, 6, 16), True),  # 64: its last year
        (date(1961, 6, 15), False),  # 65
    ],
)
def test_an_age_band_includes_both_limits(born, matches):
    working_age = Rng(low=D(3), age_min_years=18, age_max_years=64)
    found = reference_range_for([working_age], Person(born), date(2026, 6, 15))
    assert found is (working_age if matches else None)


def test_a_sex_specific_row_beats_an_any_row_even_when_wider():
    female = Rng(low=D(1), sex="F", age_min_years=0, age_max_years=150)
    male = Rng(low=D(2), sex="M", age_min_years=0, age_max_years=150)
    narrow_any = Rng(low=D(3), sex="", age_min_years=18, age_max_years=64)
    rows = [narrow_any, female, male]
    on = date(2026, 6, 15)
    assert reference_range_for(rows, Person(date(1990, 1, 1), "F"), on) is female
    assert reference_range_for(rows, Person(date(1990, 1, 1), "M"), on) is male
    assert reference_range_for(rows, Person(date(1990, 1, 1), "U"), on) is narrow_any
    assert reference_range_for([female], Person(date(1990, 1, 1), "M"), on) is None


def test_an_any_row_serves_every_sex():
    anyone = Rng(low=D(1))
    for sex in ("F", "M", "O", "U"):
        assert reference_range_for([anyone], Person(date(1990, 1, 1), sex), date(2026, 6, 15)) is anyone


def test_the_narrowest_age_band_wins():
    everyone = Rng(low=D(1), age_min_years=0, age_max_years=150)
    elderly = Rng(low=D(2), age_min_years=60, age_max_years=150)  # narrower, though its limits add up to more
    patient = Person(date(1950, 1, 1))
    assert reference_range_for([everyone, elderly], patient, date(2026, 6, 15)) is elderly
    assert reference_range_for([elderly, everyone], patient, date(2026, 6, 15)) is elderly


def test_no_matching_row_is_none():
    assert reference_range_for([], Person(date(1990, 1, 1)), date(2026, 6, 15)) is None
    assert reference_range_for([CHILD], Person(date(1990, 1, 1)), date(2026, 6, 15)) is None


# ------------------------------------------------------------------------------------------------------ flags


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        ("0", "LL"),
        ("2.6", "LL"),
        ("2.7", "LL"),  # critical limits are inclusive
        ("2.7001", "L"),
        ("3.4999", "L"),
        ("3.5", "N"),  # reference limits are not
        ("5.1", "N"),
        ("5.1001", "H"),
        ("6.1999", "H"),
        ("6.2", "HH"),
        ("7.0", "HH"),
    ],
)
def test_flag_at_each_limit(value, flag):
    assert flag_for(D(value), POTASSIUM) == flag


def test_no_range_no_flag():
    assert flag_for(D(5), None) == ""


@pytest.mark.parametrize(
    ("rng", "value", "flag"),
    [
        (Rng(), D(0), "N"),
        (Rng(), D(10) ** 6, "N"),
        (Rng(critical_low=D(2)), D(2), "LL"),
        (Rng(critical_low=D(2)), D("2.1"), "N"),
        (Rng(critical_high=D(7)), D(7), "HH"),
        (Rng(critical_high=D(7)), D("6.9"), "N"),
        (Rng(low=D("3.5")), D("3.4"), "L"),
        (Rng(low=D("3.5")), D(10) ** 6, "N"),
        (Rng(high=D("5.1")), D("5.2"), "H"),
        (Rng(high=D("5.1")), D(0), "N"),
    ],
)
def test_a_missing_limit_is_not_checked(rng, value, flag):
    assert flag_for(value, rng) == flag


# ------------------------------------------------------------------------------------------ exact values: CTCAE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # below the range: the "low" term (< LLN is grade 2, assuming symptomatic)
        ("3.4", meaning(D("3.5"), D("5.1"), "L", "Hypokalemia", 2, lab_only=True, assumed=True)),
        # at the lower limit the value is not below it: the "high" term, grade 0
        ("3.5", meaning(D("3.5"), D("5.1"), "N", "Hyperkalemia", 0)),
        ("6.5", meaning(D("3.5"), D("5.1"), "HH", "Hyperkalemia", 3, lab_only=True)),
    ],
)
def test_interpret_chooses_the_term_by_the_side_of_the_range(value, expected):
    assert interpret(spec=POTASSIUM_SPEC, value=D(value), rng=POTASSIUM, baseline=None) == expected


def test_a_spec_with_only_a_low_term_uses_it_on_both_sides():
    spec = Spec(unit="g/dL", ctcae_term_low="Anemia")
    hb = Rng(low=D(12), high=D(16))
    assert interpret(spec=spec, value=D(9), rng=hb, baseline=None) == meaning(
        D(12), D(16), "L", "Anemia", 2, lab_only=True
    )
    assert interpret(spec=spec, value=D(17), rng=hb, baseline=None) == meaning(D(12), D(16), "H", "Anemia", 0)


def test_a_spec_with_only_a_high_term_uses_it_below_the_range_too():
    assert interpret(spec=ALT_SPEC, value=D(5), rng=ALT_RANGE, baseline=None) == meaning(D(7), D(40), "L", ALT, 0)


def test_a_spec_without_terms_is_flagged_not_graded():
    assert interpret(spec=Spec(), value=D("2.0"), rng=POTASSIUM, baseline=None) == meaning(D("3.5"), D("5.1"), "LL")


def test_interpret_passes_the_uln_and_the_baseline():
    # 140 U/L = 3.5 x ULN: grade 2; without a ULN nothing can be said (the term stays, ungraded)
    assert interpret(spec=ALT_SPEC, value=D(140), rng=ALT_RANGE, baseline=None) == meaning(D(7), D(40), "H", ALT, 2)
    assert interpret(spec=ALT_SPEC, value=D(140), rng=None, baseline=None) == meaning(None, None, "", ALT, None)
    # 240 U/L: 6 x ULN is grade 3, but against an abnormal baseline of 80 it is 3.0 x baseline, grade 1
    assert interpret(spec=ALT_SPEC, value=D(240), rng=ALT_RANGE, baseline=None).ctcae_grade == 3
    assert interpret(spec=ALT_SPEC, value=D(240), rng=ALT_RANGE, baseline=D(80)).ctcae_grade == 1


def test_interpret_passes_the_unit():
    # 128 mmol/L: grade 3 assuming "symptomatic"; an absolute threshold needs the unit
    assert interpret(spec=SODIUM_SPEC, value=D(128), rng=SODIUM, baseline=None) == meaning(
        D(135), D(145), "L", "Hyponatremia", 3, lab_only=True, assumed=True
    )
    no_unit = Spec(unit="", ctcae_term_low="Hyponatremia", ctcae_term_high="Hypernatremia")
    assert interpret(spec=no_unit, value=D(128), rng=SODIUM, baseline=None) == meaning(
        D(135), D(145), "L", "Hyponatremia", None
    )


def test_an_ungraded_term_is_neither_lab_only_nor_assumed():
    spec = Spec(ctcae_term_low="Hypokalemia")
    found = interpret(spec=spec, value=D("3.4"), rng=Rng(high=D("5.1")), baseline=None)
    assert found == meaning(None, D("5.1"), "N", "Hypokalemia", None)
    assert found.ctcae_lab_only is False
    assert found.ctcae_assumed is False


def test_the_grade_is_a_plain_int():
    found = interpret(spec=ALT_SPEC, value=D(140), rng=ALT_RANGE, baseline=None)
    assert type(found.ctcae_grade) is int


# ------------------------------------------------------------------------------------------------ delta check


@pytest.mark.parametrize(
    ("value", "failed"),
    [("6.0", False), ("6.9999", False), ("7.0", False), ("7.0001", True), ("4.0", False), ("2.9999", True)],
)
def test_delta_absolute_at_just_under_and_just_over(value, failed):
    spec = Spec(delta_absolute=D("2.0"))  # previous 5.0: a change of exactly 2.0 is plausible
    assert is_delta_failure(spec, D(value), D("5.0")) is failed


@pytest.mark.parametrize(
    ("value", "failed"),
    [("14.9999", False), ("15", False), ("15.0001", True), ("5", False), ("4.9999", True), ("10", False)],
)
def test_delta_percent_at_just_under_and_just_over(value, failed):
    spec = Spec(delta_percent=D(50))  # previous 10: a change of exactly 50 % is plausible
    assert is_delta_failure(spec, D(value), D(10)) is failed


def test_delta_percent_of_a_negative_previous_value_is_of_its_size():
    assert is_delta_failure(Spec(delta_percent=D(50)), D(-16), D(-10)) is True
    assert is_delta_failure(Spec(delta_percent=D(50)), D(-14), D(-10)) is False


def test_no_previous_value_no_delta_failure():
    spec = Spec(delta_absolute=D(0), delta_percent=D(0))
    assert is_delta_failure(spec, D(100), None) is False


def test_a_previous_zero_has_no_percentage_change():
    assert is_delta_failure(Spec(delta_percent=D(50)), D(5), D(0)) is False
    assert is_delta_failure(Spec(delta_absolute=D(1), delta_percent=D(50)), D(5), D(0)) is True


def test_either_limit_fails_the_check():
    both = Spec(delta_absolute=D(100), delta_percent=D(10))
    assert is_delta_failure(both, D(12), D(10)) is True  # 2 is under 100, but 20 % is over 10 %
    assert is_delta_failure(Spec(delta_absolute=D(1), delta_percent=D(1000)), D(12), D(10)) is True
    assert is_delta_failure(both, D("10.5"), D(10)) is False
    assert is_delta_failure(Spec(), D(1000), D(10)) is False  # no limits


# --------------------------------------------------------------------------------------- censored values ("<5")


@pytest.mark.parametrize(
    ("comparator", "bound", "flag"),
    [
        ("<", "3.5", "L"),  # [0, 3.5): LL at 0, L just under 3.5: at least low
        ("<=", "3.5", ""),  # [0, 3.5]: 3.5 is normal: neither low nor normal can be said
        ("<", "2.7", "LL"),
        ("<=", "2.7", "LL"),  # the critical limit is inclusive
        ("<", "2.700001", "LL"),  # the upper end is 10^-6 under the bound: 2.7, still LL
        ("<", "2.7000011", "L"),  # 2.7000001 is only L
        ("<", "6", ""),  # LL at 0, H just under 6
        (">", "5.1", "H"),  # (5.1, 10^9): H just over 5.1, HH further up: at least high
        (">=", "5.1", ""),  # [5.1, 10^9): 5.1 itself is normal
        (">", "6.2", "HH"),
        (">=", "6.2", "HH"),
        (">", "6.199999", "HH"),  # the lower end is 10^-6 over the bound: 6.2, HH
        (">", "6.1999989", "H"),
        (">", "3", ""),
    ],
)
def test_censored_flag_holds_for_every_value_it_stands_for(comparator, bound, flag):
    found = interpret_censored(spec=Spec(), comparator=comparator, bound=D(bound), rng=POTASSIUM, baseline=None)
    assert found.flag == flag
    assert found.reference_low == D("3.5")
    assert found.reference_high == D("5.1")


def test_the_lower_end_of_a_less_than_value_is_zero():
    # "<0.4" stands for [0, 0.4): both ends below a critical low of 0.5 (a lower end of 1 would be only L)
    rng = Rng(low=D(2), critical_low=D("0.5"))
    found = interpret_censored(spec=Spec(), comparator="<", bound=D("0.4"), rng=rng, baseline=None)
    assert found.flag == "LL"


def test_a_less_than_zero_value_is_read_from_zero():
    found = interpret_censored(spec=Spec(), comparator="<", bound=D(0), rng=Rng(low=D(0)), baseline=None)
    assert found.flag == "N"  # both ends at 0: not below a lower limit of 0


def test_the_upper_end_of_a_greater_than_value_is_the_largest_storable_value():
    # ">=TOP - 1" stands for [TOP - 1, TOP]: both within a range ending at TOP (not beyond it) ...
    found = interpret_censored(spec=Spec(), comparator=">=", bound=TOP - 1, rng=Rng(high=TOP), baseline=None)
    assert found.flag == "N"
    # ... and reaching a critical limit at TOP (not stopping before it)
    rng = Rng(high=D(1), critical_high=TOP)
    found = interpret_censored(spec=Spec(), comparator=">=", bound=TOP, rng=rng, baseline=None)
    assert found.flag == "HH"


def test_censored_flag_without_a_range():
    found = interpret_censored(spec=Spec(), comparator="<", bound=D(5), rng=None, baseline=None)
    assert found == meaning(None, None, "")


def test_a_censored_value_keeps_a_grade_both_ends_share():
    # "<120" mmol/L sodium: [0, 120) is grade 4 throughout
    found = interpret_censored(spec=SODIUM_SPEC, comparator="<", bound=D(120), rng=SODIUM, baseline=None)
    assert found == meaning(D(135), D(145), "LL", "Hyponatremia", 4, lab_only=True)
    # "<=120" includes 120 itself, grade 3: no grade can be said
    found = interpret_censored(spec=SODIUM_SPEC, comparator="<=", bound=D(120), rng=SODIUM, baseline=None)
    assert found == meaning(D(135), D(145), "LL", "", None)


def test_a_censored_value_whose_ends_differ_in_grade_is_not_graded():
    # "<125": 0 is grade 4, just under 125 grade 3 -- same term, different grades
    found = interpret_censored(spec=SODIUM_SPEC, comparator="<", bound=D(125), rng=SODIUM, baseline=None)
    assert found == meaning(D(135), D(145), "L", "", None)
    assert found.ctcae_lab_only is False
    assert found.ctcae_assumed is False


def test_a_censored_value_whose_ends_differ_in_term_is_not_graded():
    # "<5" potassium: 0 is hypokalaemia grade 4, 4.999999 hyperkalaemia grade 0
    found = interpret_censored(spec=POTASSIUM_SPEC, comparator="<", bound=D(5), rng=POTASSIUM, baseline=None)
    assert found == meaning(D("3.5"), D("5.1"), "", "", None)


def test_a_censored_grade_is_assumed_when_either_end_is():
    # INR ">2.3" with a baseline of 0.9: just over 2.3 is grade 3 only as > 2.5 x baseline (assuming
    # anticoagulation); far above, grade 3 as > 2.5 -- the grade holds, and it rests on the assumption.
    spec = Spec(unit="{INR}", ctcae_term_high="INR increased")
    rng = Rng(low=D("0.8"), high=D("1.2"))
    found = interpret_censored(spec=spec, comparator=">", bound=D("2.3"), rng=rng, baseline=D("0.9"))
    assert found == meaning(D("0.8"), D("1.2"), "H", "INR increased", 3, lab_only=True, assumed=True)
    plain = interpret_censored(spec=spec, comparator=">", bound=D("2.6"), rng=rng, baseline=D("0.9"))
    assert plain == meaning(D("0.8"), D("1.2"), "H", "INR increased", 3, lab_only=True, assumed=False)


def test_an_ungraded_censored_value_is_not_assumed_even_when_both_ends_are():
    # lipase ">130" with a ULN of 60: just over 130 is grade 3, far above grade 4, both assuming symptoms
    spec = Spec(unit="U/L", ctcae_term_high="Lipase increased")
    found = interpret_censored(spec=spec, comparator=">", bound=D(130), rng=Rng(high=D(60)), baseline=None)
    assert found == meaning(None, D(60), "H", "", None)
    assert found.ctcae_assumed is False
    assert found.ctcae_lab_only is False


def test_a_censored_grade_zero_is_kept():
    found = interpret_censored(spec=ALT_SPEC, comparator="<", bound=D(5), rng=ALT_RANGE, baseline=None)
    assert found == meaning(D(7), D(40), "L", ALT, 0)


def test_a_greater_than_value_above_every_threshold_is_graded():
    found = interpret_censored(spec=ALT_SPEC, comparator=">", bound=D(1000), rng=ALT_RANGE, baseline=None)
    assert found == meaning(D(7), D(40), "HH", ALT, 4)
    # ">=800" includes 800 = 20 x ULN, grade 3: not graded
    found = interpret_censored(spec=ALT_SPEC, comparator=">=", bound=D(800), rng=ALT_RANGE, baseline=None)
    assert found == meaning(D(7), D(40), "H", "", None)
    found = interpret_censored(spec=ALT_SPEC, comparator=">", bound=D(800), rng=ALT_RANGE, baseline=None)
    assert found.ctcae_grade == 4


def test_a_censored_value_uses_the_baseline():
    # ALT "<100" against an abnormal baseline of 80: up to 1.25 x baseline, grade 0 throughout; against the ULN
    # alone just under 100 is 2.5 x ULN, grade 1, and 0 grade 0: not graded
    found = interpret_censored(spec=ALT_SPEC, comparator="<", bound=D(100), rng=ALT_RANGE, baseline=D(80))
    assert found.ctcae_grade == 0
    found = interpret_censored(spec=ALT_SPEC, comparator="<", bound=D(100), rng=ALT_RANGE, baseline=None)
    assert found.ctcae_grade is None


# ---------------------------------------------------------------------------------------------- findings


def test_ctcae_label_says_when_the_grade_is_assumed():
    assert ctcae_label(Stored(ctcae_term="Hyponatremia", ctcae_grade=3)) == "CTCAE grade 3 Hyponatremia"
    assumed = Stored(ctcae_term="Hyponatremia", ctcae_grade=3, ctcae_assumed=True)
    assert ctcae_label(assumed) == "CTCAE grade 3 (assumed) Hyponatremia"


@pytest.mark.parametrize(
    ("flag", "term", "direction"),
    [
        ("L", "Hypokalemia", "low"),
        ("LL", "", "low"),
        ("H", "", "high"),
        ("HH", "Hyperkalemia", "high"),
        ("N", "Anemia", "Anemia"),
        ("", "Hyponatremia", "Hyponatremia"),
        ("A", "", "abnormal"),
        ("", "", "abnormal"),
    ],
)
def test_direction_of_a_finding(flag, term, direction):
    assert _direction(Stored(flag=flag, ctcae_term=term)) == direction


def test_critical_flags():
    assert set(CRITICAL_FLAGS) == {"LL", "HH"}


@pytest.mark.parametrize(
    "stored",
    [
        Stored(flag="N"),
        Stored(flag="H", ctcae_term="Hyperkalemia", ctcae_grade=2),
        Stored(flag="L", ctcae_term="", ctcae_grade=3),  # a grade without a term is no grade
        Stored(flag="A", ctcae_term="Hyperkalemia", ctcae_grade=None),
        Stored(flag="L", ctcae_term="Hypokalemia", ctcae_grade=0),
    ],
)
def test_no_finding_below_grade_3_without_a_critical_value(stored):
    assert result_findings(stored) == []


@pytest.mark.parametrize(
    ("stored", "finding"),
    [
        pytest.param(
            Stored(flag="H", ctcae_term="Hyperkalemia", ctcae_grade=3, display_value="6.5 mmol/L"),
            Finding("lab:7:high", "CTCAE grade 3 Hyperkalemia: Potassium 6.5 mmol/L", AlertSeverity.HIGH,
                    AlertAudience.ONCOLOGISTS, grade=3, critical=False, subject_id=11),
            id="grade 3 is a high finding for the oncologists",
        ),
        pytest.param(
            Stored(flag="HH", root_id=5),
            Finding("lab:7:high", "Critical: Potassium 6.9 mmol/L (HH)", AlertSeverity.CRITICAL,
                    AlertAudience.CARE_TEAM, grade=0, critical=True, subject_id=5),  # about the result's first version
            id="a critical value is critical for the care team",
        ),
    ],
)  # fmt: skip
def test_a_finding_in_full(stored, finding):
    assert result_findings(stored) == [finding]


def test_grade_4_is_critical_for_the_oncologists():
    stored = Stored(flag="N", ctcae_term="Neutrophil count decreased", ctcae_grade=4, ctcae_assumed=True)
    (found,) = result_findings(stored)
    assert found.severity == AlertSeverity.CRITICAL
    assert found.audience == AlertAudience.ONCOLOGISTS
    assert found.label == "CTCAE grade 4 (assumed) Neutrophil count decreased: Potassium 6.9 mmol/L"
    assert found.key == "lab:7:Neutrophil count decreased"
    assert (found.grade, found.critical) == (4, False)


def test_a_critical_value_names_its_grade():
    stored = Stored(flag="LL", ctcae_term="Hypokalemia", ctcae_grade=2, display_value="2.5 mmol/L")
    (found,) = result_findings(stored)
    assert found.label == "Critical: Potassium 2.5 mmol/L (LL) · CTCAE grade 2 Hypokalemia"
    assert (found.grade, found.critical, found.key) == (2, True, "lab:7:low")
    assert found.severity == AlertSeverity.CRITICAL
    assert found.audience == AlertAudience.CARE_TEAM


def test_a_finding_label_is_cut_at_160_characters():
    stored = Stored(flag="HH", lab_test=Analyte("X" * 300))
    (found,) = result_findings(stored)
    assert found.label == ("Critical: " + "X" * 300)[:160]
    assert len(found.label) == 160
