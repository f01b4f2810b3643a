"""Filters of the orders API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from core.filters import DateTimeRangeFilter
from orders.choices import DoseStatus
from orders.models import Dose

VIEW = "orders.view_preparation"


class DoseFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DoseStatus.choices)
    planned_at = DateTimeRangeFilter()

    class Meta:
        model = Dose
        fields = ["course", "status", "planned_at"]
