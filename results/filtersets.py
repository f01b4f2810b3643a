"""Filters of the results API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from core.filters import DateTimeRangeFilter
from results.choices import ResultFlag, ResultStatus
from results.models import Result


class ResultFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ResultStatus.choices)
    flag = django_filters.MultipleChoiceFilter(choices=ResultFlag.choices)
    ctcae_grade_min = django_filters.NumberFilter(field_name="ctcae_grade", lookup_expr="gte")
    reviewed = django_filters.BooleanFilter(field_name="reviewed_at", lookup_expr="isnull", exclude=True)
    observed_at = DateTimeRangeFilter()

    class Meta:
        model = Result
        fields = ["patient", "specimen", "lab_test", "status", "flag", "is_current", "delta_flag", "observed_at"]
