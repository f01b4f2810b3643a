"""LabFlow rows as FHIR R4 resources, each built and validated by `fhir.resources` (R4B, wire-compatible with R4)
(docs/interfaces.md, FHIR R4 API). Builders read only the rows they are given; the selectors load them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen as FhirSpecimen

from alerts.choices import AlertKind, AlertStatus
from alerts.models import Alert
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from orders.choices import DoseStatus
from orders.models import Dose, Preparation
from patients.choices import Sex
from patients.models import Patient
from results.choices import ResultFlag, ResultStatus
from results.models import Result
from specimens.choices import SpecimenStatus
from specimens.models import Specimen

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0487 = "http://terminology.hl7.org/CodeSystem/v2-0487"
# LabFlow's own identifiers and codes (no standard code exists for a CTCAE grade as an Observation component).
LABFLOW = "https://labflow.example.org/fhir"
MRN_SYSTEM = f"{LABFLOW}/sid/mrn"
ACCESSION_SYSTEM = f"{LABFLOW}/sid/accession"
LABFLOW_CODES = f"{LABFLOW}/CodeSystem/labflow"
ALERT_KINDS = f"{LABFLOW}/CodeSystem/alert-kind"
ALERT_SEVERITY = f"{LABFLOW}/StructureDefinition/alert-severity"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
# Alerts about drugs and bedside findings; every other kind is about the lab's tests and results.
FLAG_CATEGORIES = {
    AlertKind.PREPARATION_EXPIRED: ("drug", "Drug"),
    AlertKind.DOSE_DISCONTINUE: ("drug", "Drug"),
    AlertKind.CRS: ("clinical", "Clinical"),
    AlertKind.ICANS: ("clinical", "Clinical"),
    AlertKind.ASSESSMENT_OVERDUE: ("clinical", "Clinical"),
}
# LOINC 11502-2 "Laboratory report": a report of several ordered tests drawn on one specimen.
LAB_REPORT = {"system": LOINC, "code": "11502-2", "display": "Laboratory report"}

GENDER = {Sex.FEMALE: "female", Sex.MALE: "male", Sex.OTHER: "other", Sex.UNKNOWN: "unknown"}
OBSERVATION_STATUS = {ResultStatus.FINAL: "final", ResultStatus.AMENDED: "amended"}
# HL7 v2 table 0078 flags and the v3 ObservationInterpretation codes (the same codes in R4).
INTERPRETATIONS = {
    ResultFlag.NORMAL: "Normal",
    ResultFlag.LOW: "Low",
    ResultFlag.HIGH: "High",
    ResultFlag.CRITICAL_LOW: "Critical low",
    ResultFlag.CRITICAL_HIGH: "Critical high",
    ResultFlag.ABNORMAL: "Abnormal",
}
# The lab's coding systems for coded answers (OBX-5 CWE.3) and their FHIR URIs.
ANSWER_SYSTEMS = {
    "SCT": "http://snomed.info/sct",
    "LN": LOINC,
    "HL70136": "http://terminology.hl7.org/CodeSystem/v2-0136",
}
SPECIMEN_STATUS = {
    SpecimenStatus.REJECTED: "unsatisfactory",
    SpecimenStatus.DISPOSED: "unavailable",
}


# A monitoring test's status as ServiceRequest.status: open until satisfied (completed) or cancelled (revoked).
SERVICE_REQUEST_STATUS = {
    MonitoringTestStatus.SATISFIED: "completed",
    MonitoringTestStatus.CANCELLED: "revoked",
}


def instant(value: datetime) -> str:
    return value.isoformat()


def reference(kind: str, pk: int) -> dict[str, str]:
    return {"reference": f"{kind}/{pk}"}


def patient_resource(patient: Patient) -> FhirPatient:
    return FhirPatient.model_validate(
        {
            "id": str(patient.pk),
            "identifier": [
                {
                    "use": "usual",
                    "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}]},
                    "system": MRN_SYSTEM,
                    "value": patient.mrn,
                }
            ],
            "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
            "gender": GENDER.get(Sex(patient.sex), "unknown"),
            "birthDate": patient.birth_date.isoformat(),
        }
    )


def _quantity(value: Decimal | None, unit: str) -> dict[str, Any] | None:
    if value is None:
        return None
    quantity: dict[str, Any] = {"value": value}
    if unit:  # LabFlow stores results in the catalogue's UCUM unit (results.ResultSpec.unit)
        quantity.update(unit=unit, system=UCUM, code=unit)
    return quantity


def _value(result: Result) -> dict[str, Any]:
    if result.value_code:
        coding: dict[str, str] = {"code": result.value_code}
        if system := ANSWER_SYSTEMS.get(result.value_code_system):
            coding["system"] = system
        if result.value_text:
            coding["display"] = result.value_text
        return {"valueCodeableConcept": {"coding": [coding], "text": result.value_text or result.value_code}}
    if result.value_numeric is not None:
        numeric = result.value_numeric.quantize(Decimal(1).scaleb(-result.decimal_places))
        quantity = _quantity(numeric, result.unit) or {}
        if result.value_comparator:
            quantity["comparator"] = result.value_comparator
        return {"valueQuantity": quantity}
    if result.value_text:
        return {"valueString": result.value_text}
    return {"dataAbsentReason": {"text": "No value"}}


def observation_resource(result: Result) -> Observation:
    """A verified current result. The CTCAE grade is a `component` coded in LabFlow's code system."""
    test = result.lab_test
    data: dict[str, Any] = {
        "id": str(result.pk),
        "status": OBSERVATION_STATUS[ResultStatus(result.status)],
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": test.loinc_code, "display": test.name}], "text": test.name},
        "subject": reference("Patient", result.patient_id),
        "effectiveDateTime": instant(result.observed_at),
        "specimen": reference("Specimen", result.specimen_id),
        **_value(result),
    }
    if result.verified_at is not None:
        data["issued"] = instant(result.verified_at)
    if result.flag in INTERPRETATIONS:
        code = ResultFlag(result.flag)
        data["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": code.value, "display": INTERPRETATIONS[code]}]}
        ]
    if result.reference_low is not None or result.reference_high is not None:
        ref: dict[str, Any] = {"type": {"text": "Normal range"}}
        if (low := _quantity(result.reference_low, result.unit)) is not None:
            ref["low"] = low
        if (high := _quantity(result.reference_high, result.unit)) is not None:
            ref["high"] = high
        data["referenceRange"] = [ref]
    elif result.lab_reference_range:
        data["referenceRange"] = [{"text": result.lab_reference_range}]
    if result.ctcae_grade is not None:
        data["component"] = [ctcae_component(result)]
    if result.amendment_reason:
        data["note"] = [{"text": f"Amended: {result.amendment_reason}"}]
    return Observation.model_validate(data)


def ctcae_component(result: Result) -> dict[str, Any]:
    version = f"CTCAE v{result.ctcae_version}" if result.ctcae_version else "CTCAE"
    text = f"{version} grade" + (f": {result.ctcae_term}" if result.ctcae_term else "")
    if result.ctcae_assumed:
        text += " (worst case assumed)"
    return {
        "code": {"coding": [{"system": LABFLOW_CODES, "code": "ctcae-grade", "display": "CTCAE grade"}], "text": text},
        "valueInteger": result.ctcae_grade,
    }


def report_code(specimen: Specimen) -> dict[str, Any]:
    """The ordered test's LOINC code when the specimen was drawn for one test; else 'Laboratory report'."""
    tests = {mt.lab_test for mt in specimen.monitoring_tests.all()}
    if len(tests) == 1:
        (test,) = tests
        return {"coding": [{"system": LOINC, "code": test.loinc_code, "display": test.name}], "text": test.name}
    names = ", ".join(sorted(t.name for t in tests))
    return {"coding": [LAB_REPORT], "text": names or LAB_REPORT["display"]}


def diagnostic_report_resource(specimen: Specimen, results: Iterable[Result]) -> DiagnosticReport:
    """A specimen's verified current results as one report; amended when any of them is."""
    shown = sorted(results, key=lambda r: (r.lab_test.name, r.pk))
    amended = any(r.status == ResultStatus.AMENDED for r in shown)
    issued = max((r.verified_at for r in shown if r.verified_at is not None), default=None)
    data: dict[str, Any] = {
        "id": str(specimen.pk),
        "status": "amended" if amended else "final",
        "category": [{"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}],
        "code": report_code(specimen),
        "subject": reference("Patient", specimen.patient_id),
        "effectiveDateTime": instant(specimen.collected_at),
        "specimen": [reference("Specimen", specimen.pk)],
        "result": [reference("Observation", r.pk) for r in shown],
    }
    if issued is not None:
        data["issued"] = instant(issued)
    return DiagnosticReport.model_validate(data)


def specimen_status(status: str) -> str:
    return SPECIMEN_STATUS.get(SpecimenStatus(status), "available")


def specimen_resource(specimen: Specimen) -> FhirSpecimen:
    kind = str(specimen.get_specimen_type_display())
    data: dict[str, Any] = {
        "id": str(specimen.pk),
        "accessionIdentifier": {"system": ACCESSION_SYSTEM, "value": specimen.accession},
        "status": specimen_status(specimen.status),
        "type": {"coding": [{"system": V2_0487, "code": specimen.specimen_type, "display": kind}], "text": kind},
        "subject": reference("Patient", specimen.patient_id),
        "collection": {"collectedDateTime": instant(specimen.collected_at)},
        "request": [reference("ServiceRequest", mt.pk) for mt in specimen.monitoring_tests.all()],
    }
    if specimen.received_at is not None:
        data["receivedTime"] = instant(specimen.received_at)
    if specimen.condition:
        data["condition"] = [{"text": specimen.get_condition_display()}]
    if specimen.rejection_reason:
        data["note"] = [{"text": f"Rejected: {specimen.get_rejection_reason_display()}"}]
    return FhirSpecimen.model_validate(data)


def service_request_status(status: str) -> str:
    return SERVICE_REQUEST_STATUS.get(MonitoringTestStatus(status), "active")


def service_request_resource(test: MonitoringTest) -> ServiceRequest:
    """A monitoring test: the lab test due for the patient at `due_at` (a bedside assessment has no LOINC code)."""
    lab_test = test.lab_test
    code: dict[str, Any] = {"text": lab_test.name}
    if lab_test.loinc_code:
        code["coding"] = [{"system": LOINC, "code": lab_test.loinc_code, "display": lab_test.name}]
    data: dict[str, Any] = {
        "id": str(test.pk),
        "status": service_request_status(test.status),
        "intent": "order",
        "code": code,
        "subject": reference("Patient", test.patient_id),
        "occurrenceDateTime": instant(test.due_at),
        "authoredOn": instant(test.created_at),
        "specimen": [reference("Specimen", s.pk) for s in test.specimens.all()],
    }
    if test.recollection_of_id is not None:
        data["replaces"] = [reference("ServiceRequest", test.recollection_of_id)]
    if test.cancel_reason:
        data["note"] = [{"text": f"Cancelled: {test.cancel_reason}"}]
    return ServiceRequest.model_validate(data)


def flag_resource(alert: Alert) -> Flag:
    """An alert: active until resolved. Its severity is LabFlow's extension (R4 Flag has no priority element)."""
    kind = AlertKind(alert.kind)
    category, category_display = FLAG_CATEGORIES.get(kind, ("lab", "Lab"))
    period = {"start": instant(alert.raised_at)}
    if alert.resolved_at is not None:
        period["end"] = instant(alert.resolved_at)
    return Flag.model_validate(
        {
            "id": str(alert.pk),
            "extension": [{"url": ALERT_SEVERITY, "valueCode": alert.get_severity_display().lower()}],
            "status": "inactive" if alert.status == AlertStatus.RESOLVED else "active",
            "category": [{"coding": [{"system": FLAG_CATEGORY, "code": category, "display": category_display}]}],
            "code": {
                "coding": [{"system": ALERT_KINDS, "code": kind.value, "display": kind.label}],
                "text": alert.summary,
            },
            "subject": reference("Patient", alert.patient_id),
            "period": period,
        }
    )


MEDICATION_REQUEST_STATUS = {
    DoseStatus.PLANNED: "active",
    DoseStatus.GIVEN: "completed",
    DoseStatus.CANCELLED: "cancelled",
}


def medication_request_resource(dose: Dose) -> MedicationRequest:
    """A planned dose of a treatment course: the drug (by name: the catalogue holds no RxNorm or ATC codes) and
    when it is planned. The amount is calculated at preparation, so it is on the MedicationAdministration."""
    course = dose.course
    regimen = course.regimen
    data: dict[str, Any] = {
        "id": str(dose.pk),
        "status": MEDICATION_REQUEST_STATUS[DoseStatus(dose.status)],
        "intent": "order",
        "medicationCodeableConcept": {"text": regimen.drug.name},
        "subject": reference("Patient", course.patient_id),
        "authoredOn": instant(course.created_at),
        "groupIdentifier": {"system": f"{LABFLOW}/sid/course", "value": str(course.pk)},
        "dosageInstruction": [
            {
                "sequence": dose.number,
                "text": f"Dose {dose.number} of {regimen.name}",
                "timing": {"event": [instant(dose.planned_at)]},
            }
        ],
    }
    if dose.cancel_reason:
        data["statusReason"] = {"text": dose.cancel_reason}
    return MedicationRequest.model_validate(data)


def _given(preparation: Preparation) -> dict[str, Any] | None:
    """What the bag held, in UCUM: mg for drugs, cells for cell products, mL for an oncolytic virus."""
    if preparation.dose_mg is not None:
        return {"value": preparation.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
    if preparation.coa_cells is not None:
        return {"value": preparation.coa_cells, "unit": "cells", "system": UCUM, "code": "{cells}"}
    if preparation.volume_ml_planned is not None:
        return {"value": preparation.volume_ml_planned, "unit": "mL", "system": UCUM, "code": "mL"}
    return None


def medication_administration_resource(preparation: Preparation) -> MedicationAdministration:
    """A preparation given at the bedside: in progress from the infusion's start until its end is recorded."""
    dose = preparation.dose
    course = dose.course
    started = preparation.administration_started_at
    assert started is not None  # the selector serves only started administrations
    period = {"start": instant(started)}
    if preparation.administration_ended_at is not None:
        period["end"] = instant(preparation.administration_ended_at)
    dosage: dict[str, Any] = {"text": f"Dose {dose.number} of {course.regimen.name}"}
    if (quantity := _given(preparation)) is not None:
        dosage["dose"] = quantity
    return MedicationAdministration.model_validate(
        {
            "id": str(preparation.pk),
            "status": "completed" if preparation.administration_ended_at is not None else "in-progress",
            "medicationCodeableConcept": {"text": course.regimen.drug.name},
            "subject": reference("Patient", course.patient_id),
            "effectivePeriod": period,
            "request": reference("MedicationRequest", dose.pk),
            "dosage": dosage,
        }
    )


def as_json(resource: Resource) -> dict[str, Any]:
    return resource.model_dump(mode="json", exclude_none=True)
