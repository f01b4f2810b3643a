from __future__ import annotations

import re
from datetime import date, datetime
from typing import TypeVar

from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, Q, QuerySet

from accounts.selectors import AnyUser, user_sees_all_patients
from patients.models import CareTeam, Patient, PatientAlias

M = TypeVar("M", bound=Model)

# What a search names: an MRN, a birth date (YYYY-MM-DD or DD.MM.YYYY), or the start of family and given names.
MRN = re.compile(r"^[A-Za-z0-9-]{4,20}$")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")


def birth_date_in(text: str) -> date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date, not an instant
        except ValueError:
            continue
    return None


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


def patient_search(*, user: AnyUser, query: str) -> QuerySet[Patient]:
    """The user's patients a search names: a birth date, else an MRN (exactly) or names that start with each word
    (family or given, in any order; "kow ann" finds Anna Kowalski). Ordered by name."""
    words = query.replace(",", " ").split()
    born = birth_date_in(query.strip())
    if born is not None:
        match = Q(birth_date=born)
    else:
        match = Q()
        for word in words:
            match &= Q(family_name__istartswith=word) | Q(given_name__istartswith=word)
        if len(words) == 1 and MRN.match(words[0]):
            match |= Q(mrn__iexact=words[0])
    return patient_list(user=user).filter(match).order_by("family_name", "given_name", "birth_date", "pk")


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


def patient_by_mrn(mrn: str) -> Patient | None:
    """The patient an MRN names now: its record, or for a merged record's MRN (alias) the survivor."""
    patient = Patient.objects.filter(mrn=mrn).first()
    if patient is not None and patient.merged_into_id is None:
        return patient
    alias = PatientAlias.objects.select_related("patient").filter(mrn=mrn).first()
    return alias.patient if alias is not None else patient


def patient_record_ids(patient: Patient) -> list[int]:
    """The survivor's record and every record merged into it (A40): their clinical rows are the patient's."""
    return [patient.pk, *Patient.objects.filter(merged_into=patient).values_list("pk", flat=True)]
