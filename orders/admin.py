from typing import Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from labflow.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from orders.models import (
    Dose,
    Drug,
    HoldRule,
    MonitoringRule,
    Preparation,
    Regimen,
    RegimenDoseBand,
    TreatmentCourse,
)
from orders.services import HOLD_RULE_FIELDS, hold_rule_revise


@admin.register(Drug)
class DrugAdmin(NoDeleteAdmin):
    list_display = ["name", "target", "strength_mg_per_ml", "concentration_min", "concentration_max", "hazardous"]


class MonitoringRuleInline(admin.TabularInline[MonitoringRule, Regimen]):
    model = MonitoringRule
    extra = 0


class RegimenDoseBandInline(admin.TabularInline[RegimenDoseBand, Regimen]):
    model = RegimenDoseBand
    extra = 0


@admin.register(Regimen)
class RegimenAdmin(NoDeleteAdmin):
    list_display = ["name", "drug", "dose_basis", "dose_amount", "cycle_days", "number_of_doses", "active"]
    inlines = [MonitoringRuleInline, RegimenDoseBandInline]


@admin.register(HoldRule)
class HoldRuleAdmin(NoDeleteAdmin):
    """Saving an edited rule makes a new version (hold_rule_revise); the old one stays, superseded."""

    list_display = ["description", "key", "version", "lab_test", "action", "threshold", "reference", "active"]
    list_filter = ["active", "action"]
    readonly_fields = ["key", "version", "active", "superseded_by", "created_at", "created_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: HoldRule | None = None) -> list[str]:
        if obj is not None and (not obj.active or obj.superseded_by_id):
            return [f.name for f in HoldRule._meta.fields] + ["drugs", "regimens"]
        return self.readonly_fields if obj is not None else ["version", "active", "superseded_by", "created_at",
                                                             "created_by"]  # fmt: skip

    def save_model(self, request: HttpRequest, obj: HoldRule, form: Any, change: bool) -> None:
        user = request.user if isinstance(request.user, User) else None
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in HOLD_RULE_FIELDS}
            form.instance = hold_rule_revise(
                rule=HoldRule.objects.get(pk=obj.pk), changes=changes, user=user, now=timezone.now()
            )
        else:
            obj.created_at, obj.created_by = timezone.now(), user
            obj.save()


@admin.register(TreatmentCourse, Dose, Preparation)
class ClinicalRecordAdmin(ReadOnlyAdmin):
    """Courses, doses and preparations change only through their services (and the audit trail)."""


# Lab pattern rules (orders.patterns); imported here so that this section stays a plain append.
from orders.models import LabPatternCondition, LabPatternMatch, LabPatternRule  # noqa: E402
from orders.patterns import LAB_PATTERN_RULE_FIELDS, lab_pattern_rule_revise  # noqa: E402


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
class LabPatternRuleAdmin(NoDeleteAdmin):
    """Saving an edited rule makes a new version (lab_pattern_rule_revise); the old one stays, superseded."""

    list_display = ["name", "key", "version", "severity", "audience", "source", "effective_from", "active"]
    list_filter = ["active", "audience"]
    inlines = [LabPatternConditionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: LabPatternRule | None = None) -> list[str]:
        meta = ["version", "active", "superseded_by", "created_at", "created_by"]
        if obj is not None and (not obj.active or obj.superseded_by_id):
            return [f.name for f in LabPatternRule._meta.fields] + ["drugs"]
        return ["key", *meta] if obj is not None else meta

    def save_model(self, request: HttpRequest, obj: LabPatternRule, form: Any, change: bool) -> None:
        user = request.user if isinstance(request.user, User) else None
        if change:
            changes = {n: form.cleaned_data[n] for n in form.changed_data if n in (*LAB_PATTERN_RULE_FIELDS, "drugs")}
            form.instance = lab_pattern_rule_revise(
                rule=LabPatternRule.objects.get(pk=obj.pk), changes=changes, user=user, now=timezone.now()
            )
        else:
            obj.created_at, obj.created_by = timezone.now(), user
            obj.save()


@admin.register(LabPatternMatch)
class LabPatternMatchAdmin(ReadOnlyAdmin):
    list_display = ["rule", "course", "matched_at"]
