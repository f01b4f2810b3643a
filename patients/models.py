from __future__ import annotations

from decimal import Decimal

import pghistory
import pgtrigger
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from patients.choices import CareTeamRole, Sex

NO_DELETE = pgtrigger.Protect(name="protect_delete", operation=pgtrigger.Delete)


@pghistory.track()
class CareTeam(models.Model):
    name = models.CharField(max_length=120, unique=True)
    ward = models.CharField(max_length=60)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="CareTeamMembership", related_name="care_teams")

    class Meta:
        ordering = ["name"]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.name} ({self.ward})"


@pghistory.track()
class CareTeamMembership(models.Model):
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="care_team_memberships")
    role = models.CharField(max_length=20, choices=CareTeamRole.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["care_team", "user"], name="membership_unique_per_team")]

    def __str__(self) -> str:
        return f"{self.user} - {self.get_role_display()} in {self.care_team}"


@pghistory.track()
class Patient(models.Model):
    mrn = models.CharField(
        "MRN",
        max_length=20,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9-]{4,20}$", "MRN is 4-20 upper-case letters, digits or hyphens.")],
    )
    family_name = models.CharField(max_length=100)
    given_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=1, choices=Sex.choices)
    weight_kg = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("500"))],
    )
    height_cm = models.DecimalField(
        max_digits=4, decimal_places=1, validators=[MinValueValidator(Decimal("30")), MaxValueValidator(Decimal("260"))]
    )
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="patients")
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by the ADT feed (docs/interfaces.md): the ward of the current stay (PV1-3.1), when discharged (A03).
    ward = models.CharField(max_length=60, blank=True)
    discharged_at = models.DateTimeField(null=True, blank=True)
    # A40: this record was merged into another. Nothing of it is deleted or re-pointed; its clinical rows stay
    # on it and are found through the survivor (`patients.selectors.patient_record_ids`).
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_records"
    )
    merged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        triggers = [NO_DELETE]
        constraints = [
            models.CheckConstraint(condition=models.Q(weight_kg__gt=0), name="patient_weight_positive"),
            models.CheckConstraint(condition=models.Q(height_cm__gt=0), name="patient_height_positive"),
            models.CheckConstraint(
                condition=~models.Q(merged_into=models.F("pk")), name="patient_not_merged_into_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name} ({self.mrn})"


@pghistory.track()
class WardCareTeam(models.Model):
    """Which care team looks after the patients of a ward (PV1-3.1 point of care), for ADT transfers and admissions.
    Admins edit it; a ward missing here is refused, never guessed."""

    ward = models.CharField(max_length=60, unique=True, help_text="PV1-3.1 point of care as the ADT feed sends it")
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="ward_mappings")

    class Meta:
        ordering = ["ward"]
        triggers = [NO_DELETE]
        verbose_name = "ward to care team mapping"

    def __str__(self) -> str:
        return f"{self.ward} → {self.care_team.name}"


@pghistory.track()
class PatientAlias(models.Model):
    """An MRN that now names another patient: the MRN of a record merged into `patient` (A40), kept so that
    messages still using it resolve to the survivor."""

    mrn = models.CharField("MRN", max_length=20, unique=True)
    authority = models.CharField(max_length=60, blank=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="aliases")
    merged_record = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="merged_alias")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mrn"]
        triggers = [NO_DELETE]
        verbose_name_plural = "patient aliases"

    def __str__(self) -> str:
        return f"{self.mrn} → {self.patient.mrn}"
