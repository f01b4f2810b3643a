"""Filters of the patients API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from patients.choices import Sex
from patients.models import Patient


class PatientFilterSet(django_filters.FilterSet):
    ward = django_filters.CharFilter(field_name="care_team__ward")
    sex = django_filters.ChoiceFilter(choices=Sex.choices)

    class Meta:
        model = Patient
        fields = ["care_team", "ward", "sex"]
