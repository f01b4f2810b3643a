from __future__ import annotations

from rest_framework import viewsets

from core.api import ScopedViewSetMixin, action_permissions
from patients.api.serializers import CareTeamSerializer, PatientSerializer
from patients.filtersets import PatientFilterSet
from patients.models import CareTeam, Patient
from patients.selectors import care_teams_with_members, patient_list


class PatientViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet[Patient]):
    """Patients of the user's care teams (every patient for lab staff)."""

    selector = patient_list
    serializer_class = PatientSerializer
    filterset_class = PatientFilterSet
    required_permissions = action_permissions("patients.view_patient")


class CareTeamViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet[CareTeam]):
    selector = care_teams_with_members
    serializer_class = CareTeamSerializer
    filterset_fields = ["ward"]
    required_permissions = action_permissions("patients.view_careteam")
