"""Each FHIR search page costs the same number of queries however many rows it shows (docs/architecture.md §6):
the resources are built from rows loaded in one batch, never a query per entry."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from orders.models import Preparation
from tests import factories
from tests.fhir.test_fhir_api import verified
from tests.orders.helpers import first_dose, live_preparation, start_course
from tests.query_counts import assert_same_cost, measure

pytestmark = pytest.mark.django_db


def _entries(response) -> int:
    return len(json.loads(response.content).get("entry", []))


@pytest.mark.parametrize("kind", ["Patient", "Observation", "DiagnosticReport", "Specimen", "ServiceRequest", "Flag"])
def test_a_search_page_costs_the_same_with_more_rows(api_as, kind, team_a, nurse_a, oncologist_a, technicians):
    client = api_as(nurse_a)

    def grow(count: int) -> None:
        for _ in range(count):
            patient = factories.make_patient(team_a)
            verified(patient, nurse_a, technicians, {"Potassium": ("6.9", "mmol/L"), "Sodium": ("139", "mmol/L")})
            if not kind.startswith("Medication"):  # a course schedules many monitoring tests: past one page
                continue
            prep = live_preparation(first_dose(start_course(patient, oncologist_a, "Pembrolizumab 200 mg q3w")))
            Preparation.objects.filter(pk=prep.pk).update(administration_started_at=timezone.now())

    grow(1)
    client.get(f"/fhir/{kind}")  # the session's first request writes it: not part of the page's cost
    few = measure(lambda: client.get(f"/fhir/{kind}"))
    grow(3)
    many = measure(lambda: client.get(f"/fhir/{kind}"))
    assert_same_cost(few, many, _entries)
