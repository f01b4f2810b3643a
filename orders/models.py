from __future__ import annotations

from decimal import Decimal

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models

from monitoring.models import LabTest, MonitoringTest
from orders.choices import (
    CoiStep,
    Comparator,
    ComponentKind,
    CompoundingCategory,
    CourseStatus,
    DoseBasis,
    DoseStatus,
    PreparationStatus,
    Reference,
    RuleKind,
    Storage,
    VerificationMethod,
)
from patients.models import NO_DELETE, Patient

POSITIVE = [MinValueValidator(Decimal("0.001"))]
APPEND_ONLY = pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)


@pghistory.track()
class Drug(models.Model):
    name = models.CharField(max_length=80, unique=True)
    target = models.CharField(max_length=40, blank=True)
    strength_mg_per_ml = models.DecimalField(max_digits=8, decimal_places=3, validators=POSITIVE)
    vial_contents_mg = ArrayField(models.DecimalField(max_digits=8, decimal_places=1), help_text="mg per vial size")
    allowed_diluents = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    concentration_min = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    concentration_max = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    stability_room = models.DurationField(null=True, blank=True, help_text="In-use stability after dilution")
    stability_refrigerated = models.DurationField(null=True, blank=True)
    filter_note = models.CharField(max_length=80, blank=True)
    hazardous = models.BooleanField(default=False, help_text="NIOSH hazardous drug")
    cell_therapy = models.BooleanField(default=False, help_text="Carries a chain-of-identity ID")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class Regimen(models.Model):
    name = models.CharField(max_length=120, unique=True)
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="regimens")
    dose_basis = models.CharField(max_length=12, choices=DoseBasis.choices)
    dose_amount = models.DecimalField(max_digits=8, decimal_places=2, validators=POSITIVE)
    max_dose_mg = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    cycle_days = models.PositiveSmallIntegerField()
    number_of_doses = models.PositiveSmallIntegerField()
    infusion_minutes = models.PositiveSmallIntegerField()
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class MonitoringRule(models.Model):
    """One line of a regimen's monitoring plan; courses turn it into scheduled monitoring tests."""

    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="monitoring_rules")
    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    window_hours = models.PositiveSmallIntegerField(
        default=72, help_text="Pre-dose: accepted if drawn this long before"
    )
    lead_hours = models.PositiveSmallIntegerField(default=24, help_text="Pre-dose: due this long before the dose")
    every_nth_dose = models.PositiveSmallIntegerField(null=True, blank=True)
    interval_days = models.PositiveSmallIntegerField(null=True, blank=True)
    day_from = models.SmallIntegerField(null=True, blank=True)
    day_to = models.SmallIntegerField(null=True, blank=True)
    grace_hours = models.PositiveSmallIntegerField(default=12)
    gates_dose = models.BooleanField(default=True, help_text="Pre-dose: the dose waits for this result")

    class Meta:
        ordering = ["regimen", "kind", "lab_test__name"]

    def __str__(self) -> str:
        return f"{self.regimen}: {self.lab_test.name} {self.get_kind_display()}"


@pghistory.track()
class HoldRule(models.Model):
    """Hold a dose when the latest verified result breaks this rule (e.g. ALT > 5 x ULN). Data, not code."""

    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, null=True, blank=True, related_name="hold_rules")
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    threshold = models.DecimalField(max_digits=10, decimal_places=3)
    reference = models.CharField(max_length=10, choices=Reference.choices, default=Reference.ABSOLUTE)
    lookback_days = models.PositiveSmallIntegerField(default=14)
    description = models.CharField(max_length=200)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["lab_test__name"]

    def __str__(self) -> str:
        return self.description


@pghistory.track()
class TreatmentCourse(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="courses")
    starts_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=CourseStatus.choices, default=CourseStatus.ACTIVE)
    weight_kg_at_start = models.DecimalField(max_digits=5, decimal_places=1)
    height_cm_at_start = models.DecimalField(max_digits=4, decimal_places=1)
    chain_of_identity = models.CharField(max_length=40, blank=True, help_text="CAR-T: assigned at leukapheresis")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    stop_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-starts_at"]
        triggers = [NO_DELETE]
        permissions = [("manage_course", "Can start, reschedule, stop courses and override held doses")]

    def __str__(self) -> str:
        return f"{self.regimen} from {self.starts_at:%Y-%m-%d}"


@pghistory.track()
class Dose(models.Model):
    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="doses")
    number = models.PositiveSmallIntegerField()
    planned_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=DoseStatus.choices, default=DoseStatus.PLANNED)
    cancel_reason = models.TextField(blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    override_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["planned_at", "number"]
        triggers = [NO_DELETE]
        constraints = [models.UniqueConstraint(fields=["course", "number"], name="dose_number_unique_per_course")]
        indexes = [
            models.Index(fields=["planned_at"], condition=models.Q(status="planned"), name="dose_planned_idx"),
        ]

    def __str__(self) -> str:
        return f"Dose {self.number} of {self.course}"


class CourseMonitoringTest(models.Model):
    """Which monitoring test a course's rule scheduled, and for which dose (pre-dose rules)."""

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="monitoring_links")
    rule = models.ForeignKey(MonitoringRule, on_delete=models.PROTECT, related_name="+")
    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, null=True, blank=True, related_name="monitoring_links")
    monitoring_test = models.OneToOneField(MonitoringTest, on_delete=models.PROTECT, related_name="course_link")

    class Meta:
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.rule} -> test {self.monitoring_test_id}"


@pghistory.track()
class Preparation(models.Model):
    """The medication preparation order of a dose, through preparation, verification and administration."""

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="preparations")
    status = models.CharField(max_length=24, choices=PreparationStatus.choices, default=PreparationStatus.ORDERED)
    calculation = models.JSONField(help_text="Every input and output of the dose calculation")
    dose_mg = models.DecimalField(max_digits=8, decimal_places=1)
    volume_to_draw_ml = models.DecimalField(max_digits=8, decimal_places=1)
    final_volume_ml = models.DecimalField(max_digits=8, decimal_places=1)
    concentration_mg_per_ml = models.DecimalField(max_digits=8, decimal_places=2)
    diluent_bag_ml = models.DecimalField(max_digits=6, decimal_places=0, null=True, blank=True)
    recalculation_needed = models.BooleanField(default=False)
    ordered_at = models.DateTimeField()

    category = models.CharField(max_length=12, choices=CompoundingCategory.choices, blank=True)
    storage = models.CharField(max_length=12, choices=Storage.choices, blank=True)
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    beyond_use_at = models.DateTimeField(null=True, blank=True)
    beyond_use_note = models.CharField(max_length=200, blank=True)

    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_method = models.CharField(max_length=12, choices=VerificationMethod.choices, blank=True)
    expected_value = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    measured_value = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    rejection_reason = models.TextField(blank=True)

    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    administered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    administration_started_at = models.DateTimeField(null=True, blank=True)
    administration_ended_at = models.DateTimeField(null=True, blank=True)
    wasted_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dose__planned_at", "id"]
        triggers = [NO_DELETE]
        permissions = [
            ("prepare", "Can prepare doses"),
            ("verify_preparation", "Can verify preparations of others"),
            ("administer", "Can administer released preparations"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dose"],
                condition=~models.Q(status__in=["expired", "wasted"]),
                name="preparation_one_live_per_dose",
            ),
            models.CheckConstraint(
                condition=models.Q(verified_by__isnull=True) | ~models.Q(verified_by=models.F("prepared_by")),
                name="preparation_not_self_verified",
            ),
        ]
        indexes = [
            models.Index(fields=["beyond_use_at"], condition=models.Q(status="released"), name="preparation_bud_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.get_status_display()})"

    @property
    def code(self) -> str:
        return f"PRP-{self.pk:06d}"


class PreparationComponent(models.Model):
    preparation = models.ForeignKey(Preparation, on_delete=models.PROTECT, related_name="components")
    kind = models.CharField(max_length=8, choices=ComponentKind.choices)
    product = models.CharField(max_length=80)
    lot = models.CharField(max_length=40)
    expiry = models.DateField()
    volume_ml = models.DecimalField(max_digits=8, decimal_places=1)
    count = models.PositiveSmallIntegerField(default=1)

    class Meta:
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.product} lot {self.lot}"


class IdentityCheck(models.Model):
    """Bedside scan of wristband and label, or a CAR-T chain-of-identity hand-off. Mismatches are kept."""

    preparation = models.ForeignKey(
        Preparation, on_delete=models.PROTECT, null=True, blank=True, related_name="identity_checks"
    )
    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="identity_checks")
    step = models.CharField(max_length=12, choices=CoiStep.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scanned_wristband = models.CharField(max_length=40, blank=True)
    scanned_label = models.CharField(max_length=40, blank=True)
    matched = models.BooleanField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.get_step_display()} {'match' if self.matched else 'MISMATCH'}"
