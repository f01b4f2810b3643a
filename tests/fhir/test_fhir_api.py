"""FHIR R4 read and search API under /fhir/ (docs/interfaces.md, FHIR R4 API): every resource the API emits is
parsed by fhir.resources (R4B models) and so validated; scoping, paging, bad parameters, authentication."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from alerts.models import Alert
from alerts.services import alert_resolve
from core.api import bad_request
from core.middleware import unavailable
from monitoring.services import monitoring_tests_flag_overdue
from orders.choices import DoseStatus, PreparationStatus
from orders.models import Dose, Preparation
from results.services import ResultEntry, result_amend, results_enter, results_verify
from tests import factories
from tests.orders.helpers import first_dose, live_preparation, start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).parent / "examples"
FHIR_JSON = "application/fhir+json"


def validated(response) -> Any:
    """The response's body parsed by the fhir.resources model of its resourceType (raises if invalid)."""
    assert response["Content-Type"].startswith(FHIR_JSON)
    body = json.loads(response.content)
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


def verified(patient, nurse, technicians, values: dict[str, tuple[str, str]], observed_at=None):
    specimen = collected_specimen(patient, nurse, *values)
    now = timezone.now()
    entries = [ResultEntry(specimen, analyte(n), v, u, observed_at) for n, (v, u) in values.items()]
    rows = results_enter(entries=entries, user=technicians[0], now=now)
    return specimen, results_verify(results=rows, user=technicians[1], now=now).verified


@pytest.fixture
def labs_a(patient_a, nurse_a, technicians):
    """Team A's patient: potassium critically high and sodium normal on one specimen, verified."""
    specimen, results = verified(
        patient_a, nurse_a, technicians, {"Potassium": ("6.9", "mmol/L"), "Sodium": ("139", "mmol/L")}
    )
    return specimen, {r.lab_test.name: r for r in results}


@pytest.fixture
def labs_b(patient_b, nurse_b, technicians):
    specimen, results = verified(patient_b, nurse_b, technicians, {"Potassium": ("4.1", "mmol/L")})
    return specimen, results[0]


# --- the official R4 examples load through the same validation -------------------------------------------------
# tests/fhir/examples/*.json are Patient-example.json and Observation-example.json, unchanged, from HL7's package
# hl7.fhir.r4.examples 4.0.1 (the FHIR R4 specification's examples; `npm pack hl7.fhir.r4.examples@4.0.1`).


@pytest.mark.parametrize(("name", "model"), [("patient-example", FhirPatient), ("observation-example", Observation)])
def test_the_official_r4_examples_load_through_the_same_validation(name, model):
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    resource = model.model_validate(data)
    assert resource.id == "example"
    assert get_fhir_model_class(data["resourceType"]) is model


def test_validation_rejects_an_invalid_observation():
    with pytest.raises(ValidationError, match="status"):
        Observation.model_validate({"resourceType": "Observation", "code": {"text": "x"}})  # no status
    with pytest.raises(ValidationError, match="value"):
        Observation.model_validate({"status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "many"}})


# --- metadata ----------------------------------------------------------------------------------------------------


def test_metadata_is_an_r4_capability_statement_naming_each_resource_and_parameter(api_as, nurse_a):
    statement = validated(api_as(nurse_a).get("/fhir/metadata"))
    assert statement.get_resource_type() == "CapabilityStatement"
    assert statement.fhirVersion == "4.0.1"
    resources = {r.type: {p.name for p in r.searchParam} for r in statement.rest[0].resource}
    assert set(resources) == {
        "Patient",
        "Observation",
        "DiagnosticReport",
        "Specimen",
        "ServiceRequest",
        "Flag",
        "MedicationRequest",
        "MedicationAdministration",
    }
    assert {"_id", "patient", "code", "date", "status", "_count"} <= resources["Observation"]


# --- Patient -----------------------------------------------------------------------------------------------------


def test_patient_read_gives_identity_and_mrn(api_as, nurse_a, patient_a):
    patient = validated(api_as(nurse_a).get(f"/fhir/Patient/{patient_a.pk}"))
    assert patient.id == str(patient_a.pk)
    assert patient.identifier[0].value == patient_a.mrn
    assert patient.identifier[0].type.coding[0].code == "MR"
    assert patient.name[0].family == patient_a.family_name
    assert patient.gender == "female"
    assert str(patient.birthDate) == "1960-05-17"


def test_patient_search_is_a_searchset_bundle_of_the_users_patients(api_as, nurse_a, patient_a, patient_b):
    response = api_as(nurse_a).get("/fhir/Patient")
    bundle = validated(response)
    assert bundle.get_resource_type() == "Bundle"
    assert bundle.type == "searchset"
    assert bundle.total == 1
    assert [e.resource.id for e in bundle.entry] == [str(patient_a.pk)]
    assert bundle.entry[0].fullUrl.endswith(f"/fhir/Patient/{patient_a.pk}")
    assert response["Cache-Control"] == "no-store"


def test_patient_search_by_id(api_as, technician, patient_a, patient_b):
    bundle = validated(api_as(technician).get(f"/fhir/Patient?_id={patient_b.pk}"))
    assert [e.resource.id for e in bundle.entry] == [str(patient_b.pk)]
    bundle = validated(api_as(technician).get(f"/fhir/Patient?_id={patient_a.pk},{patient_b.pk}"))
    assert bundle.total == 2


# --- Observation -------------------------------------------------------------------------------------------------


def test_observation_read_gives_value_ucum_unit_range_interpretation_and_status(api_as, nurse_a, labs_a):
    _, results = labs_a
    potassium = results["Potassium"]
    observation = validated(api_as(nurse_a).get(f"/fhir/Observation/{potassium.pk}"))
    assert observation.status == "final"
    assert observation.code.coding[0].system == "http://loinc.org"
    assert observation.code.coding[0].code == potassium.lab_test.loinc_code
    assert observation.subject.reference == f"Patient/{potassium.patient_id}"
    assert observation.specimen.reference == f"Specimen/{potassium.specimen_id}"
    assert float(observation.valueQuantity.value) == 6.9
    assert observation.valueQuantity.system == "http://unitsofmeasure.org"
    assert observation.valueQuantity.code == "mmol/L"
    (interpretation,) = observation.interpretation
    assert interpretation.coding[0].system == "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    assert interpretation.coding[0].code == "HH"
    (reference_range,) = observation.referenceRange
    assert float(reference_range.low.value) == float(potassium.reference_low)
    assert float(reference_range.high.value) == float(potassium.reference_high)
    assert reference_range.high.code == "mmol/L"


def test_observation_carries_the_ctcae_grade_as_a_component(api_as, nurse_a, technicians, patient_a):
    _, (potassium,) = verified(patient_a, nurse_a, technicians, {"Potassium": ("6.9", "mmol/L")})
    assert potassium.ctcae_grade is not None  # hyperkalemia is graded
    observation = validated(api_as(nurse_a).get(f"/fhir/Observation/{potassium.pk}"))
    (component,) = observation.component
    assert component.code.coding[0].code == "ctcae-grade"
    assert component.valueInteger == potassium.ctcae_grade
    assert potassium.ctcae_term in component.code.text


def test_a_coded_answer_is_a_codeable_concept_in_snomed_ct(api_as, nurse_a, technicians, patient_a):
    _, (hbsag,) = verified(patient_a, nurse_a, technicians, {"Hepatitis B surface antigen": ("Reactive", "")})
    assert hbsag.value_code == "11214006"
    observation = validated(api_as(nurse_a).get(f"/fhir/Observation/{hbsag.pk}"))
    (coding,) = observation.valueCodeableConcept.coding
    assert (coding.system, coding.code, coding.display) == ("http://snomed.info/sct", "11214006", "Reactive")
    assert observation.valueQuantity is None
    assert observation.interpretation[0].coding[0].code == "A"


def test_an_amended_result_is_an_amended_observation_and_its_original_is_gone(api_as, nurse_a, technicians, labs_a):
    _, results = labs_a
    sodium = results["Sodium"]
    now = timezone.now()
    amendment = result_amend(result=sodium, value="141", unit="mmol/L", reason="Transcription", user=technicians[0],
                             now=now)  # fmt: skip
    results_verify(results=[amendment], user=technicians[1], now=now)
    client = api_as(nurse_a)
    observation = validated(client.get(f"/fhir/Observation/{amendment.pk}"))
    assert observation.status == "amended"
    assert float(observation.valueQuantity.value) == 141
    assert client.get(f"/fhir/Observation/{sodium.pk}").status_code == 404
    bundle = validated(client.get("/fhir/Observation?status=amended"))
    assert [e.resource.id for e in bundle.entry] == [str(amendment.pk)]


def test_an_unverified_result_is_not_an_observation(api_as, nurse_a, technicians, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "ALT")
    (alt,) = results_enter(entries=[ResultEntry(specimen, analyte("ALT"), "320", "U/L")], user=technicians[0],
                           now=timezone.now())  # fmt: skip
    client = api_as(nurse_a)
    assert client.get(f"/fhir/Observation/{alt.pk}").status_code == 404
    assert validated(client.get("/fhir/Observation")).total == 0


def test_observation_search_by_patient_code_and_date(api_as, technician, nurse_a, technicians, patient_a, labs_a,
                                                    labs_b):  # fmt: skip
    _, results = labs_a
    potassium = results["Potassium"]
    client = api_as(technician)
    loinc = potassium.lab_test.loinc_code

    def ids(query: str) -> set[str]:
        return {e.resource.id for e in validated(client.get(f"/fhir/Observation?{query}")).entry or []}

    assert ids(f"patient={patient_a.pk}") == {str(r.pk) for r in results.values()}
    assert ids(f"patient=Patient/{patient_a.pk}&code=http://loinc.org|{loinc}") == {str(potassium.pk)}
    assert ids(f"patient={patient_a.pk}&code={loinc}") == {str(potassium.pk)}
    assert ids(f"code=http://snomed.info/sct|{loinc}") == set()
    assert ids(f"code={loinc}") == {str(potassium.pk), str(labs_b[1].pk)}
    observed = potassium.observed_at
    day = timezone.localtime(observed).date()
    assert str(potassium.pk) in ids(f"date={day.isoformat()}")
    assert ids(f"date=lt{day.isoformat()}") == set()
    assert str(potassium.pk) in ids(f"date=ge{(day - timedelta(days=1)).isoformat()}&date=le{day.isoformat()}")
    assert ids(f"date=gt{day.isoformat()}") == set()
    after = (observed + timedelta(minutes=5)).isoformat().replace("+", "%2B")
    assert ids(f"patient={patient_a.pk}&date=lt{after}") == {str(r.pk) for r in results.values()}
    assert ids(f"patient={patient_a.pk}&date=gt{after}") == set()
    assert ids("status=final") >= {str(potassium.pk)}


# --- DiagnosticReport --------------------------------------------------------------------------------------------


def test_diagnostic_report_is_the_specimens_verified_panel(api_as, nurse_a, labs_a):
    specimen, results = labs_a
    client = api_as(nurse_a)
    report = validated(client.get(f"/fhir/DiagnosticReport/{specimen.pk}"))
    assert report.status == "final"
    assert report.subject.reference == f"Patient/{specimen.patient_id}"
    assert report.specimen[0].reference == f"Specimen/{specimen.pk}"
    assert {r.reference for r in report.result} == {f"Observation/{r.pk}" for r in results.values()}
    assert report.category[0].coding[0].code == "LAB"
    # every result it references reads as an Observation
    for ref in report.result:
        assert isinstance(validated(client.get(f"/fhir/{ref.reference}")), Observation)
    bundle = validated(client.get(f"/fhir/DiagnosticReport?patient={specimen.patient_id}&status=final"))
    assert [e.resource.id for e in bundle.entry] == [str(specimen.pk)]
    assert validated(client.get("/fhir/DiagnosticReport?status=amended")).total == 0


def test_a_specimen_without_verified_results_is_no_report(api_as, nurse_a, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "ALT")
    client = api_as(nurse_a)
    assert client.get(f"/fhir/DiagnosticReport/{specimen.pk}").status_code == 404
    assert validated(client.get("/fhir/DiagnosticReport")).total == 0


def test_diagnostic_report_search_by_ordered_code(api_as, nurse_a, labs_a):
    specimen, results = labs_a
    loinc = results["Potassium"].lab_test.loinc_code
    bundle = validated(api_as(nurse_a).get(f"/fhir/DiagnosticReport?code={loinc}"))
    assert [e.resource.id for e in bundle.entry] == [str(specimen.pk)]
    assert validated(api_as(nurse_a).get("/fhir/DiagnosticReport?code=0000-0")).total == 0


# --- Specimen ----------------------------------------------------------------------------------------------------


def test_specimen_read_and_search(api_as, nurse_a, nurse_b, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "ALT")
    client = api_as(nurse_a)
    resource = validated(client.get(f"/fhir/Specimen/{specimen.pk}"))
    assert resource.accessionIdentifier.value == specimen.accession
    assert resource.status == "available"
    assert resource.type.coding[0].code == specimen.specimen_type
    assert resource.subject.reference == f"Patient/{patient_a.pk}"
    day = timezone.localtime(specimen.collected_at).date().isoformat()
    bundle = validated(client.get(f"/fhir/Specimen?patient={patient_a.pk}&collected={day}&status=available"))
    assert [e.resource.id for e in bundle.entry] == [str(specimen.pk)]
    assert validated(client.get("/fhir/Specimen?status=unsatisfactory")).total == 0
    other = api_as(nurse_b)
    assert other.get(f"/fhir/Specimen/{specimen.pk}").status_code == 404
    assert validated(other.get("/fhir/Specimen")).total == 0


# --- ServiceRequest ----------------------------------------------------------------------------------------------


def test_service_request_is_a_monitoring_test(api_as, nurse_a, nurse_b, patient_a):
    due = timezone.now() + timedelta(hours=6)
    test = factories.make_test(patient_a, due_at=due, name="ALT")
    drawn = collected_specimen(patient_a, nurse_a, "CRP")
    (collected,) = drawn.monitoring_tests.all()
    client = api_as(nurse_a)
    request = validated(client.get(f"/fhir/ServiceRequest/{test.pk}"))
    assert request.status == "active"
    assert request.intent == "order"
    assert request.code.coding[0].code == test.lab_test.loinc_code
    assert request.subject.reference == f"Patient/{patient_a.pk}"
    assert request.occurrenceDateTime == due
    specimen = validated(client.get(f"/fhir/Specimen/{drawn.pk}"))
    assert [r.reference for r in specimen.request] == [f"ServiceRequest/{collected.pk}"]
    assert [r.reference for r in validated(client.get(f"/fhir/ServiceRequest/{collected.pk}")).specimen] == [
        f"Specimen/{drawn.pk}"
    ]
    loinc = test.lab_test.loinc_code
    bundle = validated(client.get(f"/fhir/ServiceRequest?patient={patient_a.pk}&code={loinc}&status=active"))
    assert [e.resource.id for e in bundle.entry] == [str(test.pk)]
    assert validated(client.get(f"/fhir/ServiceRequest?date=gt{timezone.localtime(due).date().isoformat()}")).total == 0
    assert validated(client.get("/fhir/ServiceRequest?status=completed")).total == 0
    assert api_as(nurse_b).get(f"/fhir/ServiceRequest/{test.pk}").status_code == 404
    assert validated(api_as(nurse_b).get("/fhir/ServiceRequest")).total == 0


# --- Flag --------------------------------------------------------------------------------------------------------


def test_flag_is_an_alert_active_until_resolved(api_as, nurse_a, nurse_b, patient_a):
    factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    alert = Alert.objects.get(pk=alert_id)
    client = api_as(nurse_a)
    flag = validated(client.get(f"/fhir/Flag/{alert_id}"))
    assert flag.status == "active"
    assert flag.subject.reference == f"Patient/{patient_a.pk}"
    assert flag.code.coding[0].code == "collection_overdue"
    assert flag.code.text == alert.summary
    assert flag.category[0].coding[0].code == "lab"
    assert flag.extension[0].valueCode == alert.get_severity_display().lower()
    assert flag.period.end is None
    bundle = validated(client.get(f"/fhir/Flag?patient={patient_a.pk}&status=active"))
    assert [e.resource.id for e in bundle.entry] == [str(alert_id)]
    assert api_as(nurse_b).get(f"/fhir/Flag/{alert_id}").status_code == 404
    assert validated(api_as(nurse_b).get("/fhir/Flag")).total == 0

    alert_resolve(alert=alert, user=nurse_a, now=timezone.now(), comment="Drawn")
    flag = validated(client.get(f"/fhir/Flag/{alert_id}"))
    assert flag.status == "inactive"
    assert flag.period.end is not None
    assert validated(client.get("/fhir/Flag?status=active")).total == 0
    assert validated(client.get("/fhir/Flag?status=inactive")).total == 1


# --- MedicationRequest and MedicationAdministration -------------------------------------------------------------

PEMBRO = "Pembrolizumab 200 mg q3w"


def test_a_dose_is_a_medication_request_and_its_infusion_an_administration(
    api_as, oncologist_a, nurse_a, nurse_b, patient_a
):
    dose = first_dose(start_course(patient_a, oncologist_a, PEMBRO))
    client = api_as(nurse_a)
    request = validated(client.get(f"/fhir/MedicationRequest/{dose.pk}"))
    assert request.status == "active"
    assert request.intent == "order"
    assert request.subject.reference == f"Patient/{patient_a.pk}"
    assert "embrolizumab" in request.medicationCodeableConcept.text
    assert request.dosageInstruction[0].sequence == 1
    assert request.dosageInstruction[0].timing.event == [dose.planned_at]
    assert str(dose.pk) in {e.resource.id for e in validated(client.get("/fhir/MedicationRequest?status=active")).entry}
    prep = live_preparation(dose)
    assert client.get(f"/fhir/MedicationAdministration/{prep.pk}").status_code == 404  # not given yet

    # the bedside steps are tested in tests/orders; here the infusion is recorded as started, then ended
    started = timezone.now()
    Preparation.objects.filter(pk=prep.pk).update(
        status=PreparationStatus.ADMINISTERED, administration_started_at=started, administered_by=nurse_a
    )
    given = validated(client.get(f"/fhir/MedicationAdministration/{prep.pk}"))
    assert given.status == "in-progress"
    assert given.request.reference == f"MedicationRequest/{dose.pk}"
    assert given.effectivePeriod.start == started
    prep.refresh_from_db()
    assert prep.dose_mg is not None  # calculated when the dose was ordered
    assert given.dosage.dose.code == "mg"
    assert given.dosage.dose.system == "http://unitsofmeasure.org"
    assert float(given.dosage.dose.value) == float(prep.dose_mg)
    Preparation.objects.filter(pk=prep.pk).update(administration_ended_at=started + timedelta(minutes=30))
    Dose.objects.filter(pk=dose.pk).update(status=DoseStatus.GIVEN)
    assert validated(client.get(f"/fhir/MedicationAdministration/{prep.pk}")).status == "completed"
    assert validated(client.get(f"/fhir/MedicationRequest/{dose.pk}")).status == "completed"
    bundle = validated(client.get(f"/fhir/MedicationAdministration?patient={patient_a.pk}&status=completed"))
    assert [e.resource.id for e in bundle.entry] == [str(prep.pk)]
    assert validated(client.get("/fhir/MedicationAdministration?status=in-progress")).total == 0
    other = api_as(nurse_b)
    assert other.get(f"/fhir/MedicationRequest/{dose.pk}").status_code == 404
    assert other.get(f"/fhir/MedicationAdministration/{prep.pk}").status_code == 404
    assert validated(other.get("/fhir/MedicationRequest")).total == 0


# --- scoping -----------------------------------------------------------------------------------------------------


def test_another_teams_patient_and_observation_are_404_and_absent_from_search(api_as, nurse_b, patient_a, labs_a,
                                                                             labs_b):  # fmt: skip
    specimen, results = labs_a
    client = api_as(nurse_b)
    for path in (
        f"/fhir/Patient/{patient_a.pk}",
        f"/fhir/Observation/{results['Potassium'].pk}",
        f"/fhir/DiagnosticReport/{specimen.pk}",
    ):
        response = client.get(path)
        assert response.status_code == 404
        outcome = validated(response)
        assert outcome.issue[0].code == "not-found"
        assert patient_a.mrn not in response.content.decode()
    # another team's patient is answered exactly like one that does not exist (only the id differs)
    unknown = client.get("/fhir/Patient/999999999")
    hidden = client.get(f"/fhir/Patient/{patient_a.pk}")
    assert unknown.status_code == 404
    assert unknown.content.decode().replace("999999999", str(patient_a.pk)) == hidden.content.decode()
    assert [e.resource.id for e in validated(client.get("/fhir/Patient")).entry] == [str(labs_b[0].patient_id)]
    observations = validated(client.get("/fhir/Observation")).entry
    assert [e.resource.id for e in observations] == [str(labs_b[1].pk)]
    assert validated(client.get(f"/fhir/Observation?patient={patient_a.pk}")).total == 0
    assert validated(client.get(f"/fhir/Patient?_id={patient_a.pk}")).total == 0


# --- paging ------------------------------------------------------------------------------------------------------


def test_paging_with_count_and_next_links_visits_every_match_once(api_as, technician, team_a):
    made = {str(factories.make_patient(team_a).pk) for _ in range(5)}
    client = api_as(technician)
    seen: list[str] = []
    url = "/fhir/Patient?_count=2"
    pages = 0
    while url:
        bundle = validated(client.get(url))
        assert bundle.total == 5
        seen += [e.resource.id for e in bundle.entry]
        links = {link.relation: link.url for link in bundle.link}
        assert "_count=2" in links["self"]
        url = links.get("next", "").removeprefix("http://testserver")
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(made)
    beyond = validated(client.get("/fhir/Patient?_count=2&_offset=10"))
    assert beyond.entry is None
    assert beyond.total == 5


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("name=Smith", "name"),
        ("identifier=T0000001", "identifier"),
        ("_count=0", "_count"),
        ("_count=many", "_count"),
        ("_offset=-1", "_offset"),
        ("_format=xml", "_format"),
    ],
)
def test_an_unknown_or_bad_patient_parameter_is_a_400_naming_it(api_as, nurse_a, query, param):
    response = api_as(nurse_a).get(f"/fhir/Patient?{query}")
    assert response.status_code == 400
    outcome = validated(response)
    assert outcome.issue[0].expression == [param]
    assert param in outcome.issue[0].diagnostics


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("date=yesterday", "date"),
        ("date=ge2026-13-01", "date"),
        ("date=2026-02-30", "date"),
        ("date=9999-12-31", "date"),
        ("date=0001-01-01T00:00:00%2B14:00", "date"),
        ("date=2026-01-01T10:00%2B25:00", "date"),
        ("_count=" + "9" * 5000, "_count"),
        ("status=cancelled", "status"),
        ("patient=Practitioner/1", "patient"),
        ("code=", "code"),
        ("collected=2026-01-01", "collected"),
        ("specimen=1", "specimen"),
    ],
)
def test_a_bad_observation_parameter_is_a_400_naming_it(api_as, nurse_a, query, param):
    response = api_as(nurse_a).get(f"/fhir/Observation?{query}")
    assert response.status_code == 400
    assert validated(response).issue[0].expression == [param]


def test_an_unserved_type_or_url_is_a_404_operation_outcome(api_as, nurse_a):
    client = api_as(nurse_a)
    for path in ("/fhir/Practitioner", "/fhir/Practitioner/1", "/fhir/Patient/1/_history"):
        response = client.get(path)
        assert response.status_code == 404
        validated(response)
    assert client.get("/fhir/Patient/not-a-number").status_code == 404
    assert client.get("/fhir/Patient/" + "9" * 5000).status_code == 404
    assert validated(client.get("/fhir/Patient?_id=" + "9" * 5000)).total == 0


def test_only_json_is_served(api_as, nurse_a, patient_a):
    client = api_as(nurse_a)
    response = client.get(f"/fhir/Patient/{patient_a.pk}", HTTP_ACCEPT="application/fhir+xml")
    assert response.status_code == 406
    assert validated(response).issue[0].code == "not-supported"
    for accept in ("application/json", "application/fhir+json", "*/*"):
        response = client.get(f"/fhir/Patient/{patient_a.pk}", HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert validated(response).id == str(patient_a.pk)


def test_writes_are_refused(api_as, nurse_a, patient_a):
    response = api_as(nurse_a).post("/fhir/Patient", {"resourceType": "Patient"}, format="json")
    assert response.status_code == 405
    validated(response)


# --- authentication ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/fhir/metadata", "/fhir/Patient", "/fhir/Patient/1", "/fhir/Observation"])
def test_unauthenticated_requests_get_401_with_an_operation_outcome(api, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert validated(response).issue[0].code == "login"


def test_the_rest_apis_token_authenticates(api, nurse_a, patient_a):
    api.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token(nurse_a)}")
    assert validated(api.get(f"/fhir/Patient/{patient_a.pk}")).id == str(patient_a.pk)


def test_a_user_without_the_view_permission_is_refused(api_as, patient_a):
    response = api_as(factories.make_user(None, None, "nobody")).get("/fhir/Patient")
    assert response.status_code == 403
    assert validated(response).issue[0].code == "forbidden"


# --- errors answered before a FHIR view runs ---------------------------------------------------------------------


def test_database_unavailable_and_unreadable_requests_under_fhir_are_operation_outcomes(rf):
    unreachable = unavailable(rf.get("/fhir/Patient"))
    assert unreachable.status_code == 503
    assert unreachable["Retry-After"]
    assert validated(unreachable).issue[0].code == "transient"
    unreadable = bad_request(rf.get("/fhir/Patient"), Exception())
    assert unreadable.status_code == 400
    assert validated(unreadable).issue[0].code == "too-long"
    assert unavailable(rf.get("/api/patients/"))["Content-Type"] == "application/json"
