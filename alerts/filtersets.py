"""Filters of the alerts API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from alerts.choices import AlertAudience, AlertKind, AlertStatus
from alerts.models import Alert
from core.filters import DateTimeRangeFilter, VisibleIdFilter
from patients.selectors import patient_list


class AlertFilterSet(django_filters.FilterSet):
    patient = VisibleIdFilter(visible=patient_list)
    status = django_filters.MultipleChoiceFilter(choices=AlertStatus.choices)
    kind = django_filters.MultipleChoiceFilter(choices=AlertKind.choices)
    severity_min = django_filters.NumberFilter(field_name="severity", lookup_expr="gte")
    escalated = django_filters.BooleanFilter(field_name="escalated_at", lookup_expr="isnull", exclude=True)
    worsened = django_filters.BooleanFilter(field_name="worsened_at", lookup_expr="isnull", exclude=True)
    audience = django_filters.MultipleChoiceFilter(choices=AlertAudience.choices)
    raised_at = DateTimeRangeFilter()

    class Meta:
        model = Alert
        fields = [
            "patient", "status", "kind", "severity", "severity_min", "escalated", "worsened", "audience", "raised_at"
        ]  # fmt: skip
