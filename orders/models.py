from __future__ import annotations

from decimal import Decimal
from typing import Any

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from alerts.choices import AlertAudience, AlertSeverity
from monitoring.models import LabTest, MonitoringTest
from orders.choices import (
    BiosafetyLevel,
    CoiStep,
    Comparator,
    ComponentKind,
    CompoundingCategory,
    CourseStatus,
    DecisionKind,
    DoseBasis,
    DoseStatus,
    ExposureKind,
    GateCheckPurpose,
    GateVerdict,
    HoldAction,
    LabPatternChange,
    PremedicationClass,
    PreparationStatus,
    Reference,
    RuleKind,
    Storage,
    ToleranceVerdictChoice,
    VerificationMethod,
)
from patients.models import NO_DELETE, Patient

POSITIVE = [MinValueValidator(Decimal("0.001"))]
APPEND_ONLY = pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)
DEFAULT_BAG_SIZES_ML = [Decimal(50), Decimal(100), Decimal(250), Decimal(500)]


class MeasureField(models.DecimalField):
    """A decimal stored as PostgreSQL `numeric` without a fixed scale, so a value keeps the places it was
    calculated to (a dose to 0.1 mg reads back "240.0", one to 0.01 mg "0.16"); max_digits and decimal_places
    bound what validation accepts."""

    def db_type(self, connection: Any) -> str:
        return "numeric"


def default_bag_sizes() -> list[Decimal]:
    return list(DEFAULT_BAG_SIZES_ML)


class LabelSourced(models.Model):
    """Where a clinical number comes from, and from when it applies (docs/clinical-sources.md)."""

    source = models.CharField(max_length=200, blank=True, help_text="Label or guideline, section, revision")
    effective_from = models.DateField(null=True, blank=True, help_text="Revision date of the source")

    class Meta:
        abstract = True


@pghistory.track()
class Drug(LabelSourced):
    name = models.CharField(max_length=80, unique=True)
    target = models.CharField(max_length=40, blank=True)
    # Four places: a µg-level reconstituted strength (blinatumomab 12.5 µg/mL = 0.0125 mg/mL) fits.
    strength_mg_per_ml = models.DecimalField(max_digits=9, decimal_places=4, validators=POSITIVE)
    vial_contents_mg = ArrayField(
        models.DecimalField(max_digits=8, decimal_places=1), blank=True,
        help_text="mg per vial size; empty for a continuous infusion's bags (volume entered by the preparer)",
    )  # fmt: skip
    allowed_diluents = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    concentration_min = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    concentration_max = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    stability_room = models.DurationField(null=True, blank=True, help_text="In-use stability after dilution")
    stability_refrigerated = models.DurationField(null=True, blank=True)
    filter_note = models.CharField(max_length=80, blank=True)
    hazardous = models.BooleanField(default=False, help_text="NIOSH hazardous drug")
    cell_therapy = models.BooleanField(default=False, help_text="Carries a chain-of-identity ID")
    bag_sizes_ml = ArrayField(
        models.DecimalField(max_digits=6, decimal_places=0), default=default_bag_sizes, help_text="Diluent bags"
    )
    may_give_undiluted = models.BooleanField(default=False, help_text="The label allows giving it undiluted")
    max_final_volume_ml = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    max_final_volume_ml_per_kg = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Volume cap per kg ..."
    )
    per_kg_volume_below_kg = models.DecimalField(
        max_digits=5, decimal_places=1, null=True, blank=True, help_text="... for patients under this weight"
    )
    in_use_includes_infusion = models.BooleanField(
        default=False, help_text="The label's in-use time runs from preparation to the END of the infusion"
    )
    protect_from_light = models.BooleanField(default=False)
    biosafety_level = models.CharField(max_length=5, choices=BiosafetyLevel.choices, blank=True)
    premedication = models.CharField(max_length=200, blank=True, help_text="To record before the infusion starts")
    thaw_to_infusion_limit = models.DurationField(null=True, blank=True, help_text="Cell products: infuse within")
    rescue_drug = models.CharField(max_length=60, blank=True, help_text="Must be on hand before infusion")
    rescue_doses_required = models.PositiveSmallIntegerField(default=0)
    # Cell products: what the patient is told after the infusion (docs/clinical-sources.md §8)
    proximity_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Cell products: stay near the treatment centre this many days after infusion"
    )
    no_driving_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Cell products: no driving or hazardous activities this many days"
    )
    periods_source = models.CharField(max_length=200, blank=True, help_text="Label section and revision of both")
    periods_effective_from = models.DateField(null=True, blank=True, help_text="Revision date of that label")
    # Cell products that are not frozen (sipuleucel-T), oncolytic viruses (T-VEC): docs/clinical-sources.md §11
    fresh_product = models.BooleanField(
        default=False, help_text="Not frozen (no thaw): each bag has its own COI ID and an expiry time set at receipt"
    )
    intralesional = models.BooleanField(
        default=False, help_text="Injected into lesions: volume by lesion size, concentration in PFU/mL"
    )
    preparer_exclusions = models.CharField(
        max_length=200, blank=True, help_text="Who may not prepare it (e.g. pregnant or immunocompromised staff)"
    )
    storage_note = models.CharField(max_length=120, blank=True, help_text="Label storage, e.g. frozen -90 to -70 °C")
    tolerance_check_required = models.BooleanField(
        default=False, help_text="Each dose waits for a bedside tolerance check (high-dose aldesleukin after TIL)"
    )
    dose_step_mg = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.1"),
        help_text="Doses are measured to this (0.1 mg; 0.01 mg for a drug given in fractions of a mg)",
    )  # fmt: skip
    volume_step_ml = models.DecimalField(
        max_digits=3, decimal_places=2, default=Decimal("0.1"),
        help_text="Volumes are measured to this (0.1 mL; 0.01 mL for a subcutaneous syringe)",
    )  # fmt: skip

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class Regimen(LabelSourced):
    name = models.CharField(max_length=120, unique=True)
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="regimens")
    dose_basis = models.CharField(max_length=12, choices=DoseBasis.choices)
    # Four places: a µg-level daily dose (blinatumomab 28 µg/day = 0.028 mg) fits.
    dose_amount = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[MinValueValidator(Decimal("0.0001"))]
    )
    max_dose_mg = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    cells_per_kg = models.BigIntegerField(null=True, blank=True, help_text="Cell products: viable cells per kg")
    cells_min = models.BigIntegerField(null=True, blank=True, help_text="Cell products: fewest cells in the bag")
    cells_max = models.BigIntegerField(null=True, blank=True, help_text="Cell products: most cells in the bag")
    rounding_tolerance_percent = models.DecimalField(
        max_digits=4, decimal_places=1, null=True, blank=True, help_text="Vial rounding policy; empty: never round"
    )
    course_window_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Every dose within this many days of the first (ipilimumab: 112)"
    )
    cycle_days = models.PositiveSmallIntegerField()
    number_of_doses = models.PositiveSmallIntegerField()
    infusion_minutes = models.PositiveSmallIntegerField()
    active = models.BooleanField(default=True)
    lymphodepletion = models.CharField(
        max_length=300, blank=True, help_text="Cell products: the label's lymphodepleting regimen, before infusion"
    )
    first_interval_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days from dose 1 to dose 2 when it differs from the cycle (T-VEC: 21)"
    )
    pfu_per_ml_first_dose = models.BigIntegerField(null=True, blank=True, help_text="Oncolytic virus: dose 1 PFU/mL")
    pfu_per_ml = models.BigIntegerField(null=True, blank=True, help_text="Oncolytic virus: later doses PFU/mL")
    max_volume_ml_per_visit = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Oncolytic virus: all lesions together"
    )
    cells_per_kg_min = models.BigIntegerField(
        null=True, blank=True, help_text="Cell products: fewest cells per kg in the bag (cilta-cel: 0.5 x 10^6)"
    )
    cycle_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Hours between doses when they come within a day (aldesleukin: 8); else days"
    )
    # Continuous infusion in bags (blinatumomab, orders.bags): the steps give the daily dose from their day.
    bag_hours_allowed = ArrayField(
        models.PositiveSmallIntegerField(), default=list, blank=True,
        help_text="Continuous infusion: the bag durations (h) the label allows; empty: doses, not bags",
    )  # fmt: skip
    infusion_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Continuous infusion: days infused (blinatumomab: 28 of a 42-day cycle)"
    )
    # A regimen given only after another's infusion, within a window (aldesleukin 3-24 h after lifileucel).
    follows_regimen = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="followed_by",
        help_text="Starts only after a completed infusion of this regimen",
    )  # fmt: skip
    follows_from_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="First dose at the earliest this many hours after that infusion ended"
    )
    follows_to_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="... and at the latest this many hours after it"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    follows_regimen__isnull=True, follows_from_hours__isnull=True, follows_to_hours__isnull=True
                )
                | models.Q(
                    follows_regimen__isnull=False,
                    follows_from_hours__isnull=False,
                    follows_to_hours__gt=models.F("follows_from_hours"),
                ),
                name="regimen_follows_window_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class RegimenDoseBand(models.Model):
    """A weight band with its own dose (durvalumab: 1500 mg at 30 kg or more, else 20 mg/kg), or a band
    the regimen refuses. A regimen with bands must have one matching the patient's weight."""

    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="dose_bands")
    weight_from_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True, help_text="≥")
    weight_below_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True, help_text="<")
    dose_basis = models.CharField(max_length=12, choices=DoseBasis.choices, blank=True)
    dose_amount = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal("0.0001"))]
    )
    max_dose_mg = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    refuse = models.BooleanField(default=False, help_text="The regimen is not given in this band")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["regimen", "weight_from_kg"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refuse=True) | (~models.Q(dose_basis="") & models.Q(dose_amount__isnull=False)),
                name="dose_band_has_dose_or_refuses",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regimen}: {self.weight_from_kg or 0}-{self.weight_below_kg or '…'} kg"


@pghistory.track()
class RegimenStep(LabelSourced):
    """A dose of a regimen's step-up schedule (teclistamab 0.06 -> 0.3 -> 1.5 mg/kg on days 1, 4, 7): planned on
    its day, at its amount, in the regimen's dose basis. Doses after the last step continue every `cycle_days`
    from the last step's day. A step may use another vial (teclistamab 10 mg/mL for the step-up doses)."""

    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="steps")
    dose_number = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    day = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)], help_text="Day 1 is the first dose")
    # Four places: µg-level doses (blinatumomab, later) fit without another column.
    dose_amount = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="In the regimen's dose basis; empty: the regimen's amount",
    )  # fmt: skip
    step_up = models.BooleanField(default=True, help_text="Part of the step-up schedule (shown as a step-up dose)")
    premedication_required = models.BooleanField(default=False)
    premedication_classes = ArrayField(
        models.CharField(max_length=20, choices=PremedicationClass.choices), default=list, blank=True,
        help_text="Each must be recorded at the bedside before the dose starts",
    )  # fmt: skip
    premedication = models.CharField(max_length=200, blank=True, help_text="The label's drugs and doses")
    premedication_within_hours = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1)], help_text="Premedication given at most this long before"
    )
    hospital_stay_hours = models.PositiveSmallIntegerField(default=0, help_text="In hospital this long after the dose")
    strength_mg_per_ml = models.DecimalField(
        max_digits=8, decimal_places=3, null=True, blank=True, validators=POSITIVE,
        help_text="Another strength for this dose (the vial, or the label's dilution); empty: the drug's",
    )  # fmt: skip
    vial_contents_mg = ArrayField(
        models.DecimalField(max_digits=8, decimal_places=1), default=list, blank=True,
        help_text="The vials of that strength; empty: the drug's",
    )  # fmt: skip
    preparation_note = models.CharField(max_length=300, blank=True, help_text="E.g. the label's dilution steps")

    class Meta:
        ordering = ["regimen", "dose_number"]
        constraints = [
            models.UniqueConstraint(fields=["regimen", "dose_number"], name="regimen_step_number_unique"),
            models.CheckConstraint(
                condition=models.Q(premedication_required=False) | ~models.Q(premedication_classes=[]),
                name="regimen_step_premedication_named",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regimen}: dose {self.dose_number} on day {self.day}"


@pghistory.track()
class TherapyPlan(LabelSourced):
    """Regimens given in phases: each phase one or more regimens given together (nivolumab 1 mg/kg + ipilimumab
    3 mg/kg q3w x4), the next phase starting when every course of the one before is finished."""

    name = models.CharField(max_length=120, unique=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class TherapyPlanPhase(LabelSourced):
    """One regimen of a plan's phase (a phase of two regimens is two rows with the same position)."""

    plan = models.ForeignKey(TherapyPlan, on_delete=models.PROTECT, related_name="phases")
    position = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="plan_phases")
    starts_days_after_previous = models.PositiveSmallIntegerField(
        default=0, help_text="Days after the previous phase's last dose (phase 1: after the plan's start)"
    )

    class Meta:
        ordering = ["plan", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position", "regimen"], name="therapy_plan_phase_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} phase {self.position}: {self.regimen}"


@pghistory.track()
class TreatmentPlan(models.Model):
    """A patient's therapy plan: its courses (TreatmentCourse.treatment_plan) and the phase now given."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="treatment_plans")
    plan = models.ForeignKey(TherapyPlan, on_delete=models.PROTECT, related_name="treatment_plans")
    current_position = models.PositiveSmallIntegerField(default=1)
    finished = models.BooleanField(default=False, help_text="Every phase given or stopped")
    blocked_reason = models.CharField(
        max_length=300, blank=True, help_text="Why the next phase could not start by itself (start it by hand)"
    )
    starts_at = models.DateTimeField()
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-starts_at"]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.plan} from {self.starts_at:%Y-%m-%d}"


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
    interval_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Every n days: empty means 42 (while on therapy) or daily (after infusion)"
    )
    interval_hours = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="After infusion: every n hours instead of every n days (e.g. 8 for a bedside assessment every 8 h); "
        "day_to then counts as a whole day",
    )
    day_from = models.SmallIntegerField(null=True, blank=True)
    day_to = models.SmallIntegerField(null=True, blank=True)
    grace_hours = models.PositiveSmallIntegerField(default=12)
    gates_dose = models.BooleanField(default=True, help_text="Pre-dose: the dose waits for this result")

    class Meta:
        ordering = ["regimen", "kind", "lab_test__name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(interval_days__isnull=True) | models.Q(interval_days__gte=1),
                name="monitoring_rule_interval_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(day_from__isnull=True)
                | models.Q(day_to__isnull=True)
                | models.Q(day_from__lte=models.F("day_to")),
                name="monitoring_rule_days_ordered",
            ),
            # Hours step only the "after the infusion" and "after a step-up dose" rules, never with a step in days.
            models.CheckConstraint(
                condition=models.Q(interval_hours__isnull=True)
                | models.Q(
                    interval_hours__gte=1,
                    interval_days__isnull=True,
                    kind__in=[RuleKind.DAILY_AFTER_INFUSION, RuleKind.AFTER_STEP_UP_DOSE],
                ),
                name="monitoring_rule_interval_hours_after_infusion",
            ),
            # After a step-up dose: always in hours (the stay is hours long).
            models.CheckConstraint(
                condition=~models.Q(kind=RuleKind.AFTER_STEP_UP_DOSE) | models.Q(interval_hours__isnull=False),
                name="monitoring_rule_after_step_up_in_hours",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regimen}: {self.lab_test.name} {self.get_kind_display()}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.interval_days is not None and self.interval_days < 1:
            errors["interval_days"] = "The interval is at least 1 day."
        if self.interval_hours is not None:
            if self.interval_hours < 1:
                errors["interval_hours"] = "The interval is at least 1 hour."
            elif self.interval_days is not None:
                errors["interval_hours"] = "Give the interval in days or in hours, not both."
            elif self.kind not in (RuleKind.DAILY_AFTER_INFUSION, RuleKind.AFTER_STEP_UP_DOSE):
                errors["interval_hours"] = "An interval in hours is for the rules counted from the infusion."
        if self.kind == RuleKind.AFTER_STEP_UP_DOSE and self.interval_hours is None:
            errors["interval_hours"] = "Say every how many hours during the stay after a step-up dose."
        if self.kind == RuleKind.DAILY_AFTER_INFUSION:
            if self.day_from is None:
                errors["day_from"] = "Say from which day after the infusion (0: the infusion day)."
            if self.day_to is None:
                errors["day_to"] = "Say up to which day after the infusion (included)."
        if self.day_from is not None and self.day_to is not None and self.day_from > self.day_to:
            errors["day_to"] = f"Day {self.day_to} is before day {self.day_from}: the last day comes after the first."
        if errors:
            raise ValidationError(errors)


class VersionedRule(LabelSourced):
    """A rule kept as data in versions: an edit is a new row with the same key; the old one stays, inactive
    and superseded."""

    key = models.SlugField(max_length=60, help_text="Stable name across versions")
    version = models.PositiveSmallIntegerField(default=1)
    active = models.BooleanField(default=True)
    superseded_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True


# What a new version of a hold rule may not change in place: every edit is a new row (hold_rule_revise).
HOLD_RULE_FROZEN = pgtrigger.Protect(
    name="hold_rule_versions_frozen",
    operation=pgtrigger.Update,
    condition=pgtrigger.AnyChange(
        "key",
        "version",
        "lab_test",
        "comparator",
        "threshold",
        "reference",
        "unit",
        "action",
        "lookback_days",
        "requires_result",
        "description",
        "source",
        "effective_from",
        "created_at",
    ),
)


@pghistory.track()
class HoldRule(VersionedRule):
    """One version of a hold rule: when the latest verified result breaks it, the dose is withheld or the
    course must be permanently discontinued. Data, not code; an edit makes a new version (same key)."""

    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    drugs = models.ManyToManyField(Drug, blank=True, related_name="hold_rules", help_text="Empty: every drug")
    regimens = models.ManyToManyField(Regimen, blank=True, related_name="hold_rules", help_text="... or regimens")
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    threshold = models.DecimalField(max_digits=10, decimal_places=3)
    reference = models.CharField(max_length=10, choices=Reference.choices, default=Reference.ABSOLUTE)
    unit = models.CharField(max_length=30, blank=True, help_text="UCUM unit of an absolute threshold")
    action = models.CharField(max_length=12, choices=HoldAction.choices)
    lookback_days = models.PositiveSmallIntegerField(default=14, help_text="Results this recent decide")
    requires_result = models.BooleanField(
        default=True, help_text="No result in the window makes the dose pending (else the rule does not apply)"
    )
    description = models.CharField(max_length=200)

    class Meta:
        ordering = ["lab_test__name", "action", "key", "-version"]
        triggers = [NO_DELETE, HOLD_RULE_FROZEN]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="hold_rule_key_version_unique"),
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(active=True), name="hold_rule_one_active_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description} (v{self.version})"


@pghistory.track()
class TreatmentCourse(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="courses")
    starts_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=CourseStatus.choices, default=CourseStatus.ACTIVE)
    weight_kg_at_start = models.DecimalField(max_digits=5, decimal_places=1)
    height_cm_at_start = models.DecimalField(max_digits=4, decimal_places=1)
    chain_of_identity = models.CharField(max_length=40, blank=True, help_text="CAR-T: assigned at leukapheresis")
    no_round_up = models.BooleanField(default=False, help_text="Exception: never round a dose up to a vial")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    stop_reason = models.TextField(blank=True)
    treatment_plan = models.ForeignKey(
        TreatmentPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="courses"
    )
    phase_position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The plan's phase")
    bag_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Continuous infusion: the bag duration the site chose when ordering"
    )

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
    # A bag of a continuous infusion (orders.bags): how long it runs, which step's daily dose it gives, and whether
    # it is the first bag at that dose (premedication and hospital stay follow that bag, not every bag).
    bag_hours = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Continuous infusion: bag runs (h)")
    bag_step = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The regimen step this bag gives")
    starts_step = models.BooleanField(default=False, help_text="The first bag at its step's daily dose")

    class Meta:
        ordering = ["planned_at", "number"]
        triggers = [NO_DELETE]
        constraints = [models.UniqueConstraint(fields=["course", "number"], name="dose_number_unique_per_course")]
        indexes = [
            models.Index(fields=["planned_at"], condition=models.Q(status="planned"), name="dose_planned_idx"),
        ]

    def __str__(self) -> str:
        return f"Dose {self.number} of {self.course}"


class DoseDecision(models.Model):
    """An oncologist's decision to give a dose the gate holds: one oncologist overrides a withhold or a
    pending finding; a permanent-discontinuation finding needs a second oncologist's signature. It covers
    the findings it saw (`covers`): a new finding holds the dose again."""

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="decisions")
    kind = models.CharField(max_length=10, choices=DecisionKind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    cosigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField()
    covers = ArrayField(models.CharField(max_length=80), default=list, help_text="Keys of the findings decided")
    hold_rules = models.ManyToManyField(HoldRule, blank=True, related_name="+", help_text="Rule versions seen")

    class Meta:
        ordering = ["at", "id"]
        triggers = [APPEND_ONLY]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cosigned_by__isnull=True) | ~models.Q(cosigned_by=models.F("by")),
                name="dose_decision_two_people",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="cosigned") | models.Q(cosigned_by__isnull=False),
                name="dose_decision_cosigned_has_second",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.dose}"


class GateCheck(models.Model):
    """A gate verdict as it was when a step relied on it, with the hold-rule versions that decided it."""

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="gate_checks")
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=12, choices=GateCheckPurpose.choices)
    verdict = models.CharField(max_length=12, choices=GateVerdict.choices)
    reasons = models.JSONField(default=list)
    hold_rules = models.ManyToManyField(HoldRule, blank=True, related_name="+")

    class Meta:
        ordering = ["at", "id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.dose}: {self.verdict} at {self.at:%Y-%m-%d %H:%M}"


class RescueMedicationCheck(models.Model):
    """Pharmacy confirms rescue doses on hand for the patient before a cell or bispecific infusion
    (tocilizumab: two doses, Yescarta PI)."""

    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="rescue_checks")
    drug = models.CharField(max_length=60)
    doses_on_hand = models.PositiveSmallIntegerField()
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.doses_on_hand} x {self.drug} for {self.course}"


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
    # Drugs in mg; cell products (see cells_*) have no mg and their volume comes from the certificate. Stored as
    # calculated (unconstrained numeric keeps the scale): 240.0 mg stays "240.0", a 0.16 mg step-up dose "0.16".
    dose_mg = MeasureField(max_digits=11, decimal_places=3, null=True, blank=True)
    volume_to_draw_ml = MeasureField(max_digits=10, decimal_places=2, null=True, blank=True)
    final_volume_ml = MeasureField(max_digits=10, decimal_places=2, null=True, blank=True)
    concentration_mg_per_ml = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    cells_target = models.BigIntegerField(null=True, blank=True)
    cells_min = models.BigIntegerField(null=True, blank=True)
    cells_max = models.BigIntegerField(null=True, blank=True)
    coa_cells = models.BigIntegerField(null=True, blank=True, help_text="Certificate of analysis: viable cells")
    coa_bag_volume_ml = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    coa_lot = models.CharField(max_length=60, blank=True)
    coa_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    coa_recorded_at = models.DateTimeField(null=True, blank=True)
    bag_intact = models.BooleanField(null=True, blank=True)
    diluent_bag_ml = models.DecimalField(max_digits=6, decimal_places=0, null=True, blank=True)
    recalculation_needed = models.BooleanField(default=False)
    ordered_at = models.DateTimeField()

    category = models.CharField(max_length=12, choices=CompoundingCategory.choices, blank=True)
    storage = models.CharField(max_length=12, choices=Storage.choices, blank=True)
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    punctured_at = models.DateTimeField(
        null=True, blank=True, help_text="First vial puncture or dilution: the beyond-use clocks start here"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    beyond_use_at = models.DateTimeField(null=True, blank=True, help_text="USP <797>: start administration by")
    infusion_end_by = models.DateTimeField(null=True, blank=True, help_text="Label in-use time: end infusion by")
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
    premedication_given_at = models.DateTimeField(null=True, blank=True)
    premedication_note = models.CharField(max_length=200, blank=True)
    premedication_classes_given = ArrayField(
        models.CharField(max_length=20, choices=PremedicationClass.choices), default=list, blank=True,
        help_text="Recorded at the bedside (step-up doses)",
    )  # fmt: skip
    wasted_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Hazardous drugs (USP <800>): the closed-system drug-transfer device used (required to release)
    closed_system_device = models.CharField(max_length=80, blank=True, help_text="USP <800>: CSTD used")
    # Fresh cell products (sipuleucel-T): this bag's own chain-of-identity ID (from its leukapheresis) and expiry
    bag_identity = models.CharField(max_length=40, blank=True, help_text="This bag's own chain-of-identity ID")
    collected_at = models.DateTimeField(null=True, blank=True, help_text="Leukapheresis for this bag")
    product_expires_at = models.DateTimeField(null=True, blank=True, help_text="Recorded at receipt: infuse before")
    # Oncolytic virus (T-VEC): PFU/mL and mL, never mg
    concentration_pfu_per_ml = models.BigIntegerField(null=True, blank=True)
    max_volume_ml = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    volume_ml_planned = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    lesion_plan = models.JSONField(default=list, blank=True, help_text="Per lesion: size (cm) and volume (mL)")
    exclusion_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    exclusion_confirmed_at = models.DateTimeField(null=True, blank=True)

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


# --- Lab pattern rules (HLH/MAS suspicion and the like): alerts on combinations of recent results ------------

# What a version of a lab pattern rule may not change in place: every edit is a new row (lab_pattern_rule_revise).
LAB_PATTERN_RULE_FROZEN = pgtrigger.Protect(
    name="lab_pattern_rule_versions_frozen",
    operation=pgtrigger.Update,
    condition=pgtrigger.AnyChange(
        "key", "version", "name", "message", "severity", "audience", "days_after_infusion_from",
        "days_after_infusion_to", "source", "effective_from", "created_at",
    ),
)  # fmt: skip


@pghistory.track()
class LabPatternRule(VersionedRule):
    """One version of a lab pattern rule: when every condition holds over a patient's verified results, the
    rule's audience gets one alert per course. Data, not code; an edit makes a new version (same key)."""

    name = models.CharField(max_length=120)
    drugs = models.ManyToManyField(Drug, blank=True, related_name="lab_pattern_rules", help_text="Empty: every drug")
    message = models.CharField(max_length=120, help_text="Alert text before the values, e.g. 'HLH/MAS suspected'")
    severity = models.PositiveSmallIntegerField(choices=AlertSeverity.choices, default=AlertSeverity.HIGH)
    audience = models.CharField(max_length=12, choices=AlertAudience.choices, default=AlertAudience.ONCOLOGISTS)
    days_after_infusion_from = models.SmallIntegerField(
        null=True, blank=True, help_text="Applies from this day after the first dose (empty: from the start)"
    )
    days_after_infusion_to = models.SmallIntegerField(
        null=True, blank=True, help_text="... up to this day (empty: while the course is active)"
    )

    class Meta:
        ordering = ["key", "-version"]
        triggers = [NO_DELETE, LAB_PATTERN_RULE_FROZEN]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="lab_pattern_rule_key_version_unique"),
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(active=True, superseded_by__isnull=True),
                name="lab_pattern_rule_one_current_version",
            ),
            models.CheckConstraint(
                condition=models.Q(days_after_infusion_from__isnull=True)
                | models.Q(days_after_infusion_to__isnull=True)
                | models.Q(days_after_infusion_from__lte=models.F("days_after_infusion_to")),
                name="lab_pattern_rule_days_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class LabPatternCondition(models.Model):
    """One condition of a lab pattern rule, over the analyte's verified results of the last `within_hours`."""

    rule = models.ForeignKey(LabPatternRule, on_delete=models.PROTECT, related_name="conditions")
    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    change = models.CharField(max_length=12, choices=LabPatternChange.choices)
    threshold = models.DecimalField(max_digits=12, decimal_places=3, help_text="Factor, percent, or a value")
    unit = models.CharField(max_length=30, blank=True, help_text="UCUM unit of an above/below threshold")
    within_hours = models.PositiveSmallIntegerField(default=48, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["rule", "id"]
        triggers = [APPEND_ONLY]
        constraints = [
            models.UniqueConstraint(fields=["rule", "lab_test", "change"], name="lab_pattern_condition_unique"),
            models.CheckConstraint(condition=models.Q(threshold__gt=0), name="lab_pattern_threshold_positive"),
            models.CheckConstraint(condition=models.Q(within_hours__gt=0), name="lab_pattern_window_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.lab_test.name} {self.get_change_display()} {self.threshold} in {self.within_hours} h"


class LabPatternMatch(models.Model):
    """A lab pattern rule met during a course: made once per (course, rule key), so one episode raises one
    alert (this row is its subject) even when later results or a new rule version meet it again."""

    rule = models.ForeignKey(LabPatternRule, on_delete=models.PROTECT, related_name="matches")
    rule_key = models.SlugField(max_length=60)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    course = models.ForeignKey(TreatmentCourse, on_delete=models.PROTECT, related_name="lab_pattern_matches")
    matched_at = models.DateTimeField()
    values = models.JSONField(default=list, help_text="Per condition: the results and the measure that met it")
    summary = models.CharField(max_length=300)

    class Meta:
        ordering = ["-matched_at", "id"]
        triggers = [APPEND_ONLY]
        constraints = [
            models.UniqueConstraint(fields=["course", "rule_key"], name="lab_pattern_match_once_per_course"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} met at {self.matched_at:%Y-%m-%d %H:%M}"


class ExposureReport(models.Model):
    """An accidental exposure to a genetically modified product (T-VEC): who, when, what, the action taken.
    Kept as written (append-only) and listed for the pharmacist."""

    preparation = models.ForeignKey(
        Preparation, on_delete=models.PROTECT, null=True, blank=True, related_name="exposure_reports"
    )
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="exposure_reports")
    person = models.CharField(max_length=120, help_text="Who was exposed")
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=ExposureKind.choices)
    what = models.TextField(help_text="What happened")
    action_taken = models.TextField(help_text="What was done (e.g. area cleaned, occupational health)")
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        triggers = [APPEND_ONLY]
        constraints = [
            models.CheckConstraint(condition=models.Q(occurred_at__lte=models.F("reported_at")),
                                   name="exposure_report_after_event"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"Exposure to {self.drug} ({self.person}) at {self.occurred_at:%Y-%m-%d %H:%M}"


@pghistory.track()
class ToleranceCheck(models.Model):
    """The bedside tolerance check before a dose that needs one (aldesleukin after TIL, orders/tolerance.py): the
    findings as recorded and the verdict computed from them. Append-only: a new check, never an edit."""

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="tolerance_checks")
    checked_at = models.DateTimeField()
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    systolic_bp_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    target_systolic_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    vasopressors = models.BooleanField(null=True, blank=True)
    heart_rate_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    new_arrhythmia = models.BooleanField(null=True, blank=True)
    spo2_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    oxygen_l_min = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    urine_ml_per_kg_h = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    creatinine_mg_dl = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    mental_status_changed = models.BooleanField(null=True, blank=True)
    verdict = models.CharField(max_length=10, choices=ToleranceVerdictChoice.choices)
    reasons = models.JSONField(default=list)
    missing = models.JSONField(default=list)

    class Meta:
        ordering = ["-checked_at", "-id"]
        triggers = [APPEND_ONLY]
        constraints = [
            models.CheckConstraint(condition=models.Q(checked_at__lte=models.F("recorded_at")),
                                   name="tolerance_check_not_in_the_future"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"Tolerance check of dose {self.dose_id} at {self.checked_at:%Y-%m-%d %H:%M}: {self.verdict}"
