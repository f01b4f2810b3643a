"""A list filter on a related id never tells whether the id exists (docs/architecture.md §7): another team's id
and an id that does not exist get byte-for-byte the same answer (200, no rows); the user's own id filters."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db.models import Max, Model

from alerts.models import Alert
from monitoring.models import LabTest, MonitoringTest
from orders.models import Dose, Preparation, Regimen, TreatmentCourse
from patients.models import CareTeam, Patient
from results.models import CriticalCall, Result
from specimens.models import Container, Specimen
from tests.query_counts import Ward

pytestmark = pytest.mark.django_db

BIGINT_OVERFLOW = 2**70

# (list, filter, the related model, an id of that model with rows in the list for a team's patients)
Pick = Callable[[CareTeam], int]


def _first(model: type[Model], field: str, team: str = "patient__care_team") -> Pick:
    """Picks `field` of the first `model` row whose `team` path is the given care team."""
    return lambda care_team: model._default_manager.filter(**{team: care_team}).values_list(field, flat=True)[0]


CLINICAL: list[tuple[str, str, type[Model], Pick]] = [
    ("/api/patients/", "care_team", CareTeam, lambda team: team.pk),
    ("/api/monitoring-tests/", "patient", Patient, _first(MonitoringTest, "patient")),
    ("/api/alerts/", "patient", Patient, _first(Alert, "patient")),
    ("/api/specimens/", "patient", Patient, _first(Specimen, "patient")),
    ("/api/results/", "patient", Patient, _first(Result, "patient")),
    ("/api/results/", "specimen", Specimen, _first(Result, "specimen")),
    ("/api/critical-calls/", "alert", Alert, _first(CriticalCall, "alert", "alert__patient__care_team")),
]
PREPARATION_TEAM = "dose__course__patient__care_team"
ORDERS: list[tuple[str, str, type[Model], Pick]] = [
    ("/api/courses/", "patient", Patient, _first(TreatmentCourse, "patient")),
    ("/api/doses/", "course", TreatmentCourse, _first(TreatmentCourse, "pk")),
    ("/api/preparations/", "dose", Dose, _first(Preparation, "dose", PREPARATION_TEAM)),
    ("/api/preparations/", "dose__course", TreatmentCourse, _first(Preparation, "dose__course", PREPARATION_TEAM)),
]


def _missing_id(model: type[Model]) -> int:
    """An id that no row of the related model has."""
    return (model._default_manager.aggregate(top=Max("pk"))["top"] or 0) + 1000


def _compare(client, theirs: CareTeam, mine: CareTeam, cases: list[tuple[str, str, type[Model], Pick]]) -> None:
    for url, name, model, pick in cases:
        own = client.get(url, {name: pick(mine)})
        assert own.status_code == 200, (url, name, own.content)
        assert own.json()["count"] >= 1, (url, name, "the user's own id must filter to their rows")
        hidden = client.get(url, {name: pick(theirs)})
        for unknown_id in (_missing_id(model), BIGINT_OVERFLOW):
            unknown = client.get(url, {name: unknown_id})
            assert (hidden.status_code, hidden.content) == (unknown.status_code, unknown.content), (url, name)
        assert hidden.status_code == 200
        assert hidden.json()["count"] == 0
        malformed = client.get(url, {name: "abc"})
        assert malformed.status_code == 400
        assert malformed.json() == {name: ["Enter a whole number."]}


@pytest.fixture
def wards(team_a, team_b, nurse_a, nurse_b, technicians) -> tuple[Ward, Ward]:
    return Ward.build(team_a, nurse_a, technicians), Ward.build(team_b, nurse_b, technicians)


def test_clinical_list_filters_answer_alike_for_hidden_and_missing_ids(api_as, wards):
    mine, theirs = wards
    mine.clinical(1)
    theirs.clinical(1)
    _compare(api_as(mine.oncologist), theirs.team, mine.team, CLINICAL)


def test_orders_list_filters_answer_alike_for_hidden_and_missing_ids(api_as, wards):
    mine, theirs = wards
    mine.orders(1)
    theirs.orders(1)
    _compare(api_as(mine.oncologist), theirs.team, mine.team, ORDERS)


@pytest.mark.parametrize(
    ("url", "name", "model"),
    [
        ("/api/monitoring-tests/", "lab_test", LabTest),
        ("/api/results/", "lab_test", LabTest),
        ("/api/specimens/", "container", Container),
        ("/api/courses/", "regimen", Regimen),
    ],
)
def test_catalogue_filters_answer_an_unknown_id_with_an_empty_list(api_as, technician, url, name, model):
    response = api_as(technician).get(url, {name: _missing_id(model)})
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0
