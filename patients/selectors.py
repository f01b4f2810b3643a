from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from accounts.selectors import AnyUser, user_sees_all_patients
from patients.models import CareTeam, Patient


def patient_list(*, user: AnyUser) -> QuerySet[Patient]:
    """Patients the user may see: every patient for lab staff, else their care teams'."""
    patients = Patient.objects.select_related("care_team")
    if user_sees_all_patients(user):
        return patients
    if isinstance(user, AnonymousUser):
        return patients.none()
    return patients.filter(care_team__memberships__user=user)


def care_team_list(*, user: AnyUser) -> QuerySet[CareTeam]:
    teams = CareTeam.objects.all()
    if user_sees_all_patients(user):
        return teams
    if isinstance(user, AnonymousUser):
        return teams.none()
    return teams.filter(memberships__user=user)


def care_teams_with_members(*, user: AnyUser) -> QuerySet[CareTeam]:
    return care_team_list(user=user).prefetch_related("memberships__user")


def visible_patient_filter(*, user: AnyUser, prefix: str = "patient__") -> dict[str, object]:
    """Filter kwargs scoping any patient-linked model to what the user may see."""
    if user_sees_all_patients(user):
        return {}
    if isinstance(user, AnonymousUser):
        return {f"{prefix}pk__in": []}
    return {f"{prefix}care_team__memberships__user": user}
