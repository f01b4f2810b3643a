"""API lists answer in a constant number of queries, however many rows they page through (no N+1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from monitoring.services import monitoring_tests_flag_overdue
from results.services import ResultEntry, results_enter, results_verify
from tests import factories
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db

LISTS = ["/api/patients/", "/api/monitoring-tests/", "/api/alerts/", "/api/specimens/", "/api/results/"]


def _ward(team, nurse, technicians, patients: int) -> None:
    """Patients each with an overdue test (an alert), a collected specimen and a verified critical result."""
    for _ in range(patients):
        patient = factories.make_patient(team)
        factories.make_test(patient, due_at=timezone.now() - timedelta(hours=2), grace=timedelta(0))
        specimen = collected_specimen(patient, nurse, "Potassium")
        entry = ResultEntry(specimen, analyte("Potassium"), "6.9", "mmol/L")
        rows = results_enter(entries=[entry], user=technicians[0], now=timezone.now())
        results_verify(results=rows, user=technicians[1], now=timezone.now())
    monitoring_tests_flag_overdue()


@pytest.mark.parametrize("url", LISTS)
def test_api_list_query_count_does_not_grow_with_rows(api_as, team_a, nurse_a, technicians, url):
    viewer = factories.make_user(Role.ONCOLOGIST, team_a, "onc.counts")
    api = api_as(viewer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(url)
        assert response.status_code == 200, response.content
        assert response.json()["count"] > 0
        return len(captured)

    _ward(team_a, nurse_a, technicians, 1)
    queries()  # warm-up: content types, permissions
    one = queries()
    _ward(team_a, nurse_a, technicians, 4)
    assert queries() == one
