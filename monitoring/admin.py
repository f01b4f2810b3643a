from django.contrib import admin

from monitoring.models import LabTest, MonitoringTest, SweepHeartbeat


@admin.register(LabTest)
class LabTestAdmin(admin.ModelAdmin[LabTest]):
    list_display = ["name", "loinc_code", "active"]


@admin.register(MonitoringTest)
class MonitoringTestAdmin(admin.ModelAdmin[MonitoringTest]):
    """Read-only: monitoring tests change only through their services."""

    list_display = ["id", "patient", "lab_test", "due_at", "deadline", "status"]
    list_filter = ["status", "lab_test"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(SweepHeartbeat)
class SweepHeartbeatAdmin(admin.ModelAdmin[SweepHeartbeat]):
    list_display = ["name", "last_run_at", "last_flagged"]
