from __future__ import annotations

from decimal import Decimal

import pghistory
import pgtrigger
from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from monitoring.models import LabTest, MonitoringTest
from patients.models import NO_DELETE, Patient
from specimens.choices import CustodyEventKind, RejectionReason, SpecimenCondition, SpecimenStatus, SpecimenType


@pghistory.track()
class Container(models.Model):
    """A collection tube; `draw_order` follows CLSI GP41 (citrate before serum before heparin before EDTA)."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=60)
    cap_colour = models.CharField(max_length=30)
    additive = models.CharField(max_length=60, blank=True)
    specimen_type = models.CharField(max_length=4, choices=SpecimenType.choices)
    draw_order = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["draw_order", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.additive})" if self.additive else self.name


@pghistory.track()
class TestSpecimenRequirement(models.Model):
    """What a catalogue test needs drawn: its tube, minimum volume and how long the specimen keeps."""

    lab_test = models.OneToOneField(LabTest, on_delete=models.PROTECT, related_name="specimen_requirement")
    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="requirements")
    min_volume_ml = models.DecimalField(max_digits=4, decimal_places=1, validators=[MinValueValidator(Decimal("0.1"))])
    stability_room_temp = models.DurationField()
    stability_refrigerated = models.DurationField()

    class Meta:
        ordering = ["lab_test__name"]

    def __str__(self) -> str:
        return f"{self.lab_test.name}: {self.container}"


@pghistory.track()
class Specimen(models.Model):
    accession = models.CharField(max_length=12, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="specimens")
    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="+")
    specimen_type = models.CharField(max_length=4, choices=SpecimenType.choices)
    monitoring_tests = models.ManyToManyField(MonitoringTest, related_name="specimens")
    status = models.CharField(max_length=20, choices=SpecimenStatus.choices, default=SpecimenStatus.COLLECTED)

    collected_at = models.DateTimeField()
    collected_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(null=True, blank=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    condition = models.CharField(max_length=4, choices=SpecimenCondition.choices, blank=True)
    stability_exceeded = models.BooleanField(default=False)

    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rejection_reason = models.CharField(max_length=2, choices=RejectionReason.choices, blank=True)
    rejection_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-collected_at", "-id"]
        triggers = [NO_DELETE]
        permissions = [
            ("collect_specimen", "Can collect specimens"),
            ("receive_specimen", "Can receive specimens in the lab"),
            ("reject_specimen", "Can reject specimens"),
            ("record_custody", "Can record custody events"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status=SpecimenStatus.REJECTED)
                | (models.Q(rejected_at__isnull=False) & ~models.Q(rejection_reason="")),
                name="specimen_rejection_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["patient", "-collected_at"], name="specimen_patient_idx")]

    def __str__(self) -> str:
        return f"Specimen {self.accession}"


class CustodyEvent(models.Model):
    """The custody trail: append-only (the database refuses updates and deletes)."""

    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="custody_events")
    kind = models.CharField(max_length=20, choices=CustodyEventKind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    location = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
