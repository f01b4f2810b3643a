from __future__ import annotations

from typing import TypeVar

from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, QuerySet

from accounts.selectors import AnyUser, user_sees_all_patients
from patients.models import CareTeam, Patient

M = TypeVar("M", bound=Model)


def _care_team_scoped(rows: QuerySet[M], user: AnyUser, member: str) -> QuerySet[M]:
    """Every row for lab staff, none for an anonymous user, else those whose `member` lookup (through a care team's
    memberships) is the user."""
    if user_sees_all_patients(user):
        return rows
    if isinstance(user, AnonymousUser):
        return rows.none()
    return rows.filter(**{member: user})


def patient_list(*, user: AnyUser) -> QuerySet[Patient]:
    """Patients the user may see: every patient for lab staff, else their care teams'."""
    return _care_team_scoped(Patient.objects.select_related("care_team"), user, "care_team__memberships__user")


def care_team_list(*, user: AnyUser) -> QuerySet[CareTeam]:
    return _care_team_scoped(CareTeam.objects.all(), user, "memberships__user")


def care_teams_with_members(*, user: AnyUser) -> QuerySet[CareTeam]:
    return care_team_list(user=user).prefetch_related("memberships__user")


def visible_patient_filter(*, user: AnyUser, prefix: str = "patient__") -> dict[str, object]:
    """Filter kwargs scoping any patient-linked model to what the user may see."""
    if user_sees_all_patients(user):
        return {}
    if isinstance(user, AnonymousUser):
        return {f"{prefix}pk__in": []}
    return {f"{prefix}care_team__memberships__user": user}
