"""ASTCT 2019 CRS and ICANS grading (assessments/grading.py): pure, no database, mutation-tested.

Run: .venv/bin/pytest -p no:django --noconftest tests/assessments/test_grading.py
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import product
from typing import Any

import pytest

from assessments.grading import (
    DEFAULT_HYPOTENSION_BELOW_SYSTOLIC_MMHG,
    FEVER_C,
    ICE_ITEMS,
    ICE_MAX,
    SYSTOLIC_RANGE_MMHG,
    TEMPERATURE_RANGE_C,
    Consciousness,
    CrsFindings,
    Grade,
    GradingError,
    IcansFindings,
    IcansGrade,
    MotorWeakness,
    OxygenSupport,
    RaisedIcp,
    Seizure,
    Vasopressors,
    grade_crs,
    grade_icans,
    ice_grade,
)

V = Vasopressors
OX = OxygenSupport
FEVER = "fever: 38.0 °C ≥ 38 °C"
MASKED = "fever not required after antipyretic or anti-cytokine therapy"
ONE_TEXT = "hypotension requiring one vasopressor (with or without vasopressin) → grade 3"
SEVERAL_TEXT = "hypotension requiring multiple vasopressors (excluding vasopressin) → grade 4"
LOW_FLOW_TEXT = "hypoxia requiring low-flow oxygen (nasal cannula ≤ 6 L/min or blow-by) → grade 2"
HIGH_FLOW_TEXT = (
    "hypoxia requiring high-flow nasal cannula (> 6 L/min), facemask, non-rebreather or Venturi mask → grade 3"
)
POSITIVE_TEXT = "hypoxia requiring positive pressure (CPAP, BiPAP, intubation and mechanical ventilation) → grade 4"
NO_FEVER_TEXT = "hypotension or hypoxia without fever is not graded as CRS"


def crs(
    temperature: str | None = "38.0",
    systolic: int | None = 120,
    vasopressors: Vasopressors | None = V.NONE,
    oxygen: OxygenSupport | None = OX.NONE,
    masked: bool = False,
    **options: int,
) -> Grade:
    findings = CrsFindings(
        temperature_c=None if temperature is None else Decimal(temperature),
        systolic_bp_mmhg=systolic,
        vasopressors=vasopressors,
        oxygen=oxygen,
        fever_masked=masked,
    )
    return grade_crs(findings, **options)


def decided(grade: int, *decisive: str) -> Grade:
    return Grade(grade, decisive, (), grade, grade)


def pending(at_least: int, at_most: int, *missing: str) -> Grade:
    return Grade(None, (), missing, at_least, at_most)


# --- CRS: each grade's boundary ----------------------------------------------------------------------------------


def test_constants():
    assert Decimal("38") == FEVER_C
    assert DEFAULT_HYPOTENSION_BELOW_SYSTOLIC_MMHG == 90
    assert (Decimal("25"), Decimal("45")) == TEMPERATURE_RANGE_C
    assert SYSTOLIC_RANGE_MMHG == (0, 300)
    assert ICE_MAX == 10


def test_fever_alone_is_grade_1_from_38_0():
    assert crs("38.0") == decided(1, "fever: 38.0 °C ≥ 38 °C, without hypotension or hypoxia → grade 1")
    assert crs("40.2") == decided(1, "fever: 40.2 °C ≥ 38 °C, without hypotension or hypoxia → grade 1")


def test_no_fever_at_37_9_is_grade_0():
    assert crs("37.9") == decided(0, "no fever: 37.9 °C < 38 °C, no antipyretic or anti-cytokine therapy → grade 0")


def test_hypotension_without_vasopressor_below_90_is_grade_2():
    assert crs(systolic=89) == decided(
        2, FEVER, "hypotension not requiring vasopressors (systolic 89 < 90 mmHg) → grade 2"
    )
    assert crs(systolic=90) == decided(1, "fever: 38.0 °C ≥ 38 °C, without hypotension or hypoxia → grade 1")


def test_the_hypotension_threshold_is_a_parameter():
    assert crs(systolic=94, hypotension_below_systolic_mmhg=95) == decided(
        2, FEVER, "hypotension not requiring vasopressors (systolic 94 < 95 mmHg) → grade 2"
    )
    assert crs(systolic=95, hypotension_below_systolic_mmhg=95).grade == 1
    assert crs(systolic=89, hypotension_below_systolic_mmhg=89).grade == 1
    assert crs(systolic=0, hypotension_below_systolic_mmhg=1).grade == 2
    assert crs(systolic=299, hypotension_below_systolic_mmhg=300).grade == 2


@pytest.mark.parametrize("threshold", [0, 301, -5])
def test_a_threshold_out_of_range_is_refused(threshold):
    with pytest.raises(GradingError) as error:
        crs(hypotension_below_systolic_mmhg=threshold)
    assert error.value.field == "hypotension_below_systolic_mmhg"
    assert error.value.reason == f"{threshold} is outside 1-300 mmHg"


@pytest.mark.parametrize("threshold", [True, 90.0, "90", Decimal(90)])
def test_a_threshold_that_is_no_whole_number_is_refused(threshold):
    with pytest.raises(GradingError) as error:
        crs(hypotension_below_systolic_mmhg=threshold)
    assert str(error.value) == "hypotension_below_systolic_mmhg: must be a whole number"


@pytest.mark.parametrize("systolic", [60, 89, 90, 140, None])
def test_one_vasopressor_is_grade_3_whatever_the_pressure(systolic):
    assert crs(systolic=systolic, vasopressors=V.ONE) == decided(3, FEVER, ONE_TEXT)


@pytest.mark.parametrize("systolic", [60, 90, None])
def test_several_vasopressors_are_grade_4(systolic):
    assert crs(systolic=systolic, vasopressors=V.SEVERAL) == decided(4, FEVER, SEVERAL_TEXT)


def test_each_oxygen_level():
    assert crs(oxygen=OX.LOW_FLOW) == decided(2, FEVER, LOW_FLOW_TEXT)
    assert crs(oxygen=OX.HIGH_FLOW) == decided(3, FEVER, HIGH_FLOW_TEXT)
    assert crs(oxygen=OX.POSITIVE_PRESSURE) == decided(4, FEVER, POSITIVE_TEXT)


def test_the_worse_of_hypotension_and_hypoxia_decides():
    # a febrile patient on one vasopressor and low-flow oxygen is grade 3 (the more severe event)
    assert crs(vasopressors=V.ONE, oxygen=OX.LOW_FLOW) == decided(3, FEVER, ONE_TEXT)
    assert crs(systolic=85, oxygen=OX.HIGH_FLOW) == decided(3, FEVER, HIGH_FLOW_TEXT)
    assert crs(vasopressors=V.ONE, oxygen=OX.POSITIVE_PRESSURE) == decided(4, FEVER, POSITIVE_TEXT)
    assert crs(vasopressors=V.SEVERAL, oxygen=OX.HIGH_FLOW) == decided(4, FEVER, SEVERAL_TEXT)
    assert crs(systolic=85, vasopressors=V.SEVERAL, oxygen=OX.LOW_FLOW) == decided(4, FEVER, SEVERAL_TEXT)


def test_both_events_are_named_when_they_give_the_same_grade():
    assert crs(systolic=85, oxygen=OX.LOW_FLOW) == decided(
        2, FEVER, "hypotension not requiring vasopressors (systolic 85 < 90 mmHg) → grade 2", LOW_FLOW_TEXT
    )
    assert crs(vasopressors=V.ONE, oxygen=OX.HIGH_FLOW) == decided(3, FEVER, ONE_TEXT, HIGH_FLOW_TEXT)
    assert crs(vasopressors=V.SEVERAL, oxygen=OX.POSITIVE_PRESSURE) == decided(4, FEVER, SEVERAL_TEXT, POSITIVE_TEXT)


def test_no_fever_is_not_crs_even_with_hypotension_or_hypoxia():
    no_fever = "no fever: 37.9 °C < 38 °C, no antipyretic or anti-cytokine therapy → grade 0"
    assert crs("37.9", systolic=80) == decided(0, no_fever, NO_FEVER_TEXT)
    assert crs("37.9", vasopressors=V.ONE) == decided(0, no_fever, NO_FEVER_TEXT)
    assert crs("37.9", vasopressors=V.SEVERAL) == decided(0, no_fever, NO_FEVER_TEXT)
    assert crs("37.9", oxygen=OX.LOW_FLOW) == decided(0, no_fever, NO_FEVER_TEXT)
    assert crs("37.9", oxygen=OX.POSITIVE_PRESSURE) == decided(0, no_fever, NO_FEVER_TEXT)
    assert crs("37.9", systolic=90) == decided(0, no_fever)
    # without fever nothing else can change the grade: unrecorded findings do not keep it pending
    assert crs("36.5", None, None, None) == decided(
        0, "no fever: 36.5 °C < 38 °C, no antipyretic or anti-cytokine therapy → grade 0"
    )


def test_fever_masked_by_treatment_is_not_required():
    assert crs("36.8", systolic=85, masked=True) == decided(
        2, MASKED, "hypotension not requiring vasopressors (systolic 85 < 90 mmHg) → grade 2"
    )
    assert crs("36.8", vasopressors=V.ONE, masked=True) == decided(3, MASKED, ONE_TEXT)
    assert crs("37.9", oxygen=OX.POSITIVE_PRESSURE, masked=True) == decided(4, MASKED, POSITIVE_TEXT)
    assert crs("36.8", masked=True) == decided(0, f"{MASKED}; no fever (36.8 °C), no hypotension, no hypoxia → grade 0")
    assert crs("38.0", masked=True) == decided(1, "fever: 38.0 °C ≥ 38 °C, without hypotension or hypoxia → grade 1")
    assert crs("38.3", oxygen=OX.LOW_FLOW, masked=True) == decided(2, "fever: 38.3 °C ≥ 38 °C", LOW_FLOW_TEXT)
    # with fever masked the temperature only matters between grade 0 and 1
    assert crs(None, vasopressors=V.ONE, masked=True) == decided(3, MASKED, ONE_TEXT)
    assert crs(None, masked=True) == pending(0, 1, "temperature_c")


# --- CRS: unrecorded findings ------------------------------------------------------------------------------------


def test_missing_temperature_is_pending_even_on_several_vasopressors():
    # without a temperature there may be no fever (grade 0): never claim grade 4 unproven, never grade 0
    assert crs(None, vasopressors=V.SEVERAL) == pending(0, 4, "temperature_c")
    assert crs(None) == pending(0, 1, "temperature_c")
    assert crs(None, None, None, None) == pending(0, 4, "temperature_c", "systolic_bp_mmhg", "vasopressors", "oxygen")


def test_missing_findings_that_could_raise_the_grade_keep_it_pending():
    assert crs(oxygen=None) == pending(1, 4, "oxygen")
    assert crs(vasopressors=None) == pending(1, 4, "vasopressors")
    assert crs(systolic=None) == pending(1, 2, "systolic_bp_mmhg")
    assert crs(systolic=85, vasopressors=None) == pending(2, 4, "vasopressors")
    assert crs(systolic=None, vasopressors=None) == pending(1, 4, "systolic_bp_mmhg", "vasopressors")
    assert crs(vasopressors=V.ONE, oxygen=None) == pending(3, 4, "oxygen")


def test_a_missing_finding_that_cannot_change_the_grade_is_ignored():
    assert crs(vasopressors=V.SEVERAL, oxygen=None) == decided(4, FEVER, SEVERAL_TEXT)
    assert crs(systolic=None, vasopressors=None, oxygen=OX.POSITIVE_PRESSURE) == decided(4, FEVER, POSITIVE_TEXT)
    assert crs(systolic=None, oxygen=OX.LOW_FLOW) == decided(2, FEVER, LOW_FLOW_TEXT)
    assert crs(systolic=None, oxygen=OX.HIGH_FLOW) == decided(3, FEVER, HIGH_FLOW_TEXT)


def test_only_the_findings_that_can_change_the_grade_are_missing():
    # high-flow oxygen gives 3: only several vasopressors (4) can change it, the pressure cannot
    assert crs(systolic=None, vasopressors=None, oxygen=OX.HIGH_FLOW) == pending(3, 4, "vasopressors")
    assert crs(systolic=None, vasopressors=None, oxygen=OX.LOW_FLOW) == pending(2, 4, "vasopressors")


def _oracle_crs(*findings: Any) -> int:
    temperature, systolic, vasopressors, oxygen, masked = findings
    """Independent reading of the ASTCT table, for complete findings."""
    fever = temperature >= Decimal("38.0")
    if not fever and not masked:
        return 0
    grade = 1 if fever else 0
    if vasopressors == V.SEVERAL or oxygen == OX.POSITIVE_PRESSURE:
        return 4
    if vasopressors == V.ONE or oxygen == OX.HIGH_FLOW:
        return 3
    if systolic < 90 or oxygen == OX.LOW_FLOW:
        return 2
    return grade


def test_every_crs_combination_against_an_oracle():
    temperatures = (None, Decimal("37.9"), Decimal("38.0"))
    pressures = (None, 89, 90)
    pressors = (None, *V)
    oxygens = (None, *OX)
    names = ("temperature_c", "systolic_bp_mmhg", "vasopressors", "oxygen")
    for masked, *known in product((False, True), temperatures, pressures, pressors, oxygens):
        choices = [
            values[1:] if value is None else (value,)
            for value, values in zip(known, (temperatures, pressures, pressors, oxygens), strict=True)
        ]
        completions: list[tuple[Any, ...]] = list(product(*choices))
        grades = {_oracle_crs(*completion, masked) for completion in completions}
        missing = []
        for position in range(4):
            outcomes: dict = {}
            for completion in completions:
                others = completion[:position] + completion[position + 1 :]
                outcomes.setdefault(others, set()).add(_oracle_crs(*completion, masked))
            if any(len(found) > 1 for found in outcomes.values()):
                missing.append(names[position])
        temperature, systolic, vasopressors, oxygen = known
        result = grade_crs(CrsFindings(temperature, systolic, vasopressors, oxygen, fever_masked=masked))
        assert (result.at_least, result.at_most) == (min(grades), max(grades)), (known, masked)
        assert result.grade == (min(grades) if len(grades) == 1 else None), (known, masked)
        assert result.missing == tuple(missing), (known, masked)
        assert bool(result.decisive) == (result.grade is not None)


# --- CRS: bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"temperature_c": 38.5}, "temperature_c", "must be a finite decimal number"),
        ({"temperature_c": "38.5"}, "temperature_c", "must be a finite decimal number"),
        ({"temperature_c": Decimal("NaN")}, "temperature_c", "must be a finite decimal number"),
        ({"temperature_c": Decimal("Infinity")}, "temperature_c", "must be a finite decimal number"),
        ({"temperature_c": Decimal("24.9")}, "temperature_c", "24.9 is outside 25-45 °C"),
        ({"temperature_c": Decimal("45.1")}, "temperature_c", "45.1 is outside 25-45 °C"),
        ({"temperature_c": Decimal("100.4")}, "temperature_c", "100.4 is outside 25-45 °C"),
        ({"systolic_bp_mmhg": 89.5}, "systolic_bp_mmhg", "must be a whole number"),
        ({"systolic_bp_mmhg": True}, "systolic_bp_mmhg", "must be a whole number"),
        ({"systolic_bp_mmhg": "90"}, "systolic_bp_mmhg", "must be a whole number"),
        ({"systolic_bp_mmhg": -1}, "systolic_bp_mmhg", "-1 is outside 0-300 mmHg"),
        ({"systolic_bp_mmhg": 301}, "systolic_bp_mmhg", "301 is outside 0-300 mmHg"),
        ({"vasopressors": "one"}, "vasopressors", "must be one of none, one, several"),
        ({"oxygen": "low_flow"}, "oxygen", "must be one of none, low_flow, high_flow, positive_pressure"),
        ({"fever_masked": None}, "fever_masked", "must be true or false"),
        ({"fever_masked": 1}, "fever_masked", "must be true or false"),
    ],
)
def test_bad_crs_findings_are_refused_naming_the_field(kwargs, field, reason):
    with pytest.raises(GradingError) as error:
        CrsFindings(**kwargs)
    assert (error.value.field, error.value.reason) == (field, reason)
    assert str(error.value) == f"{field}: {reason}"
    assert isinstance(error.value, ValueError)


def test_the_plausible_limits_are_accepted():
    assert CrsFindings(Decimal("25"), 0).temperature_c == Decimal("25")
    assert CrsFindings(Decimal("45"), 300).systolic_bp_mmhg == 300
    assert CrsFindings(Decimal(38), fever_masked=True).fever_masked is True
    assert CrsFindings() == CrsFindings(None, None, None, None, False)


def test_findings_are_frozen():
    findings = CrsFindings()
    with pytest.raises(AttributeError):
        findings.oxygen = OX.NONE  # type: ignore[misc]


# --- ICANS -------------------------------------------------------------------------------------------------------

NORMAL: dict[str, Any] = {
    "level_of_consciousness": Consciousness.ALERT,
    "seizure": Seizure.NONE,
    "motor_weakness": MotorWeakness.NONE,
    "raised_icp": RaisedIcp.NONE,
}
GRADE_0 = "ICE score 10/10, alert, no seizure, no motor weakness, no raised intracranial pressure → grade 0"


def ice(score: int | None = 10, unknown: int = 0) -> dict[str, Any]:
    """The first `score` items done, then `unknown` items not recorded, the rest failed."""
    answers: list[bool | None] = [True] * (score or 0) + [None] * unknown
    answers += [False] * (ICE_MAX - len(answers))
    return dict(zip(ICE_ITEMS, answers, strict=True))


def icans(score: int | None = 10, unknown: int = 0, **domains: Any) -> IcansGrade:
    return grade_icans(IcansFindings(**{**ice(score, unknown), **NORMAL, **domains}))


def test_ice_items_are_the_ten_of_the_consensus():
    assert ICE_ITEMS == (
        "oriented_year",
        "oriented_month",
        "oriented_city",
        "oriented_hospital",
        "names_object_1",
        "names_object_2",
        "names_object_3",
        "follows_commands",
        "writes_sentence",
        "counts_backwards",
    )


@pytest.mark.parametrize(
    ("score", "grade"), [(10, 0), (9, 1), (8, 1), (7, 1), (6, 2), (5, 2), (4, 2), (3, 2), (2, 3), (1, 3), (0, 3)]
)
def test_ice_grade(score, grade):
    assert ice_grade(score) == grade


def test_ice_score_counts_each_item():
    for item in ICE_ITEMS:
        findings = IcansFindings(**{**ice(0), item: True})
        assert findings.ice_score == 1
        assert IcansFindings(**{**ice(10), item: False}).ice_score == 9
        assert IcansFindings(**{**ice(10), item: None}).ice_score is None
    assert IcansFindings(**ice(10)).ice_score == 10
    assert IcansFindings(unable_to_perform_ice=True).ice_score == 0
    assert IcansFindings().ice_score is None


def test_ice_10_with_every_domain_normal_is_grade_0():
    assert icans(10) == IcansGrade(0, (GRADE_0,), (), 0, 0, 10, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(("score", "grade"), [(9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3)])
def test_ice_score_alone(score, grade):
    assert icans(score) == IcansGrade(
        grade, (f"ICE score {score}/10 → grade {grade}",), (), grade, grade, score, grade, 0, 0, 0, 0
    )


def test_ice_0_unarousable_is_grade_4():
    result = grade_icans(
        IcansFindings(**ice(0), unable_to_perform_ice=True, **{**NORMAL, "level_of_consciousness": None})
    )
    assert result == IcansGrade(
        4, ("ICE score 0/10: unarousable, unable to perform ICE → grade 4",), (), 4, 4, 0, 4, None, 0, 0, 0
    )
    # the items need not be recorded when the patient cannot do the test
    alone = grade_icans(IcansFindings(unable_to_perform_ice=True))
    assert alone == IcansGrade(
        4, ("ICE score 0/10: unarousable, unable to perform ICE → grade 4",), (), 4, 4, 0, 4, None, None, None, None
    )


def test_ice_0_awake_is_grade_3_and_unarousable_with_ice_0_is_grade_4():
    assert icans(0).grade == 3
    both = grade_icans(
        IcansFindings(
            **ice(0), unable_to_perform_ice=True, **{**NORMAL, "level_of_consciousness": Consciousness.UNAROUSABLE}
        )
    )
    assert both.grade == 4
    assert both.decisive == (
        "ICE score 0/10: unarousable, unable to perform ICE → grade 4",
        "level of consciousness: unarousable or needs vigorous or repetitive tactile stimuli; stupor or coma → grade 4",
    )


@pytest.mark.parametrize(
    ("level", "grade", "text"),
    [
        (Consciousness.AWAKENS_SPONTANEOUSLY, 1, "awakens spontaneously"),
        (Consciousness.AWAKENS_TO_VOICE, 2, "awakens to voice"),
        (Consciousness.AWAKENS_TO_TOUCH, 3, "awakens only to tactile stimulus"),
        (Consciousness.UNAROUSABLE, 4, "unarousable or needs vigorous or repetitive tactile stimuli; stupor or coma"),
    ],
)
def test_consciousness_alone(level, grade, text):
    assert icans(level_of_consciousness=level) == IcansGrade(
        grade, (f"level of consciousness: {text} → grade {grade}",), (), grade, grade, 10, 0, grade, 0, 0, 0
    )


@pytest.mark.parametrize(
    ("seizure", "grade", "text"),
    [
        (
            Seizure.RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG,
            3,
            "clinical seizure that resolves rapidly, or non-convulsive seizures on EEG resolving with intervention",
        ),
        (
            Seizure.PROLONGED_OR_REPETITIVE,
            4,
            "life-threatening prolonged seizure (> 5 min) or repetitive seizures without return to baseline",
        ),
    ],
)
def test_seizure_alone(seizure, grade, text):
    assert icans(seizure=seizure) == IcansGrade(
        grade, (f"seizure: {text} → grade {grade}",), (), grade, grade, 10, 0, 0, grade, 0, 0
    )


def test_motor_alone():
    assert icans(motor_weakness=MotorWeakness.DEEP_FOCAL) == IcansGrade(
        4, ("motor: deep focal weakness (hemiparesis or paraparesis) → grade 4",), (), 4, 4, 10, 0, 0, 0, 4, 0
    )


@pytest.mark.parametrize(
    ("icp", "grade", "text"),
    [
        (RaisedIcp.FOCAL_OEDEMA, 3, "focal/local oedema on neuroimaging"),
        (
            RaisedIcp.DIFFUSE_OEDEMA_OR_SIGNS,
            4,
            "diffuse cerebral oedema, decerebrate or decorticate posturing, cranial nerve VI palsy, papilloedema "
            "or Cushing's triad",
        ),
    ],
)
def test_raised_icp_alone(icp, grade, text):
    assert icans(raised_icp=icp) == IcansGrade(
        grade, (f"raised intracranial pressure: {text} → grade {grade}",), (), grade, grade, 10, 0, 0, 0, 0, grade
    )


def test_the_worst_domain_wins_and_is_named():
    # ASTCT's example: an ICE score of 3 with a generalised seizure is grade 3
    result = icans(3, seizure=Seizure.RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG)
    assert result.grade == 3
    assert result.decisive == (
        "seizure: clinical seizure that resolves rapidly, or non-convulsive seizures on EEG resolving with "
        "intervention → grade 3",
    )
    assert (result.ice_grade, result.seizure_grade) == (2, 3)
    worst = icans(
        6,
        level_of_consciousness=Consciousness.AWAKENS_TO_TOUCH,
        raised_icp=RaisedIcp.DIFFUSE_OEDEMA_OR_SIGNS,
        motor_weakness=MotorWeakness.DEEP_FOCAL,
    )
    assert worst.grade == 4
    assert worst.decisive == (
        "motor: deep focal weakness (hemiparesis or paraparesis) → grade 4",
        "raised intracranial pressure: diffuse cerebral oedema, decerebrate or decorticate posturing, cranial nerve "
        "VI palsy, papilloedema or Cushing's triad → grade 4",
    )
    assert (worst.ice_grade, worst.consciousness_grade, worst.seizure_grade) == (2, 3, 0)


def test_every_domain_at_the_same_grade_is_named_in_order():
    result = icans(
        2,
        level_of_consciousness=Consciousness.AWAKENS_TO_TOUCH,
        seizure=Seizure.RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG,
        raised_icp=RaisedIcp.FOCAL_OEDEMA,
    )
    assert result.decisive == (
        "ICE score 2/10 → grade 3",
        "level of consciousness: awakens only to tactile stimulus → grade 3",
        "seizure: clinical seizure that resolves rapidly, or non-convulsive seizures on EEG resolving with "
        "intervention → grade 3",
        "raised intracranial pressure: focal/local oedema on neuroimaging → grade 3",
    )
    assert icans(8, level_of_consciousness=Consciousness.AWAKENS_SPONTANEOUSLY).decisive == (
        "ICE score 8/10 → grade 1",
        "level of consciousness: awakens spontaneously → grade 1",
    )


# --- ICANS: unrecorded findings ----------------------------------------------------------------------------------


def test_an_unrecorded_domain_keeps_the_grade_pending():
    assert icans(level_of_consciousness=None) == IcansGrade(
        None, (), ("level_of_consciousness",), 0, 4, 10, 0, None, 0, 0, 0
    )
    assert icans(seizure=None) == IcansGrade(None, (), ("seizure",), 0, 4, 10, 0, 0, None, 0, 0)
    assert icans(motor_weakness=None) == IcansGrade(None, (), ("motor_weakness",), 0, 4, 10, 0, 0, 0, None, 0)
    assert icans(raised_icp=None) == IcansGrade(None, (), ("raised_icp",), 0, 4, 10, 0, 0, 0, 0, None)


def test_an_unrecorded_ice_item_keeps_the_grade_pending():
    result = icans(9, unknown=1)
    assert result == IcansGrade(None, (), ("counts_backwards",), 0, 1, None, None, 0, 0, 0, 0)
    assert icans(5, unknown=3).missing == ("names_object_2", "names_object_3", "follows_commands")
    assert (icans(5, unknown=3).at_least, icans(5, unknown=3).at_most) == (1, 2)


def test_unrecorded_ice_items_that_cannot_change_the_ice_grade_are_ignored():
    # 7 or 8 of 10: grade 1 either way
    assert icans(7, unknown=1) == IcansGrade(1, ("ICE score 7 to 8/10 → grade 1",), (), 1, 1, None, 1, 0, 0, 0, 0)
    assert icans(3, unknown=3).decisive == ("ICE score 3 to 6/10 → grade 2",)
    assert icans(0, unknown=2).decisive == ("ICE score 0 to 2/10 → grade 3",)


def test_a_grade_4_finding_decides_whatever_is_missing():
    result = grade_icans(IcansFindings(motor_weakness=MotorWeakness.DEEP_FOCAL))
    assert result == IcansGrade(
        4,
        ("motor: deep focal weakness (hemiparesis or paraparesis) → grade 4",),
        (),
        4,
        4,
        None,
        None,
        None,
        None,
        4,
        None,
    )


def test_only_the_findings_that_can_raise_the_grade_are_missing():
    # a seizure gives 3: only grade-4 domains matter, not the ICE items (at most 3)
    result = grade_icans(IcansFindings(seizure=Seizure.RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG))
    assert result == IcansGrade(
        None, (), ("level_of_consciousness", "motor_weakness", "raised_icp"), 3, 4, None, None, None, 3, None, None
    )
    nothing = grade_icans(IcansFindings())
    assert nothing.missing == (*ICE_ITEMS, "level_of_consciousness", "seizure", "motor_weakness", "raised_icp")
    assert (nothing.grade, nothing.at_least, nothing.at_most, nothing.decisive) == (None, 0, 4, ())


def _oracle_icans(score, unarousable_ice, consciousness, seizure, motor, icp):
    grades = [
        4 if unarousable_ice else 0 if score == 10 else 1 if score >= 7 else 2 if score >= 3 else 3,
        [
            Consciousness.ALERT,
            Consciousness.AWAKENS_SPONTANEOUSLY,
            Consciousness.AWAKENS_TO_VOICE,
            Consciousness.AWAKENS_TO_TOUCH,
            Consciousness.UNAROUSABLE,
        ].index(consciousness),
        {Seizure.NONE: 0, Seizure.RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG: 3, Seizure.PROLONGED_OR_REPETITIVE: 4}[
            seizure
        ],
        {MotorWeakness.NONE: 0, MotorWeakness.DEEP_FOCAL: 4}[motor],
        {RaisedIcp.NONE: 0, RaisedIcp.FOCAL_OEDEMA: 3, RaisedIcp.DIFFUSE_OEDEMA_OR_SIGNS: 4}[icp],
    ]
    return max(grades)


def test_icans_combinations_against_an_oracle():
    domains = ((None, *Consciousness), (None, *Seizure), (None, *MotorWeakness), (None, *RaisedIcp))
    names = ("level_of_consciousness", "seizure", "motor_weakness", "raised_icp")
    ice_states = [(10, 0), (9, 0), (7, 0), (6, 0), (2, 0), (9, 1), (6, 1), (2, 1), (5, 3), (0, 10), None]
    for state, *known in product(ice_states, *domains):
        if state is None:
            if known[0] not in (None, Consciousness.UNAROUSABLE):
                continue
            items: dict[str, Any] = {}
            scores: Sequence[int] = [0]
            unarousable = True
        else:
            done, unknown = state
            items, scores, unarousable = ice(done, unknown), range(done, done + unknown + 1), False
        choices = [(value,) if value is not None else values[1:] for value, values in zip(known, domains, strict=True)]
        completions = [(score, *rest) for score in scores for rest in product(*choices)]
        grades = {_oracle_icans(score, unarousable, *rest) for score, *rest in completions}
        missing: list[str] = []
        if state is not None and state[1]:
            done, unknown = state
            # one item flipped while the other unknown items give any score from done to done + unknown - 1
            flips = any(
                _oracle_icans(other, False, *rest) != _oracle_icans(other + 1, False, *rest)
                for other in range(done, done + unknown)
                for rest in product(*choices)
            )
            if flips:
                missing += [item for item in ICE_ITEMS if items[item] is None]
        for position in range(4):
            outcomes: dict = {}
            for completion in completions:
                others = completion[: position + 1] + completion[position + 2 :]
                outcomes.setdefault(others, set()).add(_oracle_icans(completion[0], unarousable, *completion[1:]))
            if any(len(found) > 1 for found in outcomes.values()):
                missing.append(names[position])
        domain_values: dict[str, Any] = dict(zip(names, known, strict=True))
        findings = IcansFindings(**items, unable_to_perform_ice=unarousable, **domain_values)
        result = grade_icans(findings)
        assert (result.at_least, result.at_most) == (min(grades), max(grades)), (state, known)
        assert result.grade == (min(grades) if len(grades) == 1 else None), (state, known)
        assert result.missing == tuple(missing), (state, known)
        assert bool(result.decisive) == (result.grade is not None)
        assert result.consciousness_grade == (
            None
            if known[0] is None
            else _oracle_icans(10, False, known[0], Seizure.NONE, MotorWeakness.NONE, RaisedIcp.NONE)
        )


# --- ICANS: bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"oriented_year": 1}, "oriented_year", "must be true, false or not recorded"),
        ({"counts_backwards": "yes"}, "counts_backwards", "must be true, false or not recorded"),
        ({"unable_to_perform_ice": None}, "unable_to_perform_ice", "must be true or false"),
        (
            {"level_of_consciousness": "alert"},
            "level_of_consciousness",
            "must be one of alert, awakens_spontaneously, awakens_to_voice, awakens_to_touch, unarousable",
        ),
        (
            {"seizure": "none"},
            "seizure",
            "must be one of none, rapidly_resolving_or_nonconvulsive_eeg, prolonged_or_repetitive",
        ),
        ({"motor_weakness": "none"}, "motor_weakness", "must be one of none, deep_focal"),
        ({"raised_icp": "none"}, "raised_icp", "must be one of none, focal_oedema, diffuse_oedema_or_signs"),
        (
            {"unable_to_perform_ice": True, "writes_sentence": True},
            "writes_sentence",
            "recorded as done, but the patient was unable to perform ICE",
        ),
        (
            {"unable_to_perform_ice": True, "oriented_year": True},
            "oriented_year",
            "recorded as done, but the patient was unable to perform ICE",
        ),
        (
            {"unable_to_perform_ice": True, "level_of_consciousness": Consciousness.AWAKENS_TO_TOUCH},
            "level_of_consciousness",
            "must be unarousable when the patient is unable to perform ICE",
        ),
    ],
)
def test_bad_icans_findings_are_refused_naming_the_field(kwargs, field, reason):
    with pytest.raises(GradingError) as error:
        IcansFindings(**kwargs)
    assert (error.value.field, error.value.reason) == (field, reason)


def test_consistent_unable_findings_are_accepted():
    findings = IcansFindings(**ice(0), unable_to_perform_ice=True, level_of_consciousness=Consciousness.UNAROUSABLE)
    assert findings.ice_score == 0
    assert IcansFindings(**ice(0), unable_to_perform_ice=False).ice_score == 0
