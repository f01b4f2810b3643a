"""Filters of the monitoring API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from core.filters import DateTimeRangeFilter
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest


class MonitoringTestFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=MonitoringTestStatus.choices)
    due_at = DateTimeRangeFilter()
    deadline = DateTimeRangeFilter()

    class Meta:
        model = MonitoringTest
        fields = ["patient", "lab_test", "status", "due_at", "deadline"]
