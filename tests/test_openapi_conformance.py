"""The OpenAPI schema tells the truth (docs/architecture.md §7): a bounded, seeded schemathesis run over every
operation of `/api/schema/`, as a lab technician, a nurse and an oncologist. Each response must have a documented
status, a documented content type and a body that matches the documented schema, and none may be a 5xx. Random
bodies rarely create anything, so the creating operations also get one valid request each, checked the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.choices import Role
from alerts.choices import AlertKind
from alerts.models import Alert
from monitoring.services import monitoring_tests_flag_overdue
from orders.models import Drug, HoldRule, Regimen, TherapyPlan
from orders.services.courses import therapy_plan_start
from results.services import ResultEntry, critical_call_record, results_enter, results_verify
from specimens.models import Container
from specimens.models import TestSpecimenRequirement as Requirement
from tests import factories
from tests.orders.cell_helpers import PASSWORD, PEMBRO, cleared_preparation
from tests.orders.helpers import first_dose, start_course
from tests.results.helpers import analyte, collected_specimen

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = [Role.LAB_TECHNICIAN, Role.NURSE, Role.ONCOLOGIST]
# Generated requests per operation and role: ~2,800 requests, a few minutes on a 2-core machine. A deeper run by
# hand: CONFORMANCE_EXAMPLES=100 CONFORMANCE_COVERAGE=1 pytest tests/test_openapi_conformance.py
MAX_EXAMPLES = int(os.environ.get("CONFORMANCE_EXAMPLES", "12"))
COVERAGE_PHASE = os.environ.get("CONFORMANCE_COVERAGE") == "1"


def _schema_document() -> dict[str, Any]:
    """The document `/api/schema/?format=json` serves, made without a request (no database at import)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


# Coverage-phase cases (boundary values, each field missing) are many per operation: only in a deeper run.
schema = schemathesis.openapi.from_dict(
    _schema_document(),
    config=SchemathesisConfig.from_dict(
        {"generation": {"max-examples": MAX_EXAMPLES}, "phases": {"coverage": {"enabled": COVERAGE_PHASE}}}
    ),
)
APP = get_wsgi_application()


def auth_headers(user: User) -> dict[str, str]:
    """The one place this module makes API credentials (a django-rest-knox token)."""
    _, key = AuthToken.objects.create(user=user)
    return {"Authorization": f"Token {key}"}


@dataclass
class World:
    headers: dict[Role, dict[str, str]]
    # Ids of rows that exist, by the first segment of the path: a generated id would nearly always be a 404.
    ids: dict[str, list[int]] = field(default_factory=dict)
    valid_bodies: dict[str, tuple[Role, dict[str, Any], int]] = field(default_factory=dict)


WORLD: list[World] = []  # the hooks below read the module's world; they run inside its tests only


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """One ward for the whole module, rolled back at its end; each test runs in a savepoint inside it."""
    with django_db_blocker.unblock(), transaction.atomic():
        team = factories.make_team("Conformance", "Ward 4A")
        nurse = factories.make_user(Role.NURSE, team)
        oncologist = factories.make_user(Role.ONCOLOGIST, team)
        techs = (factories.make_user(Role.LAB_TECHNICIAN), factories.make_user(Role.LAB_TECHNICIAN))
        patient = factories.make_patient(team)
        now = timezone.now()
        prep = cleared_preparation(patient, oncologist, nurse, techs, PEMBRO)
        plan = therapy_plan_start(
            patient=patient,
            plan=TherapyPlan.objects.order_by("pk")[0],
            starts_at=now + timedelta(days=3),
            user=oncologist,
            now=now,
        )
        overdue = factories.make_test(patient, due_at=now - timedelta(hours=2), grace=timedelta(0))
        monitoring_tests_flag_overdue(now=now)
        due_now = factories.make_test(patient, due_at=now + timedelta(minutes=5))
        to_result = collected_specimen(patient, nurse, "TSH")
        (critical,) = results_enter(
            entries=[
                ResultEntry(collected_specimen(patient, nurse, "Potassium"), analyte("Potassium"), "7.5", "mmol/L")
            ],
            user=techs[1],
            now=now,
        )
        results_verify(results=[critical], user=techs[0], now=now)
        critical_alert = Alert.objects.get(patient=patient, kind=AlertKind.CRITICAL_RESULT)
        call = critical_call_record(
            alert=critical_alert, user=techs[0], now=now, recipient="Nurse", read_back_confirmed=True
        )
        (preliminary,) = results_enter(
            entries=[ResultEntry(collected_specimen(patient, nurse, "CRP"), analyte("CRP"), "3.0", "mg/L")],
            user=techs[1],
            now=now,
        )
        users = {Role.LAB_TECHNICIAN: techs[0], Role.NURSE: nurse, Role.ONCOLOGIST: oncologist}
        result = World(headers={role: auth_headers(user) for role, user in users.items()})
        result.ids = {
            "patients": [patient.pk],
            "care-teams": [team.pk],
            "lab-tests": [analyte("TSH").pk],
            "monitoring-tests": [overdue.pk],
            "alerts": [
                critical_alert.pk,
                *patient.alerts.exclude(pk=critical_alert.pk).order_by("pk").values_list("pk", flat=True),
            ],
            "specimens": [to_result.pk],
            "containers": [Container.objects.order_by("pk").values_list("pk", flat=True)[0]],
            "specimen-requirements": [Requirement.objects.order_by("pk").values_list("pk", flat=True)[0]],
            "results": [preliminary.pk, critical.pk],
            "critical-calls": [call.pk],
            "drugs": [Drug.objects.order_by("pk").values_list("pk", flat=True)[0]],
            "regimens": [Regimen.objects.filter(active=True).order_by("pk").values_list("pk", flat=True)[0]],
            "hold-rules": [HoldRule.objects.order_by("pk").values_list("pk", flat=True)[0]],
            "courses": [prep.dose.course_id],
            "doses": [prep.dose_id],
            "preparations": [prep.pk],
            "therapy-plans": [TherapyPlan.objects.order_by("pk").values_list("pk", flat=True)[0]],
            "treatment-plans": [plan.pk],
        }
        later = (now + timedelta(days=2)).isoformat()
        result.valid_bodies = {
            "POST /api/auth/login/": (Role.NURSE, {"username": nurse.username, "password": PASSWORD}, 200),
            "POST /api/monitoring-tests/": (
                Role.NURSE,
                {"patient": patient.pk, "lab_test": analyte("TSH").pk, "due_at": later, "grace_minutes": 60},
                201,
            ),
            "POST /api/specimens/collect/": (
                Role.NURSE,
                {"patient": patient.pk, "wristband": patient.mrn, "monitoring_tests": [due_now.pk]},
                201,
            ),
            "POST /api/results/": (
                Role.LAB_TECHNICIAN,
                {
                    "specimen": to_result.pk,
                    "results": [{"lab_test": analyte("TSH").pk, "value": "1.5", "unit": "m[IU]/L"}],
                },
                201,
            ),
            "POST /api/results/verify/": (Role.LAB_TECHNICIAN, {"results": [preliminary.pk]}, 200),
            "POST /api/critical-calls/": (
                Role.LAB_TECHNICIAN,
                {"alert": critical_alert.pk, "recipient": "Dr Day, oncologist", "read_back_confirmed": True},
                201,
            ),
            "POST /api/courses/": (
                Role.ONCOLOGIST,
                {"patient": patient.pk, "regimen": Regimen.objects.get(name=PEMBRO).pk, "starts_at": later},
                201,
            ),
            "POST /api/treatment-plans/": (
                Role.ONCOLOGIST,
                {"patient": patient.pk, "plan": TherapyPlan.objects.order_by("pk")[0].pk, "starts_at": later},
                201,
            ),
        }
        WORLD.append(result)
        yield result
        WORLD.clear()
        transaction.set_rollback(True)


@pytest.fixture
def in_process(world: World, db: None) -> Iterator[World]:
    """Requests go through the WSGI handler on this thread's connection, inside the test's transaction: keep
    Django from closing that connection as each request starts and ends (as its test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield world
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _known(resource: str) -> list[int]:
    return WORLD[0].ids.get(resource, []) if WORLD else []


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """As often as not, an id that exists."""
    if not path_parameters or "id" not in path_parameters or context.operation is None:
        return st.just(path_parameters)
    known = _known(context.operation.path.split("/")[2])
    return st.sampled_from([path_parameters, *({**path_parameters, "id": pk} for pk in known)])


# Body fields that name another row, and the path segment whose rows they name.
BODY_REFERENCES = {
    "patient": "patients",
    "lab_test": "lab-tests",
    "specimen": "specimens",
    "regimen": "regimens",
    "plan": "therapy-plans",
    "dose": "doses",
    "alert": "alerts",
    "monitoring_tests": "monitoring-tests",
    "results": "results",
}


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """As often as not, the rows a body names exist (a list of ids gets one that exists)."""
    if not isinstance(body, dict):
        return st.just(body)
    filled = dict(body)
    for name, resource in BODY_REFERENCES.items():
        known = _known(resource)
        if name not in body or not known:
            continue
        if not isinstance(body[name], list):
            filled[name] = known[0]
        elif not any(isinstance(item, dict) for item in body[name]):
            filled[name] = known[:1]
    return st.sampled_from([body, filled])


@pytest.mark.parametrize("role", ROLES, ids=[r.name.lower() for r in ROLES])
@schema.parametrize()
@settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_responses_match_the_schema(case: Any, role: Role, in_process: World) -> None:
    case.call_and_validate(app=APP, headers=in_process.headers[role], checks=CHECKS)


@pytest.mark.parametrize(
    "operation",
    [
        "POST /api/auth/login/",
        "POST /api/monitoring-tests/",
        "POST /api/specimens/collect/",
        "POST /api/results/",
        "POST /api/results/verify/",
        "POST /api/critical-calls/",
        "POST /api/courses/",
        "POST /api/treatment-plans/",
    ],
)
def test_a_valid_request_succeeds_as_documented(operation: str, in_process: World) -> None:
    role, body, expected = in_process.valid_bodies[operation]
    method, path = operation.split()
    case = schema[path][method].Case(body=body, media_type="application/json")
    response = case.call_and_validate(app=APP, headers=in_process.headers[role], checks=CHECKS)
    assert response.status_code == expected, response.text


def test_every_error_response_documents_its_json_body() -> None:
    document = _schema_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code >= "400":
                    assert "application/json" in response.get("content", {}), (method, path, code)
            login_needed = bool(operation.get("security")) and {} not in operation["security"]
            assert ("401" in operation["responses"]) == login_needed, (method, path)


def test_a_label_is_served_to_a_client_that_asks_for_its_media_type(api_as, nurse_a, patient_a) -> None:
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    client = api_as(nurse_a)
    pdf = client.get(f"/api/specimens/{specimen.pk}/label/pdf/", HTTP_ACCEPT="application/pdf")
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")
    missing = client.get("/api/specimens/0/label/pdf/", HTTP_ACCEPT="application/pdf")
    assert (missing.status_code, missing["Content-Type"]) == (404, "application/json")


def test_an_unknown_api_url_answers_the_json_error_body(api_as, nurse_a) -> None:
    response = api_as(nurse_a).get("/api/alerts/1.5/")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"detail": "Not found."}
    assert api_as(nurse_a).get("/alerts/no-such-page/")["Content-Type"].startswith("text/html")


def test_a_request_too_large_to_read_answers_the_json_error_body(api_as, technician) -> None:
    fields = "&".join(["results=1"] * 1001)
    response = api_as(technician).post("/api/results/verify/", fields, content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    assert "detail" in response.json()


def test_a_null_character_in_a_user_name_is_a_400_naming_the_field(api_as, oncologist_a, patient_a) -> None:
    dose = first_dose(start_course(patient_a, oncologist_a, "Nivolumab 240 mg q2w"))
    body = {"reason": "Benefit outweighs risk", "cosigner": "onc.b\x00", "cosigner_password": "x"}
    response = api_as(oncologist_a).post(f"/api/doses/{dose.pk}/continue-cosigned/", body, format="json")
    assert response.status_code == 400
    assert response.json()["cosigner"] == ["Null characters are not allowed."]
