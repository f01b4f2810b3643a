"""Filters of the monitoring API's lists (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from accounts.selectors import AnyUser
from core.filters import DateTimeRangeFilter, VisibleIdFilter
from monitoring.choices import MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest
from monitoring.selectors import lab_test_list
from patients.selectors import patient_list


def visible_lab_tests(*, user: AnyUser) -> QuerySet[LabTest]:
    """The test catalogue: the same for everyone."""
    return lab_test_list()


class MonitoringTestFilterSet(django_filters.FilterSet):
    patient = VisibleIdFilter(visible=patient_list)
    lab_test = VisibleIdFilter(visible=visible_lab_tests)
    status = django_filters.MultipleChoiceFilter(choices=MonitoringTestStatus.choices)
    due_at = DateTimeRangeFilter()
    deadline = DateTimeRangeFilter()

    class Meta:
        model = MonitoringTest
        fields = ["patient", "lab_test", "status", "due_at", "deadline"]
