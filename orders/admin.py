from django.contrib import admin

from labflow.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from orders.models import Dose, Drug, HoldRule, MonitoringRule, Preparation, Regimen, TreatmentCourse


@admin.register(Drug)
class DrugAdmin(NoDeleteAdmin):
    list_display = ["name", "target", "strength_mg_per_ml", "concentration_min", "concentration_max", "hazardous"]


class MonitoringRuleInline(admin.TabularInline[MonitoringRule, Regimen]):
    model = MonitoringRule
    extra = 0


@admin.register(Regimen)
class RegimenAdmin(NoDeleteAdmin):
    list_display = ["name", "drug", "dose_basis", "dose_amount", "cycle_days", "number_of_doses", "active"]
    inlines = [MonitoringRuleInline]


@admin.register(HoldRule)
class HoldRuleAdmin(NoDeleteAdmin):
    list_display = ["description", "key", "version", "lab_test", "action", "comparator", "threshold", "reference", "active"]


@admin.register(TreatmentCourse, Dose, Preparation)
class ClinicalRecordAdmin(ReadOnlyAdmin):
    """Courses, doses and preparations change only through their services (and the audit trail)."""
