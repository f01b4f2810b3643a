"""Filters of the specimens API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from core.filters import DateTimeRangeFilter
from specimens.choices import SpecimenStatus
from specimens.models import Specimen


class SpecimenFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=SpecimenStatus.choices)
    collected_at = DateTimeRangeFilter()

    class Meta:
        model = Specimen
        fields = ["patient", "status", "container", "stability_exceeded", "collected_at"]
