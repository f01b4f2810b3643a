"""Reads on bedside assessments, scoped to the user's care teams (lab staff do not hold the permission)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.selectors import AnyUser
from assessments.models import Assessment
from patients.models import Patient
from patients.selectors import visible_patient_filter


def assessment_list(*, user: AnyUser) -> QuerySet[Assessment]:
    """Every assessment (amended originals too) of the patients the user may see, newest first."""
    return Assessment.objects.filter(**visible_patient_filter(user=user)).select_related(
        "patient", "recorded_by", "superseded_by"
    )


def patient_assessments(*, user: AnyUser, patient: Patient, limit: int = 200) -> list[Assessment]:
    """One patient's current assessments, newest first (amended originals are reached from their amendment)."""
    rows = assessment_list(user=user).filter(patient=patient, is_current=True).select_related("supersedes")
    return list(rows[:limit])


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
