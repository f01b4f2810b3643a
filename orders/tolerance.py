"""The bedside tolerance check before each high-dose aldesleukin (IL-2) dose after a TIL infusion (pure; no
database). docs/clinical-sources.md §12 has the criteria and their sources.

Every finding must be recorded: a check with a finding missing is PENDING (the dose waits), never tolerated. Any
finding past its limit HOLDs the dose, with the reason; the dose is given only when the check says TOLERATED.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum

# Limits (JITC 2024 TIL consensus, Table 2; JITC 2014 high-dose IL-2 consensus, Table 3)
MAX_HEART_RATE_BPM = 130
MIN_SPO2_PERCENT = 95
MAX_OXYGEN_L_MIN = Decimal(4)
MIN_URINE_ML_PER_KG_H = Decimal("0.5")
MAX_CREATININE_MG_DL = Decimal("2.5")  # 2.5 mg/dL and above: hold

# What a plausible entry is (else refused naming the field: a slip of the keyboard, not a finding)
PLAUSIBLE: dict[str, tuple[Decimal, Decimal]] = {
    "systolic_bp_mmhg": (Decimal(30), Decimal(300)),
    "target_systolic_mmhg": (Decimal(60), Decimal(200)),
    "heart_rate_bpm": (Decimal(20), Decimal(300)),
    "spo2_percent": (Decimal(40), Decimal(100)),
    "oxygen_l_min": (Decimal(0), Decimal(60)),
    "urine_ml_per_kg_h": (Decimal(0), Decimal(50)),
    "creatinine_mg_dl": (Decimal("0.1"), Decimal(30)),
}


class ToleranceVerdict(StrEnum):
    TOLERATED = "tolerated"
    HOLD = "hold"
    PENDING = "pending"


class ToleranceError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class ToleranceFindings:
    """What the nurse records about 2 h before the dose. None = not recorded."""

    systolic_bp_mmhg: int | None = None
    target_systolic_mmhg: int | None = None  # set on admission
    vasopressors: bool | None = None
    heart_rate_bpm: int | None = None
    new_arrhythmia: bool | None = None  # atrial fibrillation, SVT, ventricular arrhythmia, ischaemic ECG
    spo2_percent: int | None = None
    oxygen_l_min: Decimal | None = None  # 0 on room air
    urine_ml_per_kg_h: Decimal | None = None
    creatinine_mg_dl: Decimal | None = None
    mental_status_changed: bool | None = None  # confusion, disorientation, agitation


FINDING_FIELDS = tuple(field.name for field in fields(ToleranceFindings))


@dataclass(frozen=True)
class ToleranceResult:
    verdict: ToleranceVerdict
    reasons: tuple[str, ...]  # why held
    missing: tuple[str, ...]  # what is not recorded


def _checked(findings: ToleranceFindings) -> None:
    for name, (low, high) in PLAUSIBLE.items():
        value = getattr(findings, name)
        if value is not None and not low <= Decimal(value) <= high:
            raise ToleranceError(name, f"{value} is not a plausible value ({low} to {high}).")


def assess_tolerance(findings: ToleranceFindings) -> ToleranceResult:
    """Held when any finding is past its limit (every reason given), pending when none is but one is missing,
    tolerated only when every finding is recorded and within its limit."""
    _checked(findings)
    f = findings
    reasons = []
    if f.vasopressors:
        reasons.append("on vasopressors")
    systolic, target = f.systolic_bp_mmhg, f.target_systolic_mmhg
    if systolic is not None and target is not None and systolic < target:
        reasons.append(f"systolic {systolic} mmHg below the target {target} mmHg")
    if f.heart_rate_bpm is not None and f.heart_rate_bpm > MAX_HEART_RATE_BPM:
        reasons.append(f"heart rate {f.heart_rate_bpm}/min > {MAX_HEART_RATE_BPM}/min")
    if f.new_arrhythmia:
        reasons.append("new arrhythmia or ischaemic ECG")
    if f.spo2_percent is not None and f.spo2_percent < MIN_SPO2_PERCENT:
        reasons.append(f"SpO2 {f.spo2_percent} % < {MIN_SPO2_PERCENT} %")
    if f.oxygen_l_min is not None and f.oxygen_l_min > MAX_OXYGEN_L_MIN:
        reasons.append(f"oxygen {f.oxygen_l_min} L/min > {MAX_OXYGEN_L_MIN} L/min")
    if f.urine_ml_per_kg_h is not None and f.urine_ml_per_kg_h < MIN_URINE_ML_PER_KG_H:
        reasons.append(f"urine output {f.urine_ml_per_kg_h} mL/kg/h < {MIN_URINE_ML_PER_KG_H} mL/kg/h")
    if f.creatinine_mg_dl is not None and f.creatinine_mg_dl >= MAX_CREATININE_MG_DL:
        reasons.append(f"creatinine {f.creatinine_mg_dl} mg/dL ≥ {MAX_CREATININE_MG_DL} mg/dL")
    if f.mental_status_changed:
        reasons.append("mental status changed")
    missing = tuple(name for name in FINDING_FIELDS if getattr(f, name) is None)
    if reasons:
        return ToleranceResult(ToleranceVerdict.HOLD, tuple(reasons), missing)
    if missing:
        return ToleranceResult(ToleranceVerdict.PENDING, (), missing)
    return ToleranceResult(ToleranceVerdict.TOLERATED, (), ())
