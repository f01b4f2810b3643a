from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets

from patients.api.serializers import CareTeamSerializer, PatientSerializer
from patients.filtersets import PatientFilterSet
from patients.models import CareTeam, Patient
from patients.selectors import care_team_list, patient_list


class PatientViewSet(viewsets.ReadOnlyModelViewSet[Patient]):
    """Patients of the user's care teams (every patient for lab staff)."""

    queryset = Patient.objects.none()  # for the schema; requests use get_queryset
    serializer_class = PatientSerializer
    filterset_class = PatientFilterSet
    required_permissions = {"list": "patients.view_patient", "retrieve": "patients.view_patient"}

    def get_queryset(self) -> QuerySet[Patient]:
        return patient_list(user=self.request.user)


class CareTeamViewSet(viewsets.ReadOnlyModelViewSet[CareTeam]):
    queryset = CareTeam.objects.none()
    serializer_class = CareTeamSerializer
    filterset_fields = ["ward"]
    required_permissions = {"list": "patients.view_careteam", "retrieve": "patients.view_careteam"}

    def get_queryset(self) -> QuerySet[CareTeam]:
        return care_team_list(user=self.request.user).prefetch_related("memberships__user")
