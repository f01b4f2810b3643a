from django.contrib import admin

from alerts.models import Alert, AlertRoute, EscalationRung, TeamAlertPolicy
from core.admin_base import NoDeleteAdmin, ReadOnlyAdmin


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "severity",
        "status",
        "audience",
        "patient",
        "raised_at",
        "occurrences",
        "escalated_at",
    ]
    list_filter = ["kind", "status", "severity", "audience"]


@admin.register(AlertRoute)
class AlertRouteAdmin(NoDeleteAdmin):
    """Who each kind of alert is for; every change is kept in the route's history."""

    list_display = ["kind", "audience", "then_audience", "then_after"]


@admin.register(EscalationRung)
class EscalationRungAdmin(admin.ModelAdmin[EscalationRung]):
    """The ladders: rows without a team are the default for teams without their own."""

    list_display = ["care_team", "position", "role", "after"]
    list_filter = ["care_team"]


@admin.register(TeamAlertPolicy)
class TeamAlertPolicyAdmin(admin.ModelAdmin[TeamAlertPolicy]):
    list_display = ["care_team", "quiet_hours_start", "quiet_hours_end"]
