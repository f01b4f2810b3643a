"""Filters of the orders API's lists (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from accounts.selectors import AnyUser
from core.filters import DateTimeRangeFilter, VisibleIdFilter
from orders.choices import DoseStatus
from orders.models import Dose, Preparation, Regimen, TreatmentCourse
from orders.selectors import course_list, dose_list
from patients.selectors import patient_list

VIEW = "orders.view_preparation"


def visible_regimens(*, user: AnyUser) -> QuerySet[Regimen]:
    """The regimen catalogue, every version (a course keeps the one it started on): the same for everyone."""
    return Regimen.objects.all()


class CourseFilterSet(django_filters.FilterSet):
    patient = VisibleIdFilter(visible=patient_list)
    regimen = VisibleIdFilter(visible=visible_regimens)

    class Meta:
        model = TreatmentCourse
        fields = ["patient", "regimen", "status"]


class DoseFilterSet(django_filters.FilterSet):
    course = VisibleIdFilter(visible=course_list)
    status = django_filters.MultipleChoiceFilter(choices=DoseStatus.choices)
    planned_at = DateTimeRangeFilter()

    class Meta:
        model = Dose
        fields = ["course", "status", "planned_at"]


class PreparationFilterSet(django_filters.FilterSet):
    dose = VisibleIdFilter(visible=dose_list)
    dose__course = VisibleIdFilter(field_name="dose__course", visible=course_list)

    class Meta:
        model = Preparation
        fields = ["dose", "status", "dose__course"]
