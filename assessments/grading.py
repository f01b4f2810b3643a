"""ASTCT 2019 consensus grading of cytokine release syndrome (CRS) and of immune effector cell-associated
neurotoxicity syndrome (ICANS, adults) from one bedside assessment (Lee et al., Biol Blood Marrow Transplant
2019;25:625-638; sources in docs/clinical-sources.md §7).

Pure code, no Django (docs/architecture.md): the models, forms and alerts are built on it. Mutation-tested
(docs/mutation-testing.md).

Fail closed: a finding that was not recorded (None) leaves the grade pending (`Grade.grade is None`) whenever some
value of it could change the grade; it is ignored only when no value of it can. The grade is therefore exact:
every way of completing the assessment gives the same grade, or there is no grade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import product
from typing import Any

# ASTCT: fever is a temperature of at least 38 °C.
FEVER_C = Decimal("38")
# ASTCT gives no number for hypotension. Systolic < 90 mmHg is the adult definition used by the tables adapted
# from the consensus (docs/clinical-sources.md §7); a site may pass another one.
DEFAULT_HYPOTENSION_BELOW_SYSTOLIC_MMHG = 90
# Plausible bedside values; outside them the entry is a typing error (100.4 is °F, not a fever of 100.4 °C).
TEMPERATURE_RANGE_C = (Decimal("25"), Decimal("45"))
SYSTOLIC_RANGE_MMHG = (0, 300)
ICE_MAX = 10


class GradingError(ValueError):
    """An assessment that cannot be graded: `field` names the finding, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Vasopressors(StrEnum):
    NONE = "none"
    ONE = "one"  # one vasopressor, with or without vasopressin
    SEVERAL = "several"  # multiple vasopressors, vasopressin not counted


class OxygenSupport(StrEnum):
    NONE = "none"
    LOW_FLOW = "low_flow"  # nasal cannula <= 6 L/min, or blow-by
    HIGH_FLOW = "high_flow"  # high-flow nasal cannula > 6 L/min, facemask, non-rebreather, Venturi mask
    POSITIVE_PRESSURE = "positive_pressure"  # CPAP, BiPAP, intubation and mechanical ventilation


class Consciousness(StrEnum):
    ALERT = "alert"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice"
    AWAKENS_TO_TOUCH = "awakens_to_touch"  # only to a tactile stimulus
    UNAROUSABLE = "unarousable"  # or needs vigorous or repetitive tactile stimuli; stupor, coma


class Seizure(StrEnum):
    NONE = "none"
    # a clinical seizure, focal or generalised, that resolves rapidly, or non-convulsive seizures on EEG that
    # resolve with intervention
    RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG = "rapidly_resolving_or_nonconvulsive_eeg"
    # life-threatening prolonged seizure (> 5 min), or repetitive seizures without return to baseline in between
    PROLONGED_OR_REPETITIVE = "prolonged_or_repetitive"


class MotorWeakness(StrEnum):
    NONE = "none"
    DEEP_FOCAL = "deep_focal"  # hemiparesis, paraparesis


class RaisedIcp(StrEnum):
    NONE = "none"
    FOCAL_OEDEMA = "focal_oedema"  # focal/local oedema on neuroimaging
    # diffuse cerebral oedema on neuroimaging, decerebrate or decorticate posturing, cranial nerve VI palsy,
    # papilloedema or Cushing's triad
    DIFFUSE_OEDEMA_OR_SIGNS = "diffuse_oedema_or_signs"


def _check_choice(field: str, value: object, choices: type[StrEnum]) -> None:
    if value is not None and not isinstance(value, choices):
        raise GradingError(field, "must be one of " + ", ".join(choice.value for choice in choices))


def _check_range(field: str, value: Decimal | int, low: Decimal | int, high: Decimal | int, unit: str) -> None:
    if not low <= value <= high:
        raise GradingError(field, f"{value} is outside {low}-{high} {unit}")


@dataclass(frozen=True)
class CrsFindings:
    """What the nurse saw; None = not recorded. `fever_masked`: antipyretic or anti-cytokine therapy (such as
    tocilizumab or corticosteroids) was given, so fever is no longer required (ASTCT)."""

    temperature_c: Decimal | None = None
    systolic_bp_mmhg: int | None = None
    vasopressors: Vasopressors | None = None
    oxygen: OxygenSupport | None = None
    fever_masked: bool = False

    def __post_init__(self) -> None:
        temperature = self.temperature_c
        if temperature is not None:
            if not isinstance(temperature, Decimal) or not temperature.is_finite():
                raise GradingError("temperature_c", "must be a finite decimal number")
            _check_range("temperature_c", temperature, *TEMPERATURE_RANGE_C, "°C")
        systolic = self.systolic_bp_mmhg
        if systolic is not None:
            if not isinstance(systolic, int) or isinstance(systolic, bool):
                raise GradingError("systolic_bp_mmhg", "must be a whole number")
            _check_range("systolic_bp_mmhg", systolic, *SYSTOLIC_RANGE_MMHG, "mmHg")
        _check_choice("vasopressors", self.vasopressors, Vasopressors)
        _check_choice("oxygen", self.oxygen, OxygenSupport)
        if not isinstance(self.fever_masked, bool):
            raise GradingError("fever_masked", "must be true or false")


ICE_ITEMS = (
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


@dataclass(frozen=True)
class IcansFindings:
    """The ten ICE items (True = 1 point, False = 0, None = not recorded) and the other domains.

    `unable_to_perform_ice`: the patient is unarousable and cannot do the ICE test (score 0, ICANS grade 4); no
    item may then be recorded as done, and the level of consciousness, if recorded, is unarousable."""

    oriented_year: bool | None = None
    oriented_month: bool | None = None
    oriented_city: bool | None = None
    oriented_hospital: bool | None = None
    names_object_1: bool | None = None
    names_object_2: bool | None = None
    names_object_3: bool | None = None
    follows_commands: bool | None = None  # simple commands, e.g. "show me 2 fingers"
    writes_sentence: bool | None = None  # a standard sentence
    counts_backwards: bool | None = None  # from 100 by 10
    unable_to_perform_ice: bool = False
    level_of_consciousness: Consciousness | None = None
    seizure: Seizure | None = None
    motor_weakness: MotorWeakness | None = None
    raised_icp: RaisedIcp | None = None

    def __post_init__(self) -> None:
        for item in ICE_ITEMS:
            value = getattr(self, item)
            if value is not None and not isinstance(value, bool):
                raise GradingError(item, "must be true, false or not recorded")
        if not isinstance(self.unable_to_perform_ice, bool):
            raise GradingError("unable_to_perform_ice", "must be true or false")
        _check_choice("level_of_consciousness", self.level_of_consciousness, Consciousness)
        _check_choice("seizure", self.seizure, Seizure)
        _check_choice("motor_weakness", self.motor_weakness, MotorWeakness)
        _check_choice("raised_icp", self.raised_icp, RaisedIcp)
        if self.unable_to_perform_ice:
            for item in ICE_ITEMS:
                if getattr(self, item):
                    raise GradingError(item, "recorded as done, but the patient was unable to perform ICE")
            if self.level_of_consciousness not in (None, Consciousness.UNAROUSABLE):
                raise GradingError(
                    "level_of_consciousness", "must be unarousable when the patient is unable to perform ICE"
                )

    @property
    def ice_score(self) -> int | None:
        """0-10; 0 when unable to perform ICE; None while an item is not recorded."""
        if self.unable_to_perform_ice:
            return 0
        answers = [getattr(self, item) for item in ICE_ITEMS]
        if None in answers:
            return None
        return sum(answers)


@dataclass(frozen=True)
class Grade:
    """`grade` None = pending (shown as PENDING): `missing` names the unrecorded findings that could still change
    it, and the grade lies between `at_least` and `at_most`. `decisive`: the rules that set a decided grade."""

    grade: int | None
    decisive: tuple[str, ...]
    missing: tuple[str, ...]
    at_least: int
    at_most: int


@dataclass(frozen=True)
class IcansGrade(Grade):
    """The overall ICANS grade (the worst domain) and each domain's own grade (None while it is pending)."""

    ice_score: int | None
    ice_grade: int | None
    consciousness_grade: int | None
    seizure_grade: int | None
    motor_grade: int | None
    raised_icp_grade: int | None


def _possible(options: Sequence[Sequence[object]], grade: Callable[..., int]) -> tuple[set[int], list[int]]:
    """Every grade that some completion of the unrecorded findings gives, and which findings (by position) can
    change the grade on their own for some completion of the others."""
    combinations = list(product(*options))
    grades = {grade(*combination) for combination in combinations}
    relevant = []
    for position in range(len(options)):
        by_others: dict[tuple[object, ...], set[int]] = {}
        for combination in combinations:
            others = combination[:position] + combination[position + 1 :]
            by_others.setdefault(others, set()).add(grade(*combination))
        if any(len(found) > 1 for found in by_others.values()):
            relevant.append(position)
    return grades, relevant


# --- CRS --------------------------------------------------------------------------------------------------------

_VASOPRESSOR_GRADE = {Vasopressors.ONE: 3, Vasopressors.SEVERAL: 4}
_VASOPRESSOR_TEXT = {
    Vasopressors.ONE: "hypotension requiring one vasopressor (with or without vasopressin)",
    Vasopressors.SEVERAL: "hypotension requiring multiple vasopressors (excluding vasopressin)",
}
_OXYGEN_GRADE = {
    OxygenSupport.NONE: 0,
    OxygenSupport.LOW_FLOW: 2,
    OxygenSupport.HIGH_FLOW: 3,
    OxygenSupport.POSITIVE_PRESSURE: 4,
}
_OXYGEN_TEXT = {
    OxygenSupport.LOW_FLOW: "hypoxia requiring low-flow oxygen (nasal cannula ≤ 6 L/min or blow-by)",
    OxygenSupport.HIGH_FLOW: (
        "hypoxia requiring high-flow nasal cannula (> 6 L/min), facemask, non-rebreather or Venturi mask"
    ),
    OxygenSupport.POSITIVE_PRESSURE: (
        "hypoxia requiring positive pressure (CPAP, BiPAP, intubation and mechanical ventilation)"
    ),
}


def _hypotension_grade(low_bp: bool, vasopressors: Vasopressors) -> int:
    # Any vasopressor counts as hypotension requiring it, whatever the pressure it now holds.
    if vasopressors is Vasopressors.NONE:
        return 2 if low_bp else 0
    return _VASOPRESSOR_GRADE[vasopressors]


def _crs_grade(fever: bool, masked: bool, low_bp: bool, vasopressors: Vasopressors, oxygen: OxygenSupport) -> int:
    if not (fever or masked):
        return 0  # no fever and nothing that masks it: not CRS, whatever the pressure or oxygen
    return max(int(fever), _hypotension_grade(low_bp, vasopressors), _OXYGEN_GRADE[oxygen])


def _options(value: object, every: Sequence[object]) -> Sequence[object]:
    return every if value is None else (value,)


def grade_crs(
    findings: CrsFindings, *, hypotension_below_systolic_mmhg: int = DEFAULT_HYPOTENSION_BELOW_SYSTOLIC_MMHG
) -> Grade:
    """The ASTCT CRS grade 0-4: fever (or fever masked by treatment) with the worse of hypotension and hypoxia."""
    threshold = hypotension_below_systolic_mmhg
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise GradingError("hypotension_below_systolic_mmhg", "must be a whole number")
    _check_range("hypotension_below_systolic_mmhg", threshold, 1, SYSTOLIC_RANGE_MMHG[1], "mmHg")
    temperature, systolic = findings.temperature_c, findings.systolic_bp_mmhg
    options = (
        _options(None if temperature is None else temperature >= FEVER_C, (False, True)),
        _options(None if systolic is None else systolic < threshold, (False, True)),
        _options(findings.vasopressors, tuple(Vasopressors)),
        _options(findings.oxygen, tuple(OxygenSupport)),
    )
    masked = findings.fever_masked
    grades, relevant = _possible(
        options, lambda fever, low, pressors, oxygen: _crs_grade(fever, masked, low, pressors, oxygen)
    )
    low, high = min(grades), max(grades)
    if low != high:
        names = ("temperature_c", "systolic_bp_mmhg", "vasopressors", "oxygen")
        return Grade(None, (), tuple(names[position] for position in relevant), low, high)
    return Grade(low, _crs_decisive(findings, low, threshold), (), low, low)


def _crs_decisive(findings: CrsFindings, grade: int, threshold: int) -> tuple[str, ...]:
    temperature, systolic = findings.temperature_c, findings.systolic_bp_mmhg
    vasopressors, oxygen = findings.vasopressors, findings.oxygen
    fever = temperature is not None and temperature >= FEVER_C
    low_bp = systolic is not None and systolic < threshold
    if not (fever or findings.fever_masked):
        texts = [f"no fever: {temperature} °C < {FEVER_C} °C, no antipyretic or anti-cytokine therapy → grade 0"]
        if low_bp or vasopressors in _VASOPRESSOR_TEXT or oxygen in _OXYGEN_TEXT:
            texts.append("hypotension or hypoxia without fever is not graded as CRS")
        return tuple(texts)
    premise = (
        f"fever: {temperature} °C ≥ {FEVER_C} °C"
        if fever
        else "fever not required after antipyretic or anti-cytokine therapy"
    )
    if grade == 0:
        return (f"{premise}; no fever ({temperature} °C), no hypotension, no hypoxia → grade 0",)
    if grade == 1:
        return (f"{premise}, without hypotension or hypoxia → grade 1",)
    texts = [premise]
    if low_bp and grade == 2:
        texts.append(f"hypotension not requiring vasopressors (systolic {systolic} < {threshold} mmHg) → grade 2")
    if vasopressors in _VASOPRESSOR_TEXT and _VASOPRESSOR_GRADE[vasopressors] == grade:
        texts.append(f"{_VASOPRESSOR_TEXT[vasopressors]} → grade {grade}")
    if oxygen in _OXYGEN_TEXT and _OXYGEN_GRADE[oxygen] == grade:
        texts.append(f"{_OXYGEN_TEXT[oxygen]} → grade {grade}")
    return tuple(texts)


# --- ICANS ------------------------------------------------------------------------------------------------------

_CONSCIOUSNESS = {
    Consciousness.ALERT: (0, "alert"),
    Consciousness.AWAKENS_SPONTANEOUSLY: (1, "awakens spontaneously"),
    Consciousness.AWAKENS_TO_VOICE: (2, "awakens to voice"),
    Consciousness.AWAKENS_TO_TOUCH: (3, "awakens only to tactile stimulus"),
    Consciousness.UNAROUSABLE: (4, "unarousable or needs vigorous or repetitive tactile stimuli; stupor or coma"),
}
_SEIZURE = {
    Seizure.NONE: (0, "none"),
    Seizure.RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG: (
        3,
        "clinical seizure that resolves rapidly, or non-convulsive seizures on EEG resolving with intervention",
    ),
    Seizure.PROLONGED_OR_REPETITIVE: (
        4,
        "life-threatening prolonged seizure (> 5 min) or repetitive seizures without return to baseline",
    ),
}
_MOTOR = {
    MotorWeakness.NONE: (0, "none"),
    MotorWeakness.DEEP_FOCAL: (4, "deep focal weakness (hemiparesis or paraparesis)"),
}
_RAISED_ICP = {
    RaisedIcp.NONE: (0, "none"),
    RaisedIcp.FOCAL_OEDEMA: (3, "focal/local oedema on neuroimaging"),
    RaisedIcp.DIFFUSE_OEDEMA_OR_SIGNS: (
        4,
        "diffuse cerebral oedema, decerebrate or decorticate posturing, cranial nerve VI palsy, papilloedema "
        "or Cushing's triad",
    ),
}
# The domains after ICE: the name shown, the finding, its grades and texts.
_DOMAINS: tuple[tuple[str, str, Mapping[Any, tuple[int, str]]], ...] = (
    ("level of consciousness", "level_of_consciousness", _CONSCIOUSNESS),
    ("seizure", "seizure", _SEIZURE),
    ("motor", "motor_weakness", _MOTOR),
    ("raised intracranial pressure", "raised_icp", _RAISED_ICP),
)


def ice_grade(score: int) -> int:
    """The ICANS grade of the ICE score of a patient who can be roused: 10 → 0, 7-9 → 1, 3-6 → 2, 0-2 → 3
    (0 while awake, e.g. with global aphasia, is grade 3; unarousable is grade 4: `unable_to_perform_ice`)."""
    if score == ICE_MAX:
        return 0
    if score >= 7:
        return 1
    if score >= 3:
        return 2
    return 3


def _ice(findings: IcansFindings) -> tuple[set[int], str]:
    if findings.unable_to_perform_ice:
        return {4}, "ICE score 0/10: unarousable, unable to perform ICE"
    answers = [getattr(findings, item) for item in ICE_ITEMS]
    done, unknown = answers.count(True), answers.count(None)
    shown = f"{done}" if unknown == 0 else f"{done} to {done + unknown}"
    return {ice_grade(score) for score in range(done, done + unknown + 1)}, f"ICE score {shown}/10"


def grade_icans(findings: IcansFindings) -> IcansGrade:
    """The ASTCT ICANS grade 0-4 for adults: the worst of the five domains."""
    ice_grades, ice_label = _ice(findings)
    options = [sorted(ice_grades)]
    fields_of = [tuple(item for item in ICE_ITEMS if getattr(findings, item) is None)]
    for _, field, table in _DOMAINS:
        value = getattr(findings, field)
        options.append(sorted({grade for grade, _ in table.values()} if value is None else {table[value][0]}))
        fields_of.append((field,))
    grades, relevant = _possible(options, lambda *each: max(each))
    low, high = min(grades), max(grades)
    per_domain = [values[0] if len(values) == 1 else None for values in options]
    if low != high:
        missing = tuple(name for position in relevant for name in fields_of[position])
        return IcansGrade(None, (), missing, low, high, findings.ice_score, *per_domain)
    if low == 0:
        decisive: tuple[str, ...] = (
            "ICE score 10/10, alert, no seizure, no motor weakness, no raised intracranial pressure → grade 0",
        )
    else:
        texts = [f"{ice_label} → grade {low}"] if per_domain[0] == low else []
        for position, (name, field, table) in enumerate(_DOMAINS, start=1):
            if per_domain[position] == low:
                texts.append(f"{name}: {table[getattr(findings, field)][1]} → grade {low}")
        decisive = tuple(texts)
    return IcansGrade(low, decisive, (), low, low, findings.ice_score, *per_domain)
