from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from monitoring.models import LabTest
from specimens.models import Specimen
from specimens.services import specimens_collect
from tests import factories


def collected_specimen(patient, nurse, *names: str) -> Specimen:
    tests = [factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=5), name=n) for n in names]
    (specimen,) = specimens_collect(
        patient=patient, wristband=patient.mrn, monitoring_tests=tests, user=nurse, now=timezone.now()
    )
    return specimen


def analyte(name: str) -> LabTest:
    return LabTest.objects.get(name=name)
