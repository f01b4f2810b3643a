"""Filters of the specimens API's lists (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from accounts.selectors import AnyUser
from core.filters import DateTimeRangeFilter, VisibleIdFilter
from patients.selectors import patient_list
from specimens.choices import SpecimenStatus
from specimens.models import Container, Specimen


def visible_containers(*, user: AnyUser) -> QuerySet[Container]:
    """The tube catalogue: the same for everyone."""
    return Container.objects.all()


class SpecimenFilterSet(django_filters.FilterSet):
    patient = VisibleIdFilter(visible=patient_list)
    container = VisibleIdFilter(visible=visible_containers)
    status = django_filters.MultipleChoiceFilter(choices=SpecimenStatus.choices)
    collected_at = DateTimeRangeFilter()

    class Meta:
        model = Specimen
        fields = ["patient", "status", "container", "stability_exceeded", "collected_at"]
