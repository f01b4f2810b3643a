from django.contrib import admin

from core.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from monitoring.models import LabTest, MonitoringTest, SweepHeartbeat


@admin.register(LabTest)
class LabTestAdmin(NoDeleteAdmin):
    """A test taken out of use is made inactive: its results and schedules keep pointing at it."""

    list_display = ["name", "loinc_code", "kind", "turnaround", "active"]
    list_filter = ["kind", "active"]
    filter_horizontal = ["components"]


@admin.register(MonitoringTest)
class MonitoringTestAdmin(ReadOnlyAdmin):
    list_display = ["id", "patient", "lab_test", "due_at", "deadline", "status"]
    list_filter = ["status", "lab_test"]


@admin.register(SweepHeartbeat)
class SweepHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "last_run_at", "last_flagged"]
