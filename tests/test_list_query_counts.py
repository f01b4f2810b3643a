"""API lists answer in a constant number of queries, however many rows they page through (no N+1)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.utils import timezone

from accounts.choices import Role
from assessments.services import assessment_amend, assessment_record
from monitoring.models import LabTest
from orders.models import Drug, HoldRule, Regimen
from patients.choices import CareTeamRole
from patients.models import CareTeamMembership
from specimens.models import Container
from specimens.models import TestSpecimenRequirement as SpecimenRequirement
from tests import factories
from tests.query_counts import Ward, assert_flat, copy_regimens

pytestmark = pytest.mark.django_db

_copies = itertools.count(1)


@pytest.fixture
def ward(team_a, nurse_a, technicians) -> Ward:
    return Ward.build(team_a, nurse_a, technicians)


def _listed(response) -> int:
    body = response.json()
    return body["count"] if isinstance(body, dict) else len(body)


def _flat_api(client, url: str, grow: Callable[[int], object], rows: Callable[..., int] = _listed) -> None:
    sep = "&" if "?" in url else "?"
    assert_flat(lambda: client.get(f"{url}{sep}limit=500"), grow, rows)


# Patient data, grown a whole patient at a time (alert, escalation, specimen, critical result, call).
CLINICAL = [
    "/api/patients/",
    "/api/monitoring-tests/",
    "/api/alerts/",
    "/api/specimens/",
    "/api/results/",
    "/api/results/review-inbox/",
    "/api/critical-calls/",
]


@pytest.mark.parametrize("url", CLINICAL)
def test_clinical_api_list_query_count_does_not_grow_with_rows(api_as, ward, url):
    _flat_api(api_as(ward.oncologist), url, ward.clinical)


def test_collection_list_api_query_count_does_not_grow_with_patients(api_as, ward):
    _flat_api(api_as(ward.nurse), f"/api/collection-list/?ward={ward.team.ward}", ward.clinical)


def test_verification_queue_of_results_does_not_grow_with_rows(api_as, ward):
    _flat_api(api_as(ward.technicians[1]), "/api/results/to-verify/", ward.unverified)


# Orders, grown three courses at a time (released, awaiting verification, overridden).
ORDERS = ["/api/courses/", "/api/doses/", "/api/preparations/"]


@pytest.mark.parametrize("url", ORDERS)
def test_orders_api_list_query_count_does_not_grow_with_rows(api_as, ward, url):
    _flat_api(api_as(ward.oncologist), url, ward.orders)


def test_preparation_verification_queue_does_not_grow_with_rows(api_as, ward):
    _flat_api(api_as(ward.technicians[1]), "/api/preparations/verification-queue/", ward.orders)


def _burden_rows(response) -> int:
    body = response.json()
    return body["alerts_to_nurses"] + body["alerts_to_oncologists"] + body["escalations"]


def test_alert_burden_api_does_not_grow_with_alerts(api_as, ward):
    _flat_api(api_as(ward.charge_nurse), f"/api/alerts/burden/?team={ward.team.pk}", ward.clinical, _burden_rows)


# Catalogues and care teams, grown by copies of seeded rows with their relations.


def _teams(count: int) -> None:
    for _ in range(count):
        team = factories.make_team(ward=f"Ward {next(_copies)}")
        for role in (Role.NURSE, Role.ONCOLOGIST):
            factories.make_user(role, team)
        CareTeamMembership.objects.create(care_team=team, user=factories.make_user(), role=CareTeamRole.ATTENDING)


def _lab_tests(count: int) -> None:
    container = Container.objects.order_by("draw_order").first()
    assert container is not None
    for _ in range(count):
        n = next(_copies)
        test = LabTest.objects.create(name=f"Copy test {n}", loinc_code=f"{90000 + n}-0")
        test.components.set(LabTest.objects.filter(name__in=["Sodium", "Potassium"]))
        SpecimenRequirement.objects.create(
            lab_test=test, container=container, min_volume_ml=1, stability_room_temp=timedelta(hours=4),
            stability_refrigerated=timedelta(hours=24),
        )  # fmt: skip


def _containers(count: int) -> None:
    for _ in range(count):
        n = next(_copies)
        Container.objects.create(code=f"C{n}", name=f"Tube {n}", cap_colour="grey", specimen_type="SER", draw_order=n)


def _drugs(count: int) -> None:
    for _ in range(count):
        drug = Drug.objects.get(name="Pembrolizumab")
        drug.pk, drug.name = None, f"Pembrolizumab copy {next(_copies)}"
        drug.save()


def _hold_rules(count: int) -> None:
    drugs, regimens = list(Drug.objects.all()[:2]), list(Regimen.objects.all()[:2])
    for _ in range(count):
        rule = HoldRule.objects.filter(active=True, superseded_by__isnull=True).order_by("pk").first()
        assert rule is not None
        rule.pk, rule.key = None, f"copy-{next(_copies)}"
        rule.save()
        rule.drugs.set(drugs)
        rule.regimens.set(regimens)


CATALOGUES: list[tuple[str, Callable[[int], None]]] = [
    ("/api/care-teams/", _teams),
    ("/api/lab-tests/", _lab_tests),
    ("/api/containers/", _containers),
    ("/api/specimen-requirements/", _lab_tests),
    ("/api/drugs/", _drugs),
    ("/api/regimens/", partial(copy_regimens, "Pembrolizumab 200 mg q3w")),
    ("/api/hold-rules/", _hold_rules),
    ("/api/hold-rules/?all_versions=true", _hold_rules),
]


@pytest.mark.parametrize(("url", "grow"), CATALOGUES, ids=[url for url, _ in CATALOGUES])
def test_catalogue_api_list_query_count_does_not_grow_with_rows(api_as, url, grow):
    _flat_api(api_as(factories.make_user(Role.LAB_TECHNICIAN, None, "tech.counts")), url, grow)


def _assessments(ward: Ward, count: int) -> None:
    """Bedside assessments of new patients of the ward, each amended once (the original stays listed)."""
    now = timezone.now()
    for _ in range(count):
        patient = factories.make_patient(ward.team)
        original = assessment_record(
            patient=patient, assessed_at=now, user=ward.nurse, now=now, temperature_c=Decimal("38.5")
        )
        assessment_amend(assessment=original, reason="BP taken", user=ward.nurse, now=now, systolic_bp_mmhg=85,
                         temperature_c=Decimal("38.5"))  # fmt: skip


def test_assessment_list_api_query_count_does_not_grow_with_rows(api_as, ward):
    _flat_api(api_as(ward.oncologist), "/api/assessments/", partial(_assessments, ward))
