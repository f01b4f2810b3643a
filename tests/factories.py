"""Small builders for test data; times are relative to now."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.http import HttpRequest
from django.test import RequestFactory
from django.utils import timezone

from accounts.choices import Role
from accounts.services import api_token_issue
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import monitoring_test_schedule
from patients.choices import CareTeamRole, Sex
from patients.models import CareTeam, CareTeamMembership, Patient

_seq = itertools.count(1)


def make_team(name: str | None = None, ward: str = "Ward 1") -> CareTeam:
    return CareTeam.objects.create(name=name or f"Team {next(_seq)}", ward=ward)


def make_user(role: Role | None = None, team: CareTeam | None = None, username: str | None = None) -> User:
    user = User.objects.create_user(username or f"user{next(_seq)}", password="a-long-test-password")
    if role is not None:
        user.groups.add(Group.objects.get(name=role.label))
    if team is not None and role in (Role.NURSE, Role.ONCOLOGIST):
        CareTeamMembership.objects.create(care_team=team, user=user, role=CareTeamRole(role.value))
    return user


def api_token(user: User) -> str:
    """A new API token for `user` (django-rest-knox), for `Authorization: Token <token>`; one per call."""
    _, token = api_token_issue(user=user)
    return token


def signing_request() -> HttpRequest:
    """The request a signature service needs (django-axes counts a wrong password per username and address)."""
    return RequestFactory().post("/")


def make_patient(team: CareTeam, **fields: Any) -> Patient:
    """A patient of `team`; `fields` override the made-up identity and measurements."""
    n = next(_seq)
    return Patient.objects.create(
        **{
            "mrn": f"T{n:07d}",
            "family_name": f"Family{n}",
            "given_name": "Given",
            "birth_date": date(1960, 5, 17),
            "sex": Sex.FEMALE,
            "weight_kg": Decimal("70.0"),
            "height_cm": Decimal("170.0"),
            "care_team": team,
            **fields,
        }
    )


def lab_test(name: str = "TSH") -> LabTest:
    return LabTest.objects.get(name=name)


def make_test(
    patient: Patient, *, due_at: datetime | None = None, grace: timedelta = timedelta(minutes=30), name: str = "TSH"
) -> MonitoringTest:
    return monitoring_test_schedule(
        patient=patient,
        lab_test=lab_test(name),
        due_at=due_at or timezone.now() + timedelta(hours=1),
        grace_period=grace,
        user=None,
        now=timezone.now(),
    )
