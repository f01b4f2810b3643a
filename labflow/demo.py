"""Builders of realistic clinical data through the services, for demo data and tests."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils import timezone

from monitoring.choices import AWAITING_COLLECTION, LabTestKind
from monitoring.models import LabTest
from orders.models import Dose
from results.models import Result
from results.services import ResultEntry, results_enter, results_verify
from specimens.services import specimens_collect

NORMAL_RESULTS = {
    "WBC": ("6.0", "10*3/uL"), "Neutrophils (ANC)": ("3.5", "10*3/uL"), "Platelets": ("250", "10*3/uL"),
    "Haemoglobin": ("13.5", "g/dL"), "ALT": ("30", "U/L"), "AST": ("25", "U/L"), "ALP": ("80", "U/L"),
    "Total bilirubin": ("0.6", "mg/dL"), "Creatinine": ("0.8", "mg/dL"), "Glucose": ("90", "mg/dL"),
    "Sodium": ("140", "mmol/L"), "Potassium": ("4.2", "mmol/L"), "TSH": ("1.5", "m[IU]/L"),
    "CRP": ("3.0", "mg/L"), "Ferritin": ("120", "ng/mL"), "Calcium": ("9.4", "mg/dL"), "Albumin": ("4.2", "g/dL"),
    "Total protein": ("7.0", "g/dL"), "Bicarbonate (CO2)": ("25", "mmol/L"), "Chloride": ("102", "mmol/L"),
    "BUN": ("14", "mg/dL"), "Free T4": ("1.2", "ng/dL"), "HbA1c": ("5.2", "%"), "CK": ("100", "U/L"),
    "Troponin I (high-sensitivity)": ("4", "ng/L"), "Cortisol": ("14", "ug/dL"), "Uric acid": ("5.0", "mg/dL"),
    "Phosphate": ("3.5", "mg/dL"), "Magnesium": ("2.0", "mg/dL"), "PT": ("12.0", "s"), "INR": ("1.0", "{INR}"),
    "aPTT": ("30", "s"), "Fibrinogen": ("300", "mg/dL"), "LDH": ("200", "U/L"),
}  # fmt: skip


def collect_and_result_pre_dose(
    dose: Dose,
    *,
    collector: User,
    enterer: User,
    verifier: User | None,
    values: dict[str, tuple[str, str]] | None = None,
) -> list[Result]:
    """Collect a dose's due pre-dose tests now and enter a result for every analyte (normal unless given),
    verified by `verifier` (left preliminary without one).

    Draws on purpose every test due before the dose, also those due after the collection window (a dose 28 h
    ahead has its pre-dose labs due in 4 h): a pre-dose result counts in the window before the dose."""
    patient = dose.course.patient
    due = [
        link.monitoring_test
        for link in dose.monitoring_links.select_related("monitoring_test__lab_test")
        if link.monitoring_test.status in AWAITING_COLLECTION
        # a bedside assessment after a step-up dose is linked to the dose too, but is never drawn
        and link.monitoring_test.lab_test.kind != LabTestKind.BEDSIDE_ASSESSMENT
    ]
    now = timezone.now()
    specimens = specimens_collect(
        patient=patient, wristband=patient.mrn, monitoring_tests=due, user=collector, now=now, due_by=dose.planned_at
    )
    wanted = {**NORMAL_RESULTS, **(values or {})}
    analytes = {t.name: t for t in LabTest.objects.all()}
    entries = []
    for specimen in specimens:
        for test in specimen.monitoring_tests.prefetch_related("lab_test__components"):
            for component in test.lab_test.components.all() or [test.lab_test]:
                value, unit = wanted[component.name]
                entries.append(ResultEntry(specimen, analytes[component.name], value, unit))
    rows = results_enter(entries=entries, user=enterer, now=now)
    if verifier is not None:
        results_verify(results=rows, user=verifier, now=now)
    return rows
