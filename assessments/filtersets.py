"""Filters of the assessments API's list (django-filter)."""

from __future__ import annotations

import django_filters

from assessments.models import Assessment
from core.filters import DateTimeRangeFilter, VisibleIdFilter
from patients.selectors import patient_list


class AssessmentFilterSet(django_filters.FilterSet):
    patient = VisibleIdFilter(visible=patient_list)
    assessed_at = DateTimeRangeFilter()
    crs_grade_min = django_filters.NumberFilter(field_name="crs_grade", lookup_expr="gte")
    icans_grade_min = django_filters.NumberFilter(field_name="icans_grade", lookup_expr="gte")

    class Meta:
        model = Assessment
        fields = ["patient", "is_current", "assessed_at"]
