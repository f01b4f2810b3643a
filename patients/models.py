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

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        triggers = [NO_DELETE]
        constraints = [
            models.CheckConstraint(condition=models.Q(weight_kg__gt=0), name="patient_weight_positive"),
            models.CheckConstraint(condition=models.Q(height_cm__gt=0), name="patient_height_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name} ({self.mrn})"
