from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from core.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from orders.models import (
    Dose,
    Drug,
    HoldRule,
    LabPatternCondition,
    LabPatternMatch,
    LabPatternRule,
    MonitoringRule,
    Preparation,
    Regimen,
    RegimenDoseBand,
    RegimenStep,
    TherapyPlan,
    TherapyPlanPhase,
    TreatmentCourse,
)
from orders.patterns import LAB_PATTERN_RULE_FIELDS, lab_pattern_rule_revise
from orders.services.doses import HOLD_RULE_FIELDS, hold_rule_revise


@admin.register(Drug)
class DrugAdmin(NoDeleteAdmin):
    list_display = ["name", "target", "strength_mg_per_ml", "concentration_min", "concentration_max", "hazardous"]


class MonitoringRuleInline(admin.TabularInline[MonitoringRule, Regimen]):
    model = MonitoringRule
    extra = 0


class RegimenDoseBandInline(admin.TabularInline[RegimenDoseBand, Regimen]):
    model = RegimenDoseBand
    extra = 0


class RegimenStepInline(admin.TabularInline[RegimenStep, Regimen]):
    model = RegimenStep
    extra = 0
    can_delete = False  # a step is edited (history kept), never deleted


@admin.register(Regimen)
class RegimenAdmin(NoDeleteAdmin):
    list_display = ["name", "drug", "dose_basis", "dose_amount", "cycle_days", "number_of_doses", "active"]
    inlines = [MonitoringRuleInline, RegimenDoseBandInline, RegimenStepInline]


class TherapyPlanPhaseInline(admin.TabularInline[TherapyPlanPhase, TherapyPlan]):
    model = TherapyPlanPhase
    extra = 0
    can_delete = False


@admin.register(TherapyPlan)
class TherapyPlanAdmin(NoDeleteAdmin):
    list_display = ["name", "active", "source"]
    inlines = [TherapyPlanPhaseInline]


class VersionedRuleAdmin(NoDeleteAdmin):
    """Saving an edited rule makes a new version (`revise_rule`, the rule's service); the old one stays,
    superseded and read-only."""

    versioned_fields: tuple[str, ...] = ()
    version_fields = ["version", "active", "superseded_by", "created_at", "created_by"]
    revise_rule: Callable[..., Any]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and (not obj.active or obj.superseded_by_id):
            return [f.name for f in self.model._meta.fields] + [f.name for f in self.model._meta.many_to_many]
        return ["key", *self.version_fields] if obj is not None else self.version_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        user = request.user if isinstance(request.user, User) else None
        if change:
            relations = [f.name for f in self.model._meta.many_to_many]
            names = (*self.versioned_fields, *relations)
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in names}
            form.instance = self.revise_rule(
                rule=self.model.objects.get(pk=obj.pk), changes=changes, user=user, now=timezone.now()
            )
        else:
            obj.created_at, obj.created_by = timezone.now(), user
            obj.save()


@admin.register(HoldRule)
class HoldRuleAdmin(VersionedRuleAdmin):
    list_display = ["description", "key", "version", "lab_test", "action", "threshold", "reference", "active"]
    list_filter = ["active", "action"]
    versioned_fields = HOLD_RULE_FIELDS

    revise_rule = staticmethod(hold_rule_revise)


@admin.register(TreatmentCourse, Dose, Preparation)
class ClinicalRecordAdmin(ReadOnlyAdmin):
    """Courses, doses and preparations change only through their services (and the audit trail)."""


class LabPatternConditionInline(admin.TabularInline[LabPatternCondition, LabPatternRule]):
    """Conditions are written with the rule; a rule's later versions get theirs from lab_pattern_rule_revise."""

    model = LabPatternCondition
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: LabPatternRule | None = None) -> bool:
        return obj is None

    def has_change_permission(self, request: HttpRequest, obj: LabPatternRule | None = None) -> bool:
        return obj is None


@admin.register(LabPatternRule)
class LabPatternRuleAdmin(VersionedRuleAdmin):
    list_display = ["name", "key", "version", "severity", "audience", "source", "effective_from", "active"]
    list_filter = ["active", "audience"]
    inlines = [LabPatternConditionInline]
    versioned_fields = LAB_PATTERN_RULE_FIELDS

    revise_rule = staticmethod(lab_pattern_rule_revise)


@admin.register(LabPatternMatch)
class LabPatternMatchAdmin(ReadOnlyAdmin):
    list_display = ["rule", "course", "matched_at"]
