from django.contrib import admin

from alerts.models import Alert
from labflow.admin_base import ReadOnlyAdmin


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "severity", "status", "patient", "raised_at", "escalated_at"]
    list_filter = ["kind", "status", "severity"]
