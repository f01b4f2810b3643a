"""Lab pattern rules: alerts on combinations of a patient's recent verified results (HLH/MAS suspicion after CAR T
cells: ferritin rising steeply while fibrinogen falls). The rules are data (LabPatternRule, LabPatternCondition);
this module evaluates them whenever results are verified (a hook named in settings.RESULTS_VERIFIED_HOOKS) and
raises one alert per course and rule (its subject is the LabPatternMatch).

A condition looks at the analyte's verified, current results observed in the `within_hours` before now:

- rise_factor: latest / lowest >= threshold (needs two results and a lowest above zero);
- fall_percent: (highest - latest) / highest x 100 >= threshold (needs two results);
- above / below: latest > / < threshold (the threshold converted from its unit to the result's).

A rule fires when all its conditions hold. Missing values never fire a rule (an alert, not a gate). A handful of
queries per verification, whatever the number of results; nothing about the patient is logged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min, Prefetch

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.services import AlertCondition, alerts_raise
from orders.choices import CourseStatus, LabPatternChange
from orders.models import LabPatternCondition, LabPatternMatch, LabPatternRule, TreatmentCourse
from orders.versioning import rule_revise
from results.choices import VERIFIED
from results.models import Result
from results.units import UnitError, convert

SUMMARY_MAX = 200  # alerts.Alert.summary
TIMES, MINUS = "\u00d7", "\u2212"  # multiplication sign, minus sign


@dataclass(frozen=True)
class Point:
    """One verified result, as a pattern condition sees it."""

    result_id: int
    value: Decimal
    unit: str
    decimal_places: int
    observed_at: datetime


@dataclass(frozen=True)
class Finding:
    """A condition that holds, with what made it hold."""

    condition: LabPatternCondition
    latest: Point
    reference: Point | None  # the lowest (rise) or highest (fall) result the latest is compared with
    measure: Decimal  # factor, percent drop, or the latest value

    def describe(self) -> str:
        test = self.condition.lab_test.name
        value = f"{test} {_number(self.latest.value, self.latest.decimal_places)} {self.latest.unit}".strip()
        change = self.condition.change
        if change == LabPatternChange.RISE_FACTOR and self.reference is not None:
            return f"{value} ({TIMES}{self.measure:.1f} in {_hours(self.reference, self.latest)} h)"
        if change == LabPatternChange.FALL_PERCENT and self.reference is not None:
            return f"{value} ({MINUS}{self.measure:.0f} % in {_hours(self.reference, self.latest)} h)"
        sign = ">" if change == LabPatternChange.ABOVE else "<"
        unit = self.condition.unit or self.latest.unit
        return f"{value} ({sign} {_number(self.condition.threshold)} {unit})".strip()

    def as_json(self) -> dict[str, Any]:
        return {
            "lab_test": self.condition.lab_test.name,
            "change": self.condition.change,
            "threshold": str(self.condition.threshold),
            "within_hours": self.condition.within_hours,
            "measure": str(self.measure),
            "unit": self.latest.unit,
            "latest": {"result": self.latest.result_id, "value": str(self.latest.value)},
            "reference": (
                {"result": self.reference.result_id, "value": str(self.reference.value)} if self.reference else None
            ),
        }


def _number(value: Decimal, places: int | None = None) -> str:
    """12400 -> '12,400'; a threshold without `places` keeps its own significant decimals (1.5 -> '1.5')."""
    if places is None:
        exponent = value.normalize().as_tuple().exponent
        places = max(0, -exponent) if isinstance(exponent, int) else 0
    return f"{value:,.{places}f}"


def _hours(first: Point, last: Point) -> int:
    return round((last.observed_at - first.observed_at) / timedelta(hours=1))


def evaluate_condition(condition: LabPatternCondition, points: Sequence[Point], now: datetime) -> Finding | None:
    """Whether one condition holds over an analyte's results (any order), in its window ending at `now`."""
    start = now - timedelta(hours=condition.within_hours)
    window = sorted((p for p in points if start <= p.observed_at <= now), key=lambda p: (p.observed_at, p.result_id))
    if not window:
        return None
    latest = window[-1]
    threshold = condition.threshold
    change = condition.change
    if change in (LabPatternChange.ABOVE, LabPatternChange.BELOW):
        if condition.unit:
            try:
                threshold = convert(threshold, condition.unit, latest.unit, loinc=condition.lab_test.loinc_code)
            except UnitError:
                return None  # not comparable: the rule does not fire
        holds = latest.value > threshold if change == LabPatternChange.ABOVE else latest.value < threshold
        return Finding(condition, latest, None, latest.value) if holds else None
    same_unit = [p for p in window if p.unit == latest.unit]
    if len(same_unit) < 2:
        return None
    if change == LabPatternChange.RISE_FACTOR:
        lowest = min(same_unit, key=lambda p: (p.value, p.observed_at))
        if lowest.value <= 0:
            return None
        factor = latest.value / lowest.value
        return Finding(condition, latest, lowest, factor) if factor >= threshold else None
    if change == LabPatternChange.FALL_PERCENT:
        highest = max(same_unit, key=lambda p: (p.value, -p.observed_at.timestamp()))
        if highest.value <= 0:
            return None
        drop = (highest.value - latest.value) / highest.value * 100
        return Finding(condition, latest, highest, drop) if drop >= threshold else None
    return None


def evaluate_rule(rule: LabPatternRule, points: dict[int, list[Point]], now: datetime) -> list[Finding] | None:
    """The findings of every condition when all hold (`points` by lab test id), else None."""
    conditions = list(rule.conditions.all())
    if not conditions:
        return None
    findings = []
    for condition in conditions:
        finding = evaluate_condition(condition, points.get(condition.lab_test_id, []), now)
        if finding is None:
            return None
        findings.append(finding)
    return findings


def _applies(rule: LabPatternRule, course: TreatmentCourse, first_dose_at: datetime | None, now: datetime) -> bool:
    drug_ids = {d.pk for d in rule.drugs.all()}
    if drug_ids and course.regimen.drug_id not in drug_ids:
        return False
    if rule.days_after_infusion_from is None and rule.days_after_infusion_to is None:
        return True
    if first_dose_at is None:
        return False
    day = (now - first_dose_at) // timedelta(days=1)
    if rule.days_after_infusion_from is not None and day < rule.days_after_infusion_from:
        return False
    return rule.days_after_infusion_to is None or day <= rule.days_after_infusion_to


def current_rules(lab_test_ids: Iterable[int] | None = None) -> list[LabPatternRule]:
    """Active current rule versions (those with a condition on one of `lab_test_ids`, when given)."""
    rules = LabPatternRule.objects.filter(active=True, superseded_by__isnull=True)
    if lab_test_ids is not None:
        rules = rules.filter(conditions__lab_test_id__in=list(lab_test_ids))
    return list(
        rules.distinct()
        .order_by("key")
        .prefetch_related(
            Prefetch("conditions", queryset=LabPatternCondition.objects.select_related("lab_test").order_by("id")),
            "drugs",
        )
    )


def lab_patterns_check(*, patient_ids: Iterable[int], lab_test_ids: Iterable[int] | None, now: datetime) -> list[int]:
    """Evaluate the current rules for these patients' active courses; raise the alerts of new matches.

    Returns the ids of the alerts raised."""
    rules = current_rules(lab_test_ids)
    patient_ids = set(patient_ids)
    if not rules or not patient_ids:
        return []
    courses = list(
        TreatmentCourse.objects.filter(patient_id__in=patient_ids, status=CourseStatus.ACTIVE)
        .select_related("regimen")
        .annotate(first_dose_at=Min("doses__planned_at"))
        .order_by("pk")
    )
    candidates = [
        (course, rule) for course in courses for rule in rules if _applies(rule, course, course.first_dose_at, now)
    ]
    if not candidates:
        return []
    matched = set(
        LabPatternMatch.objects.filter(
            course__in={c.pk for c, _ in candidates}, rule_key__in={r.key for _, r in candidates}
        ).values_list("course_id", "rule_key")
    )
    candidates = [(c, r) for c, r in candidates if (c.pk, r.key) not in matched]
    if not candidates:
        return []
    conditions = [cond for _, rule in candidates for cond in rule.conditions.all()]
    oldest = now - timedelta(hours=max(c.within_hours for c in conditions))
    points: dict[int, dict[int, list[Point]]] = defaultdict(lambda: defaultdict(list))
    rows = Result.objects.filter(
        patient_id__in={c.patient_id for c, _ in candidates},
        lab_test_id__in={c.lab_test_id for c in conditions},
        status__in=VERIFIED,
        is_current=True,
        value_numeric__isnull=False,
        observed_at__gte=oldest,
        observed_at__lte=now,
    ).values_list("pk", "patient_id", "lab_test_id", "value_numeric", "unit", "decimal_places", "observed_at")
    for pk, patient_id, lab_test_id, value, unit, places, observed_at in rows:
        if value is not None:
            points[patient_id][lab_test_id].append(Point(pk, value, unit, places, observed_at))

    new: list[tuple[LabPatternRule, LabPatternMatch]] = []
    for course, rule in candidates:
        findings = evaluate_rule(rule, points[course.patient_id], now)
        if findings is None:
            continue
        summary = f"{rule.message}: {', '.join(f.describe() for f in findings)}"
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1] + "…"
        match, created = LabPatternMatch.objects.get_or_create(
            course=course,
            rule_key=rule.key,
            defaults={
                "rule": rule,
                "patient_id": course.patient_id,
                "matched_at": now,
                "values": [f.as_json() for f in findings],
                "summary": summary,
            },
        )
        if created:
            new.append((rule, match))

    groups: dict[tuple[int, str], list[AlertCondition]] = defaultdict(list)
    for rule, match in new:
        groups[(rule.severity, rule.audience)].append(AlertCondition(match.pk, match.patient_id, match.summary))
    raised: list[int] = []
    for (severity, audience), alert_conditions in groups.items():
        raised += alerts_raise(
            kind=AlertKind.LAB_PATTERN,
            severity=AlertSeverity(severity),
            audience=AlertAudience(audience),
            subject_model=LabPatternMatch,
            conditions=alert_conditions,
            now=now,
        )
    return raised


LAB_PATTERN_RULE_FIELDS = (
    "name", "message", "severity", "audience", "days_after_infusion_from", "days_after_infusion_to", "source",
    "effective_from",
)  # fmt: skip


@transaction.atomic
def lab_pattern_rule_revise(
    *,
    rule: LabPatternRule,
    changes: dict[str, Any],
    user: User | None,
    now: datetime,
    conditions: Sequence[LabPatternCondition] | None = None,
) -> LabPatternRule:
    """Edit a lab pattern rule: a new version with the changes (and, when given, these unsaved conditions in
    place of the old ones); the old version is kept, inactive and superseded. Drugs carry over unless
    `changes` names them. Courses that already met the rule (same key) are not alerted again."""
    kept = conditions if conditions is not None else list(rule.conditions.all())
    new = rule_revise(rule=rule, fields=LAB_PATTERN_RULE_FIELDS, changes=changes, user=user, now=now)
    LabPatternCondition.objects.bulk_create(
        LabPatternCondition(
            rule=new, lab_test_id=c.lab_test_id, change=c.change, threshold=c.threshold, unit=c.unit,
            within_hours=c.within_hours,
        )
        for c in kept
    )  # fmt: skip
    return new


def on_results_verified(*, results: Sequence[Result], now: datetime) -> None:
    """A hook of `results_verify` (settings.RESULTS_VERIFIED_HOOKS): runs inside the verifying transaction."""
    numeric = [r for r in results if r.value_numeric is not None]
    if numeric:
        lab_patterns_check(
            patient_ids={r.patient_id for r in numeric}, lab_test_ids={r.lab_test_id for r in numeric}, now=now
        )
