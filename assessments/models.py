from __future__ import annotations

from typing import Any

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from assessments.choices import Consciousness, MotorWeakness, OxygenSupport, RaisedIcp, Seizure, Vasopressors
from monitoring.models import MonitoringTest
from patients.models import NO_DELETE, Patient


def _finding(choices: type[models.TextChoices], verbose_name: str) -> Any:
    # NULL = not recorded, as None in assessments/grading.py (an empty string would be a value).
    return models.CharField(verbose_name, max_length=40, choices=choices.choices, null=True, blank=True)


def _grade() -> Any:
    return models.PositiveSmallIntegerField(null=True, blank=True, help_text="ASTCT grade 0-4; empty = pending")


def _texts() -> Any:
    return ArrayField(models.TextField(), default=list, blank=True)


@pghistory.track()
class Assessment(models.Model):
    """One bedside CRS and ICANS assessment with the ASTCT grades the service computed from it
    (assessments/grading.py). Append-only: an amendment is a new row that `supersedes` this one, which stays
    (is_current=False); the database refuses deletes and any other update."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    assessed_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    # CRS findings
    temperature_c = models.DecimalField("temperature (°C)", max_digits=3, decimal_places=1, null=True, blank=True)
    systolic_bp_mmhg = models.PositiveSmallIntegerField("systolic blood pressure (mmHg)", null=True, blank=True)
    vasopressors = _finding(Vasopressors, "vasopressors")
    oxygen = _finding(OxygenSupport, "oxygen support")
    fever_masked = models.BooleanField(
        "antipyretic or anti-cytokine therapy given", default=False, help_text="Fever is then no longer required"
    )

    # ICANS findings: the ten ICE items (NULL = not asked yet), then the other domains
    oriented_year = models.BooleanField(null=True, blank=True)
    oriented_month = models.BooleanField(null=True, blank=True)
    oriented_city = models.BooleanField(null=True, blank=True)
    oriented_hospital = models.BooleanField(null=True, blank=True)
    names_object_1 = models.BooleanField(null=True, blank=True)
    names_object_2 = models.BooleanField(null=True, blank=True)
    names_object_3 = models.BooleanField(null=True, blank=True)
    follows_commands = models.BooleanField(null=True, blank=True)
    writes_sentence = models.BooleanField(null=True, blank=True)
    counts_backwards = models.BooleanField(null=True, blank=True)
    unable_to_perform_ice = models.BooleanField(default=False)
    level_of_consciousness = _finding(Consciousness, "level of consciousness")
    seizure = _finding(Seizure, "seizure")
    motor_weakness = _finding(MotorWeakness, "motor weakness")
    raised_icp = _finding(RaisedIcp, "raised intracranial pressure")

    # Computed by assessments.services from grading.py, never taken from input
    hypotension_below_systolic_mmhg = models.PositiveSmallIntegerField()
    crs_grade = _grade()
    crs_at_least = models.PositiveSmallIntegerField()
    crs_at_most = models.PositiveSmallIntegerField()
    crs_decisive = _texts()
    crs_missing = _texts()
    ice_score = models.PositiveSmallIntegerField(null=True, blank=True)
    icans_grade = _grade()
    icans_at_least = models.PositiveSmallIntegerField()
    icans_at_most = models.PositiveSmallIntegerField()
    icans_decisive = _texts()
    icans_missing = _texts()

    # The scheduled assessment test this assessment satisfied (assessments.services: the earliest one open and due),
    # if any; an amendment keeps its original's, and satisfies no other.
    monitoring_test = models.ForeignKey(
        MonitoringTest, on_delete=models.PROTECT, null=True, blank=True, related_name="assessments"
    )

    is_current = models.BooleanField(default=True)
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    amendment_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-assessed_at", "-id"]
        triggers = [
            NO_DELETE,
            # Only the flag an amendment clears may change, and only from current to not current.
            pgtrigger.ReadOnly(name="append_only", exclude=["is_current"]),
            pgtrigger.Protect(
                name="stays_superseded",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__is_current=False, new__is_current=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(supersedes__isnull=True, amendment_reason="")
                | (models.Q(supersedes__isnull=False) & ~models.Q(amendment_reason="")),
                name="assessment_amendment_has_reason",
            ),
            models.CheckConstraint(
                condition=(models.Q(crs_grade__isnull=True) | models.Q(crs_grade__lte=4))
                & (models.Q(icans_grade__isnull=True) | models.Q(icans_grade__lte=4))
                & models.Q(crs_at_least__lte=models.F("crs_at_most"), crs_at_most__lte=4)
                & models.Q(icans_at_least__lte=models.F("icans_at_most"), icans_at_most__lte=4),
                name="assessment_grades_in_range",
            ),
            # A scheduled assessment test is satisfied by one assessment (its current version).
            models.UniqueConstraint(
                fields=["monitoring_test"], condition=models.Q(is_current=True), name="assessment_satisfies_test_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["patient", "-assessed_at", "-id"],
                condition=models.Q(is_current=True),
                name="assessment_patient_current_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Assessment {self.pk} of {self.assessed_at:%Y-%m-%d %H:%M}"

    @staticmethod
    def _shown(grade: int | None) -> str:
        return "PENDING" if grade is None else str(grade)

    @property
    def crs_shown(self) -> str:
        return self._shown(self.crs_grade)

    @property
    def icans_shown(self) -> str:
        return self._shown(self.icans_grade)
