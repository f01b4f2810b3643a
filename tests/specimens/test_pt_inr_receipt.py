"""PT/INR specimens are not accepted refrigerated (CLSI H21-A5, docs/clinical-sources.md: cold activates factor
VII): the catalogue holds a refrigerated stability of zero and receipt refuses such a specimen with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from specimens.choices import CustodyEventKind, SpecimenStatus
from specimens.models import CustodyEvent, Specimen
from specimens.models import TestSpecimenRequirement as Requirement
from tests import factories

pytestmark = pytest.mark.django_db


def _collect(api_as, nurse, patient, *names) -> dict:
    tests = [factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=5), name=n) for n in names]
    payload = {"patient": patient.pk, "wristband": patient.mrn, "monitoring_tests": [t.pk for t in tests]}
    response = api_as(nurse).post("/api/specimens/collect/", payload, format="json")
    assert response.status_code == 201, response.content
    (specimen,) = response.json()  # all in one light-blue citrate tube
    assert specimen["container"]["code"] == "BLUE_CIT"
    return specimen


def test_catalogue_keeps_pt_and_inr_at_room_temperature_only():
    for name in ("PT", "INR"):
        requirement = Requirement.objects.get(lab_test__name=name)
        assert requirement.stability_refrigerated == timedelta(0), name
        assert requirement.stability_room_temp == timedelta(hours=24), name


@pytest.mark.parametrize("names", [("PT", "INR"), ("INR",), ("PT", "aPTT")])
def test_refrigerated_pt_or_inr_is_refused_with_the_reason(api_as, nurse_a, technician, patient_a, names):
    specimen = _collect(api_as, nurse_a, patient_a, *names)
    lab = api_as(technician)
    response = lab.post("/api/specimens/receive/", {"accession": specimen["accession"], "condition": "COOL"})
    assert response.status_code == 400
    reason = response.json()["condition"][0]
    refused = sorted(n for n in names if n in ("PT", "INR"))
    assert reason.startswith(f"{', '.join(refused)}: not accepted refrigerated")
    assert "RR improper storage" in reason
    assert Specimen.objects.get(pk=specimen["id"]).status == SpecimenStatus.COLLECTED
    assert not CustodyEvent.objects.filter(kind=CustodyEventKind.RECEIVED).exists()

    # the same tube at room temperature is received
    response = lab.post("/api/specimens/receive/", {"accession": specimen["accession"], "condition": "ROOM"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == SpecimenStatus.RECEIVED
    assert response.json()["stability_exceeded"] is False


def test_other_citrate_tests_are_still_accepted_refrigerated(api_as, nurse_a, technician, patient_a):
    specimen = _collect(api_as, nurse_a, patient_a, "aPTT", "Fibrinogen")
    response = api_as(technician).post(
        "/api/specimens/receive/", {"accession": specimen["accession"], "condition": "COOL"}
    )
    assert response.status_code == 200, response.content


def test_receive_screen_shows_why_a_refrigerated_inr_is_refused(api_as, client, nurse_a, technician, patient_a):
    specimen = _collect(api_as, nurse_a, patient_a, "INR")
    client.force_login(technician)
    response = client.post(
        "/specimens/receive/", {"accession": specimen["accession"], "condition": "COOL"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "INR: not accepted refrigerated" in response.content.decode()
