from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from monitoring.choices import AWAITING_COLLECTION
from orders.models import Dose, Preparation, Regimen, TreatmentCourse
from orders.services import course_start
from results.models import Result
from results.services import ResultEntry, results_enter, results_verify
from specimens.services import specimens_collect
from tests.results.helpers import analyte

NORMAL = {
    "WBC": ("6.0", "10*3/uL"), "Neutrophils (ANC)": ("3.5", "10*3/uL"), "Platelets": ("250", "10*3/uL"),
    "Haemoglobin": ("13.5", "g/dL"), "ALT": ("30", "U/L"), "AST": ("25", "U/L"), "ALP": ("80", "U/L"),
    "Total bilirubin": ("0.6", "mg/dL"), "Creatinine": ("0.8", "mg/dL"), "Glucose": ("90", "mg/dL"),
    "Sodium": ("140", "mmol/L"), "Potassium": ("4.2", "mmol/L"), "TSH": ("1.5", "m[IU]/L"),
}  # fmt: skip


def start_course(patient, oncologist, regimen: str, *, in_hours: float = 20, **extra) -> TreatmentCourse:
    now = timezone.now()
    return course_start(
        patient=patient, regimen=Regimen.objects.get(name=regimen), starts_at=now + timedelta(hours=in_hours),
        user=oncologist, now=now, **extra,
    )  # fmt: skip


def first_dose(course: TreatmentCourse) -> Dose:
    return course.doses.get(number=1)


def live_preparation(dose: Dose) -> Preparation:
    return dose.preparations.exclude(status__in=["expired", "wasted"]).get()


def clear_pre_dose(
    dose: Dose, nurse, enterer, verifier, values: dict[str, tuple[str, str]] | None = None
) -> list[Result]:
    """Collect the dose's pre-dose tests now and verify a result for every analyte (normal unless given)."""
    patient = dose.course.patient
    tests = [link.monitoring_test for link in dose.monitoring_links.select_related("monitoring_test__lab_test")]
    due = [t for t in tests if t.status in AWAITING_COLLECTION]
    now = timezone.now()
    specimens = specimens_collect(patient=patient, wristband=patient.mrn, monitoring_tests=due, user=nurse, now=now)
    wanted = {**NORMAL, **(values or {})}
    entries = []
    for specimen in specimens:
        for test in specimen.monitoring_tests.prefetch_related("lab_test__components"):
            for component in test.lab_test.components.all() or [test.lab_test]:
                value, unit = wanted[component.name]
                entries.append(ResultEntry(specimen, analyte(component.name), value, unit))
    rows = results_enter(entries=entries, user=enterer, now=now)
    results_verify(results=rows, user=verifier, now=now)
    return rows
