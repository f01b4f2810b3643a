from django.contrib import admin

from core.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from results.models import CriticalCall, OutboundMessage, ReferenceRange, Result, ResultSpec


@admin.register(ResultSpec)
class ResultSpecAdmin(NoDeleteAdmin):
    list_display = ["lab_test", "unit", "value_type", "ctcae_term_low", "ctcae_term_high", "delta_percent"]


@admin.register(ReferenceRange)
class ReferenceRangeAdmin(NoDeleteAdmin):
    list_display = ["lab_test", "sex", "age_min_years", "age_max_years", "low", "high", "critical_low", "critical_high"]
    list_filter = ["lab_test"]


@admin.register(Result, CriticalCall, OutboundMessage)
class ResultRecordAdmin(ReadOnlyAdmin):
    """Results, call logs and outbound messages change only through their services."""
