from django.contrib import admin

from core.admin_base import ReadOnlyAdmin
from monitoring.models import LabTest, MonitoringTest, SweepHeartbeat


@admin.register(LabTest)
class LabTestAdmin(admin.ModelAdmin[LabTest]):
    list_display = ["name", "loinc_code", "turnaround", "active"]
    filter_horizontal = ["components"]


@admin.register(MonitoringTest)
class MonitoringTestAdmin(ReadOnlyAdmin):
    list_display = ["id", "patient", "lab_test", "due_at", "deadline", "status"]
    list_filter = ["status", "lab_test"]


@admin.register(SweepHeartbeat)
class SweepHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "last_run_at", "last_flagged"]
