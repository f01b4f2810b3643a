from django.contrib import admin

from assessments.models import Assessment
from core.admin_base import ReadOnlyAdmin


@admin.register(Assessment)
class AssessmentAdmin(ReadOnlyAdmin):
    """Assessments are recorded and amended only through their service (grades are computed there)."""

    list_display = ["id", "patient", "assessed_at", "crs_grade", "icans_grade", "is_current", "recorded_by"]
    list_filter = ["is_current"]
    list_select_related = ["patient", "recorded_by"]
