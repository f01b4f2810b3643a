"""Filters of the patients API's lists (django-filter)."""

from __future__ import annotations

import django_filters

from core.filters import VisibleIdFilter
from patients.choices import Sex
from patients.models import Patient
from patients.selectors import care_team_list


class PatientFilterSet(django_filters.FilterSet):
    care_team = VisibleIdFilter(visible=care_team_list)
    ward = django_filters.CharFilter(field_name="care_team__ward")
    sex = django_filters.ChoiceFilter(choices=Sex.choices)

    class Meta:
        model = Patient
        fields = ["care_team", "ward", "sex"]
