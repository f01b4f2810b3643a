"""Writes on bedside assessments: record one, amend one (a new row; the original stays), and raise their alerts.

The grades come only from assessments/grading.py (ASTCT 2019), never from the input (docs/architecture.md §4a)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.findings import SUMMARY_MAX
from alerts.services import AlertCondition, alerts_raise
from assessments import grading
from assessments.models import Assessment
from core.errors import Conflict
from monitoring.choices import AWAITING_COLLECTION, LabTestKind
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_test_record_assessment
from patients.models import Patient

# A bedside clock a little ahead of the server's is no error; an assessment hours ahead is. An assessment entered
# more than a week after the bedside is a typing error (an amendment may keep its original's time).
FUTURE_TOLERANCE = timedelta(minutes=5)
LATE_ENTRY_LIMIT = timedelta(days=7)
# An assessment satisfies the patient's earliest open (scheduled or overdue) assessment test due by its bedside time
# plus this: up to 2 h early, the grace the seeded plan gives after the due time (orders 0010), so one round of
# the ward covers the assessment falling due. A later test stays open. docs/architecture.md §4a.
SATISFIES_DUE_WITHIN = timedelta(hours=2)

_CHOICES: dict[str, type[StrEnum]] = {
    "vasopressors": grading.Vasopressors,
    "oxygen": grading.OxygenSupport,
    "level_of_consciousness": grading.Consciousness,
    "seizure": grading.Seizure,
    "motor_weakness": grading.MotorWeakness,
    "raised_icp": grading.RaisedIcp,
}
CHOICE_FIELDS = tuple(_CHOICES)
# The findings in the order a nurse examines: CRS, the ICE items, the other ICANS domains.
CRS_FIELDS = ("temperature_c", "systolic_bp_mmhg", "vasopressors", "oxygen", "fever_masked")
ICANS_DOMAIN_FIELDS = ("unable_to_perform_ice", "level_of_consciousness", "seizure", "motor_weakness", "raised_icp")
ICANS_FIELDS = (*grading.ICE_ITEMS, *ICANS_DOMAIN_FIELDS)
FINDING_FIELDS = (*CRS_FIELDS, *ICANS_FIELDS)

# What an alert calls a finding that was not recorded.
_FIELD_NAMES = {
    "temperature_c": "temperature",
    "systolic_bp_mmhg": "systolic blood pressure",
    "vasopressors": "vasopressors",
    "oxygen": "oxygen need",
    "level_of_consciousness": "level of consciousness",
    "seizure": "seizures",
    "motor_weakness": "motor weakness",
    "raised_icp": "raised intracranial pressure",
}


def missing_text(missing: tuple[str, ...] | list[str]) -> str:
    """The unrecorded findings that leave a grade pending, as a nurse says them (the ICE items counted)."""
    ice = [name for name in missing if name in grading.ICE_ITEMS]
    names = [_FIELD_NAMES.get(name, name) for name in missing if name not in grading.ICE_ITEMS]
    if ice:
        names.append(f"{len(ice)} ICE item{'s' if len(ice) > 1 else ''}")
    return ", ".join(names) + " not recorded"


def _findings(values: Mapping[str, Any]) -> tuple[grading.CrsFindings, grading.IcansFindings]:
    """The grading core's findings from stored or submitted values; a value it refuses is a ValidationError
    naming the field."""
    typed: dict[str, Any] = {}
    for name in FINDING_FIELDS:
        value = values.get(name)
        if name in ("fever_masked", "unable_to_perform_ice"):
            value = bool(value)
        elif value is not None and name in _CHOICES:
            try:
                value = _CHOICES[name](value)
            except ValueError:
                choices = ", ".join(choice.value for choice in _CHOICES[name])
                raise ValidationError({name: f"Must be one of {choices}."}) from None
        elif name == "temperature_c" and value is not None and not isinstance(value, Decimal):
            raise ValidationError({name: "Must be a decimal number."})
        typed[name] = value
    try:
        crs = grading.CrsFindings(**{name: typed[name] for name in CRS_FIELDS})
        icans = grading.IcansFindings(**{name: typed[name] for name in ICANS_FIELDS})
    except grading.GradingError as error:
        raise ValidationError({error.field: error.reason[:1].upper() + error.reason[1:] + "."}) from None
    return crs, icans


def _graded(values: Mapping[str, Any]) -> dict[str, Any]:
    """The model's fields for these findings: the findings as given and the grades computed from them."""
    crs_findings, icans_findings = _findings(values)
    threshold = settings.ASSESSMENT_HYPOTENSION_SYSTOLIC_MMHG
    crs = grading.grade_crs(crs_findings, hypotension_below_systolic_mmhg=threshold)
    icans = grading.grade_icans(icans_findings)
    return {
        **{name: getattr(crs_findings, name) for name in CRS_FIELDS},
        **{name: getattr(icans_findings, name) for name in ICANS_FIELDS},
        "hypotension_below_systolic_mmhg": threshold,
        "crs_grade": crs.grade,
        "crs_at_least": crs.at_least,
        "crs_at_most": crs.at_most,
        "crs_decisive": list(crs.decisive),
        "crs_missing": list(crs.missing),
        "ice_score": icans.ice_score,
        "icans_grade": icans.grade,
        "icans_at_least": icans.at_least,
        "icans_at_most": icans.at_most,
        "icans_decisive": list(icans.decisive),
        "icans_missing": list(icans.missing),
    }


def _check_time(assessed_at: datetime, now: datetime, original: Assessment | None) -> None:
    if assessed_at.tzinfo is None:
        raise ValidationError({"assessed_at": "Must include a time zone."})
    if assessed_at > now + FUTURE_TOLERANCE:
        raise ValidationError({"assessed_at": "Is in the future."})
    if assessed_at < now - LATE_ENTRY_LIMIT and (original is None or assessed_at != original.assessed_at):
        raise ValidationError({"assessed_at": f"Is more than {LATE_ENTRY_LIMIT.days} days ago."})


@transaction.atomic
def assessment_record(
    *, patient: Patient, assessed_at: datetime, user: User, now: datetime, **findings: Any
) -> Assessment:
    """Record a bedside assessment (findings as in assessments/grading.py, None = not recorded), grade it and
    alert (`assessment_alerts`). Refused findings are a ValidationError naming the field; nothing is written."""
    return _create(patient=patient, assessed_at=assessed_at, user=user, now=now, findings=findings)


@transaction.atomic
def assessment_amend(
    *,
    assessment: Assessment,
    reason: str,
    user: User,
    now: datetime,
    assessed_at: datetime | None = None,
    **findings: Any,
) -> Assessment:
    """Correct a current assessment: a new row with the complete corrected findings (None = not recorded) that
    supersedes it; the original stays, no longer current. Graded and alerted like a new one."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the assessment is amended."})
    original = Assessment.objects.select_for_update().get(pk=assessment.pk)
    if not original.is_current:
        raise Conflict("This assessment was already amended; amend its current version.")
    Assessment.objects.filter(pk=original.pk).update(is_current=False)
    return _create(
        patient=original.patient,
        assessed_at=original.assessed_at if assessed_at is None else assessed_at,
        user=user,
        now=now,
        findings=findings,
        supersedes=original,
        amendment_reason=reason,
    )


def _create(
    *,
    patient: Patient,
    assessed_at: datetime,
    user: User,
    now: datetime,
    findings: Mapping[str, Any],
    supersedes: Assessment | None = None,
    amendment_reason: str = "",
) -> Assessment:
    unknown = sorted(set(findings) - set(FINDING_FIELDS))
    if unknown:
        raise TypeError(f"Not a finding: {', '.join(unknown)}")
    _check_time(assessed_at, now, supersedes)
    graded = _graded(findings)
    # One assessment of a patient at a time: the grade rise is judged against the one before.
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    satisfies: MonitoringTest | None = None
    if supersedes is not None and supersedes.monitoring_test_id is not None:
        test_id: int | None = supersedes.monitoring_test_id  # an amendment keeps its original's test, and no other
    else:
        satisfies = _due_assessment_test(patient, assessed_at) if _complete(graded) else None
        test_id = satisfies.pk if satisfies is not None else None
    assessment = Assessment.objects.create(
        patient=patient,
        assessed_at=assessed_at,
        recorded_at=now,
        recorded_by=user,
        supersedes=supersedes,
        amendment_reason=amendment_reason,
        monitoring_test_id=test_id,
        **graded,
    )
    if satisfies is not None:
        monitoring_test_record_assessment(monitoring_test=satisfies, user=user, now=now)
    assessment_alerts(assessment=assessment, previous=previous_assessment(assessment), now=now)
    return assessment


def _complete(graded: Mapping[str, Any]) -> bool:
    """Fail closed: only an assessment that decides both grades satisfies a scheduled one; a pending grade leaves
    the test open (and overdue past its deadline) until an amendment completes it."""
    return graded["crs_grade"] is not None and graded["icans_grade"] is not None


def _due_assessment_test(patient: Patient, assessed_at: datetime) -> MonitoringTest | None:
    """The patient's earliest open bedside assessment test due by `assessed_at` + SATISFIES_DUE_WITHIN, locked."""
    return (
        MonitoringTest.objects.select_for_update(of=("self",))
        .filter(
            patient=patient,
            status__in=AWAITING_COLLECTION,
            lab_test__kind=LabTestKind.BEDSIDE_ASSESSMENT,
            due_at__lte=assessed_at + SATISFIES_DUE_WITHIN,
        )
        .order_by("due_at", "pk")
        .first()
    )


def previous_assessment(assessment: Assessment) -> Assessment | None:
    """The patient's current assessment before this one (by bedside time), if any."""
    at = assessment.assessed_at
    return (
        Assessment.objects.filter(patient_id=assessment.patient_id, is_current=True)
        .filter(Q(assessed_at__lt=at) | Q(assessed_at=at, pk__lt=assessment.pk))
        .order_by("-assessed_at", "-id")
        .first()
    )


@dataclass(frozen=True)
class Syndrome:
    kind: AlertKind
    name: str
    grade: int | None
    at_least: int
    decisive: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def floor(self) -> int:
        """The grade, or while it is pending the least it can be (fail closed)."""
        return self.grade if self.grade is not None else self.at_least


def _syndromes(a: Assessment) -> tuple[Syndrome, Syndrome]:
    crs = (a.crs_grade, a.crs_at_least, tuple(a.crs_decisive), tuple(a.crs_missing))
    icans = (a.icans_grade, a.icans_at_least, tuple(a.icans_decisive), tuple(a.icans_missing))
    return Syndrome(AlertKind.CRS, "CRS", *crs), Syndrome(AlertKind.ICANS, "ICANS", *icans)


def _summary(now: Syndrome, before: Syndrome | None, rose: bool) -> str:
    if now.grade is None:
        head = f"{now.name} grade pending, at least {now.at_least}: {missing_text(now.missing)}"
    else:
        head = f"{now.name} grade {now.grade}: " + "; ".join(now.decisive)
    if rose and before is not None:
        was = before.grade if before.grade is not None else f"≥{before.at_least}"
        head = f"{now.name} rose from grade {was}. {head}"
    return head if len(head) <= SUMMARY_MAX else head[: SUMMARY_MAX - 1] + "…"


def assessment_alerts(*, assessment: Assessment, previous: Assessment | None, now: datetime) -> list[int]:
    """The alerts of one assessment, one per syndrome at most (docs/architecture.md §3):

    every alert goes to the care team (its nurses and oncologists);
    - grade ≥ 1 (or pending, but at least 1) again, at the grade of the patient's previous current assessment:
      moderate;
    - grade ≥ 2 (or pending, but at least 2), or any rise against that previous assessment, the first grade ≥ 1
      of a patient included (onset is a rise from none): high, naming the grade and the decisive findings (or what
      is missing).

    A grade whose alert is still unresolved folds into it (counted, "again <time>") instead of raising another."""
    before = _syndromes(previous) if previous is not None else (None, None)
    ids: list[int] = []
    for syndrome, earlier in zip(_syndromes(assessment), before, strict=True):
        if syndrome.floor < 1:
            continue
        rose = syndrome.floor > (earlier.floor if earlier is not None else 0)
        urgent = rose or syndrome.floor >= 2
        shown = syndrome.grade if syndrome.grade is not None else f"pending-{syndrome.at_least}"
        fold_key = f"assessment-{syndrome.kind.value}-{shown}"  # a repeat joins the unresolved alert of its grade
        ids += alerts_raise(
            kind=syndrome.kind,
            severity=AlertSeverity.HIGH if urgent else AlertSeverity.MODERATE,
            subject_model=Assessment,
            conditions=[
                AlertCondition(
                    subject_id=assessment.pk,
                    patient_id=assessment.patient_id,
                    summary=_summary(syndrome, earlier, rose),
                    fold_key=fold_key,
                    addendum=f"; again {timezone.localtime(assessment.assessed_at):%Y-%m-%d %H:%M}",
                )
            ],
            now=now,
            audience=AlertAudience.CARE_TEAM,  # nurses and oncologists: one alert per assessment and syndrome
        )
    return ids
