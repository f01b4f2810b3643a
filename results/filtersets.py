"""Filters of the results API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from alerts.selectors import alert_list
from core.filters import DateTimeRangeFilter, VisibleIdFilter
from monitoring.filtersets import visible_lab_tests
from patients.selectors import patient_list
from results.choices import ResultFlag, ResultStatus
from results.models import CriticalCall, Result
from specimens.selectors import specimen_list


class ResultFilterSet(django_filters.FilterSet):
    patient = VisibleIdFilter(visible=patient_list)
    specimen = VisibleIdFilter(visible=specimen_list)
    lab_test = VisibleIdFilter(visible=visible_lab_tests)
    status = django_filters.MultipleChoiceFilter(choices=ResultStatus.choices)
    flag = django_filters.MultipleChoiceFilter(choices=ResultFlag.choices)
    ctcae_grade_min = django_filters.NumberFilter(field_name="ctcae_grade", lookup_expr="gte")
    reviewed = django_filters.BooleanFilter(field_name="reviewed_at", lookup_expr="isnull", exclude=True)
    observed_at = DateTimeRangeFilter()

    class Meta:
        model = Result
        fields = ["patient", "specimen", "lab_test", "status", "flag", "is_current", "delta_flag", "observed_at"]


class CriticalCallFilterSet(django_filters.FilterSet):
    alert = VisibleIdFilter(visible=alert_list)

    class Meta:
        model = CriticalCall
        fields = ["alert"]
