"""What a result means: the patient's reference range, the flag (HL7 0078), the delta check, the CTCAE grade (exact
and censored values) and the alert finding of a verified result (docs/architecture.md §3 "Alerts that matter").
Pure: no database and no models (read through the protocols below), so it is mutation-tested without one
(docs/mutation-testing.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from alerts.choices import AlertAudience, AlertSeverity
from alerts.findings import Finding
from results import ctcae
from results.choices import ResultFlag
from results.values import MAX_VALUE


class PatientFacts(Protocol):
    """What a reference range depends on (patients.models.Patient)."""

    @property
    def birth_date(self) -> date: ...
    @property
    def sex(self) -> str: ...


class Range(Protocol):
    """A reference range row (results.models.ReferenceRange)."""

    @property
    def sex(self) -> str: ...
    @property
    def age_min_years(self) -> int: ...
    @property
    def age_max_years(self) -> int: ...
    @property
    def low(self) -> Decimal | None: ...
    @property
    def high(self) -> Decimal | None: ...
    @property
    def critical_low(self) -> Decimal | None: ...
    @property
    def critical_high(self) -> Decimal | None: ...


class Spec(Protocol):
    """What interpretation reads of a result spec (results.models.ResultSpec)."""

    @property
    def unit(self) -> str: ...
    @property
    def ctcae_term_low(self) -> str: ...
    @property
    def ctcae_term_high(self) -> str: ...
    @property
    def delta_absolute(self) -> Decimal | None: ...
    @property
    def delta_percent(self) -> Decimal | None: ...


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Interpreted(Protocol):
    """A stored result as its finding reads it (results.models.Result)."""

    @property
    def pk(self) -> Any: ...
    @property
    def root_id(self) -> int | None: ...
    @property
    def lab_test(self) -> Named: ...
    @property
    def lab_test_id(self) -> int: ...
    @property
    def display_value(self) -> str: ...
    @property
    def flag(self) -> str: ...
    @property
    def ctcae_term(self) -> str: ...
    @property
    def ctcae_grade(self) -> int | None: ...
    @property
    def ctcae_assumed(self) -> bool: ...


R = TypeVar("R", bound=Range)


@dataclass(frozen=True)
class Interpretation:
    reference_low: Decimal | None
    reference_high: Decimal | None
    flag: str
    ctcae_term: str
    ctcae_grade: int | None
    ctcae_lab_only: bool
    ctcae_assumed: bool = False  # the grade rests on CTCAE's worst-case clinical assumption


def _age_years(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def reference_range_for(ranges: Iterable[R], patient: PatientFacts, on: date) -> R | None:
    """The most specific row for the patient's sex and age (a sex-specific row beats an 'any' row)."""
    age = _age_years(patient.birth_date, on)
    matching = [r for r in ranges if r.sex in ("", patient.sex) and r.age_min_years <= age <= r.age_max_years]
    return min(matching, key=lambda r: (r.sex == "", r.age_max_years - r.age_min_years), default=None)


def flag_for(value: Decimal, rng: Range | None) -> str:
    """HL7 0078 flags; critical limits are inclusive."""
    if rng is None:
        return ResultFlag.NONE
    if rng.critical_low is not None and value <= rng.critical_low:
        return ResultFlag.CRITICAL_LOW
    if rng.critical_high is not None and value >= rng.critical_high:
        return ResultFlag.CRITICAL_HIGH
    if rng.low is not None and value < rng.low:
        return ResultFlag.LOW
    if rng.high is not None and value > rng.high:
        return ResultFlag.HIGH
    return ResultFlag.NORMAL


def interpret(*, spec: Spec, value: Decimal, rng: Range | None, baseline: Decimal | None) -> Interpretation:
    low = rng.low if rng else None
    high = rng.high if rng else None
    below = low is not None and value < low
    term = spec.ctcae_term_low if (below and spec.ctcae_term_low) or not spec.ctcae_term_high else spec.ctcae_term_high
    graded = None
    if term:
        graded = ctcae.grade(
            term,
            value,
            unit=spec.unit,
            lln=float(low) if low is not None else None,
            uln=float(high) if high is not None else None,
            baseline=float(baseline) if baseline is not None else None,
        )
    return Interpretation(
        reference_low=low,
        reference_high=high,
        flag=flag_for(value, rng),
        ctcae_term=term,
        ctcae_grade=int(graded) if graded is not None else None,
        ctcae_lab_only=graded.lab_only if graded is not None else False,
        ctcae_assumed=graded.assumed if graded is not None else False,
    )


def is_delta_failure(spec: Spec, value: Decimal, previous: Decimal | None) -> bool:
    """An implausible change from the previous verified result (within the spec's window)."""
    if previous is None:
        return False
    change = abs(value - previous)
    if spec.delta_absolute is not None and change > spec.delta_absolute:
        return True
    return bool(spec.delta_percent is not None and previous != 0 and change / abs(previous) * 100 > spec.delta_percent)


_EPSILON = Decimal("0.000001")
_LOW_FLAGS = frozenset({ResultFlag.LOW, ResultFlag.CRITICAL_LOW})
_HIGH_FLAGS = frozenset({ResultFlag.HIGH, ResultFlag.CRITICAL_HIGH})


def interpret_censored(
    *, spec: Spec, comparator: str, bound: Decimal, rng: Range | None, baseline: Decimal | None
) -> Interpretation:
    """Flag and grade a censored value ("<5", ">11.0") only as far as they hold for every value it stands for.

    The true value lies in [0, 5) for "<5" and (11.0, 10^9) for ">11.0". Both ends are interpreted: the flag
    is kept when both ends share it; when both are below the reference range (L or LL) the flag is L ("at least
    low"), when both are above (H or HH) it is H; otherwise no flag (e.g. "<5" for an analyte whose range starts
    at 3 cannot be said normal, nor low). The CTCAE grade is kept only when both ends have the same term and
    grade; otherwise the result is not graded (a human reads the value).
    """
    if comparator.startswith("<"):
        ends = (Decimal(0), bound if comparator == "<=" else bound - _EPSILON)
    else:
        ends = (bound if comparator == ">=" else bound + _EPSILON, MAX_VALUE - 1)
    low, high = (interpret(spec=spec, value=max(end, Decimal(0)), rng=rng, baseline=baseline) for end in ends)
    if low.flag == high.flag:
        flag = low.flag
    elif {low.flag, high.flag} <= _LOW_FLAGS:
        flag = ResultFlag.LOW
    elif {low.flag, high.flag} <= _HIGH_FLAGS:
        flag = ResultFlag.HIGH
    else:
        flag = ResultFlag.NONE
    graded = low.ctcae_term == high.ctcae_term and low.ctcae_grade == high.ctcae_grade
    return replace(
        low,
        flag=flag,
        ctcae_term=low.ctcae_term if graded else "",
        ctcae_grade=low.ctcae_grade if graded else None,
        ctcae_lab_only=low.ctcae_lab_only if graded else False,
        ctcae_assumed=(low.ctcae_assumed or high.ctcae_assumed) if graded else False,
    )


CRITICAL_FLAGS = (ResultFlag.CRITICAL_LOW, ResultFlag.CRITICAL_HIGH)


def ctcae_label(result: Interpreted) -> str:
    """'CTCAE grade 3 (assumed) Hyponatremia': the grade, whether it rests on CTCAE's worst-case clinical
    assumption, and the term."""
    assumed = " (assumed)" if result.ctcae_assumed else ""
    return f"CTCAE grade {result.ctcae_grade}{assumed} {result.ctcae_term}"


def _direction(result: Interpreted) -> str:
    """Which way the value is abnormal: a potassium that swings from critically low to critically high is a new
    finding, not a repeat."""
    if result.flag in (ResultFlag.LOW, ResultFlag.CRITICAL_LOW):
        return "low"
    if result.flag in (ResultFlag.HIGH, ResultFlag.CRITICAL_HIGH):
        return "high"
    return result.ctcae_term or "abnormal"


def result_findings(result: Interpreted) -> list[Finding]:
    """What a verified result means for an alert: its critical value and its CTCAE grade >= 3, as one finding
    keyed by the analyte and the direction (a repeat is the same key). A critical value is for the care team (the
    lab phones it to the nurse, who acts at once), a grade >= 3 toxicity for the oncologists; grade 4 and critical
    values are critical, grade 3 high."""
    value = f"{result.lab_test.name} {result.display_value}"
    grade = result.ctcae_grade if result.ctcae_term and result.ctcae_grade else 0
    critical = result.flag in CRITICAL_FLAGS
    if not critical and grade < 3:
        return []
    if critical:
        label = f"Critical: {value} ({result.flag})" + (f" · {ctcae_label(result)}" if grade else "")
    else:
        label = f"{ctcae_label(result)}: {value}"
    severity = AlertSeverity.CRITICAL if critical or grade >= 4 else AlertSeverity.HIGH
    audience = AlertAudience.CARE_TEAM if critical else AlertAudience.ONCOLOGISTS
    return [
        Finding(
            key=f"lab:{result.lab_test_id}:{_direction(result)}",
            label=label[:160],
            severity=severity,
            audience=audience,
            grade=grade,
            critical=critical,
            subject_id=result.root_id or result.pk,
        )
    ]
