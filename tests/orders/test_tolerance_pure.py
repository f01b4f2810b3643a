"""orders.tolerance: the bedside tolerance check before a high-dose aldesleukin dose (pure). Every limit at its
edge; a missing finding is pending, never tolerated; a finding past its limit holds whatever is missing."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from orders.choices import ToleranceVerdictChoice
from orders.schedule import dose_offsets
from orders.tolerance import (
    ToleranceError,
    ToleranceFindings,
    ToleranceVerdict,
    assess_tolerance,
)

WELL = ToleranceFindings(
    systolic_bp_mmhg=112, target_systolic_mmhg=90, vasopressors=False, heart_rate_bpm=96, new_arrhythmia=False,
    spo2_percent=97, oxygen_l_min=Decimal(0), urine_ml_per_kg_h=Decimal("0.8"), creatinine_mg_dl=Decimal("1.1"),
    mental_status_changed=False,
)  # fmt: skip


def test_every_finding_recorded_and_within_its_limit_is_tolerated():
    assert assess_tolerance(WELL) == assess_tolerance(WELL)
    result = assess_tolerance(WELL)
    assert result.verdict == ToleranceVerdict.TOLERATED
    assert result.reasons == ()
    assert result.missing == ()


@pytest.mark.parametrize(
    ("change", "verdict", "reason"),
    [
        ({"systolic_bp_mmhg": 89}, "hold", "systolic 89 mmHg below the target 90 mmHg"),
        ({"systolic_bp_mmhg": 90}, "tolerated", ""),
        ({"vasopressors": True}, "hold", "on vasopressors"),
        ({"heart_rate_bpm": 131}, "hold", "heart rate 131/min > 130/min"),
        ({"heart_rate_bpm": 130}, "tolerated", ""),
        ({"new_arrhythmia": True}, "hold", "new arrhythmia or ischaemic ECG"),
        ({"spo2_percent": 94}, "hold", "SpO2 94 % < 95 %"),
        ({"spo2_percent": 95}, "tolerated", ""),
        ({"oxygen_l_min": Decimal("4.5")}, "hold", "oxygen 4.5 L/min > 4 L/min"),
        ({"oxygen_l_min": Decimal(4)}, "tolerated", ""),
        ({"urine_ml_per_kg_h": Decimal("0.49")}, "hold", "urine output 0.49 mL/kg/h < 0.5 mL/kg/h"),
        ({"urine_ml_per_kg_h": Decimal("0.5")}, "tolerated", ""),
        ({"creatinine_mg_dl": Decimal("2.5")}, "hold", "creatinine 2.5 mg/dL ≥ 2.5 mg/dL"),
        ({"creatinine_mg_dl": Decimal("2.49")}, "tolerated", ""),
        ({"mental_status_changed": True}, "hold", "mental status changed"),
    ],
)
def test_each_limit_at_its_edge(change, verdict, reason):
    result = assess_tolerance(replace(WELL, **change))
    assert result.verdict == verdict
    assert result.reasons == ((reason,) if reason else ())


def test_every_reason_is_given_together():
    result = assess_tolerance(replace(WELL, heart_rate_bpm=140, mental_status_changed=True, spo2_percent=90))
    assert result.reasons == ("heart rate 140/min > 130/min", "SpO2 90 % < 95 %", "mental status changed")


@pytest.mark.parametrize("name", [f for f in WELL.__dataclass_fields__])
def test_a_missing_finding_is_pending_never_tolerated(name):
    result = assess_tolerance(replace(WELL, **{name: None}))
    assert result.verdict == ToleranceVerdict.PENDING
    assert result.missing == (name,)


def test_a_finding_past_its_limit_holds_even_with_others_missing():
    result = assess_tolerance(ToleranceFindings(urine_ml_per_kg_h=Decimal("0.2")))
    assert result.verdict == ToleranceVerdict.HOLD
    assert "urine_ml_per_kg_h" not in result.missing
    assert len(result.missing) == 9


@pytest.mark.parametrize(
    ("name", "value"),
    [("systolic_bp_mmhg", 29), ("systolic_bp_mmhg", 301), ("spo2_percent", 101), ("creatinine_mg_dl", Decimal(31)),
     ("heart_rate_bpm", 19), ("oxygen_l_min", Decimal(61)), ("urine_ml_per_kg_h", Decimal(51)),
     ("target_systolic_mmhg", 59)],
)  # fmt: skip
def test_an_implausible_entry_is_refused_naming_the_field(name, value):
    with pytest.raises(ToleranceError) as refused:
        assess_tolerance(replace(WELL, **{name: value}))
    assert refused.value.field == name


@pytest.mark.parametrize(
    ("name", "value"), [("systolic_bp_mmhg", 30), ("systolic_bp_mmhg", 300), ("spo2_percent", 100)]
)
def test_the_plausible_range_includes_its_ends(name, value):
    assert assess_tolerance(replace(WELL, **{name: value})).verdict in ("tolerated", "hold")


def test_the_stored_verdicts_are_the_pure_ones():
    assert {v.value for v in ToleranceVerdict} == set(ToleranceVerdictChoice.values)


def test_aldesleukin_every_8_hours_six_doses_and_no_seventh():
    offsets = dose_offsets(steps=[], cycle_days=1, number_of_doses=6, cycle_hours=8)
    assert [o.total_seconds() / 3600 for o in offsets] == [0, 8, 16, 24, 32, 40]


def test_a_refusal_says_the_field_the_value_and_the_range():
    with pytest.raises(ToleranceError) as refused:
        assess_tolerance(replace(WELL, spo2_percent=140))
    assert refused.value.reason == "140 is not a plausible value (40 to 100)."
    assert str(refused.value) == "spo2_percent: 140 is not a plausible value (40 to 100)."


def test_a_pending_check_gives_no_reason():
    assert assess_tolerance(replace(WELL, heart_rate_bpm=None)).reasons == ()
