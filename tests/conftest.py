from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.choices import Role
from tests import factories

pytest_plugins = ["tests.stack"]


@pytest.fixture
def reference_db(transactional_db):
    """A transactional test's database: flushing removed the roles and the test catalogue, so reload them."""
    for module, function in (
        ("monitoring.migrations.0003_seed_lab_tests", "seed"),
        ("monitoring.migrations.0005_seed_turnaround", "seed"),
        ("monitoring.migrations.0006_seed_panels", "seed"),
        ("specimens.migrations.0002_accession_sequence_and_catalogue", "seed"),
        ("accounts.migrations.0001_roles", "create_roles"),
        ("monitoring.migrations.0008_seed_panel_components", "seed"),
        ("monitoring.migrations.0009_seed_cmp_and_cell_therapy_tests", "seed"),
        ("monitoring.migrations.0013_seed_igg", "seed"),
        ("monitoring.migrations.0015_seed_crs_icans_assessment", "seed"),
        ("results.migrations.0002_seed_catalogue", "seed"),
        ("results.migrations.0005_seed_new_tests", "seed"),
        ("specimens.migrations.0003_pt_inr_not_refrigerated", "seed"),
        ("results.migrations.0007_qualitative_specs", "seed"),
        ("accounts.migrations.0002_specimen_permissions", "grant"),
        ("accounts.migrations.0003_result_permissions", "grant"),
        ("orders.migrations.0002_seed_catalogue", "seed"),
        ("orders.migrations.0004_label_rules", "seed"),
        ("orders.migrations.0005_monitoring_plans", "seed"),
        ("orders.migrations.0006_lab_pattern_rules", "seed"),
        ("orders.migrations.0013_seed_products", "seed"),
        ("orders.migrations.0016_seed_step_up_and_plans", "seed"),
        ("orders.migrations.0018_seed_lifileucel_aldesleukin", "seed"),
        ("orders.migrations.0020_seed_blinatumomab", "seed"),
        ("orders.migrations.0021_after_step_up_assessments", "seed"),
        ("orders.migrations.0023_seed_aldesleukin_follows_lifileucel", "seed"),
        ("accounts.migrations.0004_order_permissions", "grant"),
        ("assessments.migrations.0002_role_permissions", "grant"),
        ("alerts.migrations.0010_alert_rules", "seed_routes_and_ladder"),
        ("alerts.migrations.0012_assessment_overdue_kind", "seed_routes"),
    ):
        getattr(importlib.import_module(module), function)(django_apps, None)


@pytest.fixture
def team_a(db):
    return factories.make_team("Team A", "Ward 4A")


@pytest.fixture
def team_b(db):
    return factories.make_team("Team B", "Ward 7B")


def _member(role: Role, team: str, username: str) -> Any:
    """A fixture: a user of `role` named `username` in the care team that the fixture `team` makes."""

    def member(request: pytest.FixtureRequest) -> User:
        return factories.make_user(role, request.getfixturevalue(team), username)

    member.__doc__ = f"{role.label} {username!r} in the care team of the fixture {team}."  # for pytest --fixtures
    return pytest.fixture(member)


nurse_a = _member(Role.NURSE, "team_a", "nurse.a")
nurse_b = _member(Role.NURSE, "team_b", "nurse.b")
oncologist_a = _member(Role.ONCOLOGIST, "team_a", "onc.a")


@pytest.fixture
def technician(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "tech")


@pytest.fixture
def technicians(db):
    """Two lab technicians: one does, the other verifies."""
    return (
        factories.make_user(Role.LAB_TECHNICIAN, None, "tech.one"),
        factories.make_user(Role.LAB_TECHNICIAN, None, "tech.two"),
    )


@pytest.fixture
def patient_a(team_a):
    return factories.make_patient(team_a)


@pytest.fixture
def patient_b(team_b):
    return factories.make_patient(team_b)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def api_as(db):
    """A fresh API client logged in as `user` (clients for two users can be used side by side)."""

    def login(user):
        client = APIClient()
        client.force_login(user)
        return client

    return login
