"""Reads on bedside assessments, scoped to the user's care teams (lab staff do not hold the permission)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet

from accounts.selectors import AnyUser
from assessments.models import Assessment
from patients.models import Patient
from patients.selectors import visible_patient_filter
from results.choices import VERIFIED
from results.selectors import result_list


def assessment_list(*, user: AnyUser) -> QuerySet[Assessment]:
    """Every assessment (amended originals too) of the patients the user may see, newest first."""
    return Assessment.objects.filter(**visible_patient_filter(user=user)).select_related(
        "patient", "recorded_by", "superseded_by"
    )


def patient_assessments(*, user: AnyUser, patient: Patient, limit: int = 200) -> list[Assessment]:
    """One patient's current assessments, newest first (amended originals are reached from their amendment)."""
    rows = assessment_list(user=user).filter(patient=patient, is_current=True).select_related("supersedes")
    return list(rows[:limit])


def patient_assessments_between(
    *, user: AnyUser, patient: Patient, start: datetime, end: datetime
) -> QuerySet[Assessment]:
    """A patient's current assessments made in [start, end), newest first (the timeline)."""
    return (
        assessment_list(user=user)
        .filter(patient=patient, is_current=True, assessed_at__gte=start, assessed_at__lt=end)
        .select_related(None)
        .order_by("-assessed_at", "-id")
    )


@dataclass(frozen=True)
class TrendPoint:
    """One assessment on the grade trend; a grade None is pending."""

    assessment: Assessment
    crs_change: int | None  # against the assessment before it: +1 rose, -1 fell, 0 same, None not comparable
    icans_change: int | None


def _change(now: int | None, before: int | None) -> int | None:
    if now is None or before is None:
        return None
    return (now > before) - (now < before)


def grade_trend(assessments: list[Assessment]) -> list[TrendPoint]:
    """The grades over time (newest first, as given) with each one's change against the one before it."""
    points = []
    for position, assessment in enumerate(assessments):
        before = assessments[position + 1] if position + 1 < len(assessments) else None
        points.append(
            TrendPoint(
                assessment,
                _change(assessment.crs_grade, before.crs_grade if before else None),
                _change(assessment.icans_grade, before.icans_grade if before else None),
            )
        )
    return points


def recent_grade_trend(*, user: AnyUser, patient: Patient, count: int = 5) -> list[TrendPoint]:
    """The patient's latest `count` assessments on the grade trend (the patient page), each with its change."""
    return grade_trend(patient_assessments(user=user, patient=patient, limit=count + 1))[:count]


# The lab values read beside the grades (docs/architecture.md §4a): CRP and ferritin, by LOINC (monitoring 0003).
LABS_BESIDE_GRADES = (("CRP", "1988-5"), ("Ferritin", "2276-4"))
# The period starts this long before the oldest grade shown, so the day's CRP and ferritin it is read against show.
LABS_BEFORE_FIRST_GRADE = timedelta(hours=24)
LABS_BESIDE_GRADES_MAX = 60  # results; the period spans a few days of daily draws


@dataclass(frozen=True)
class LabValue:
    """A verified result as the table shows it: value (a censored one with its comparator), unit and flag."""

    value: str
    unit: str
    flag: str

    @property
    def critical(self) -> bool:
        return self.flag in ("LL", "HH")


@dataclass(frozen=True)
class GradeLabRow:
    """One time on the table: an assessment's grades, the CRP and ferritin observed then, or both."""

    at: datetime
    point: TrendPoint | None
    labs: tuple[LabValue | None, ...]  # one per LABS_BESIDE_GRADES column


def _shown(value: Decimal | None, text: str, comparator: str, decimal_places: int) -> str:
    if value is None:
        return text
    return f"{comparator}{value:.{decimal_places}f}"


def grades_beside_labs(*, user: AnyUser, patient: Patient, trend: list[TrendPoint]) -> list[GradeLabRow]:
    """The grades of `trend` and the patient's verified CRP and ferritin results over the same period (from a day
    before the oldest grade shown), oldest first, one row per time: one query, however many rows."""
    if not trend:
        return []
    since = min(point.assessment.assessed_at for point in trend) - LABS_BEFORE_FIRST_GRADE
    codes = [code for _, code in LABS_BESIDE_GRADES]
    results = list(
        result_list(user=user)
        .filter(patient=patient, status__in=VERIFIED, is_current=True, observed_at__gte=since)
        .filter(lab_test__loinc_code__in=codes)
        .order_by("-observed_at", "-id")
        .values_list(
            "observed_at", "lab_test__loinc_code", "value_numeric", "value_text", "value_comparator",
            "decimal_places", "unit", "flag",
        )[:LABS_BESIDE_GRADES_MAX]
    )  # fmt: skip
    labs: dict[datetime, list[LabValue | None]] = {}
    for at, code, value, text, comparator, places, unit, flag in reversed(results):
        labs.setdefault(at, [None] * len(codes))[codes.index(code)] = LabValue(
            _shown(value, text, comparator, places), unit, flag
        )
    points = {point.assessment.assessed_at: point for point in trend}
    return [
        GradeLabRow(at, points.get(at), tuple(labs.get(at, [None] * len(codes))))
        for at in sorted(set(points) | set(labs))
    ]
