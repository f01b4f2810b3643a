"""The FHIR R4 read and search API (docs/interfaces.md, FHIR R4 API): JSON only, read-only, the REST API's
authentication (token, session) and care-team scoping. Errors are OperationOutcomes; a resource the user may not
see is 404, exactly like one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import Http404, HttpResponse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.resource import Resource
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fhir_api import resources, search
from fhir_api.capability import capability_statement
from fhir_api.selectors import SEARCHABLE

FHIR_JSON = "application/fhir+json"
# Paging and format parameters every search takes beside the resource's own.
COMMON_PARAMS = ("_count", "_offset", "_format")
JSON_FORMATS = ("json", "application/json", FHIR_JSON)

# The Django permission each resource type needs: the one the REST API's viewset of the same rows needs.
PERMISSIONS = {
    "Patient": "patients.view_patient",
    "Observation": "results.view_result",
    "DiagnosticReport": "results.view_result",
    "Specimen": "specimens.view_specimen",
    "ServiceRequest": "monitoring.view_monitoringtest",
    "Flag": "alerts.view_alert",
    "MedicationRequest": "orders.view_dose",
    "MedicationAdministration": "orders.view_preparation",
}

BUILDERS: dict[str, Callable[[Any], Resource]] = {
    "Patient": resources.patient_resource,
    "Observation": resources.observation_resource,
    "DiagnosticReport": lambda specimen: resources.diagnostic_report_resource(specimen, specimen.verified_results),
    "Specimen": resources.specimen_resource,
    "ServiceRequest": resources.service_request_resource,
    "Flag": resources.flag_resource,
    "MedicationRequest": resources.medication_request_resource,
    "MedicationAdministration": resources.medication_administration_resource,
}

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",  # JSON only
}


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


def outcome(status: int, text: str, code: str | None = None, expression: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error",
        "code": code or ISSUE_CODES.get(status, "processing"),
        "diagnostics": text,
    }
    if expression:
        issue["expression"] = [expression]
    return OperationOutcome.model_validate({"issue": [issue]}).model_dump(mode="json", exclude_none=True)


def fhir_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every refusal as an OperationOutcome; anything else is a bug and stays a 500."""
    if isinstance(exc, search.SearchError):
        return Response(outcome(400, str(exc), exc.code, exc.param), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        response = Response(outcome(exc.status_code, str(detail)), status=exc.status_code)
        if auth_header := getattr(exc, "auth_header", None):  # set by APIView for 401 (DRF's handler does the same)
            response["WWW-Authenticate"] = auth_header
        if wait := getattr(exc, "wait", None):
            response["Retry-After"] = str(int(wait))
        return response
    return None


class FhirView(APIView):
    """Shared by the FHIR endpoints: authentication as the REST API, OperationOutcome errors, JSON only."""

    renderer_classes = [FhirJSONRenderer, JSONRenderer]
    permission_classes = [IsAuthenticated]
    http_method_names = ["get", "head"]
    schema = None  # FHIR describes itself at /fhir/metadata, not in the REST API's OpenAPI schema

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return fhir_exception_handler

    def fhir_response(self, resource: Resource) -> HttpResponse:
        response = HttpResponse(resource.model_dump_json(exclude_none=True), content_type=FHIR_JSON)
        response["Cache-Control"] = "no-store"  # patient data: never kept by a browser or proxy
        return response

    def check_format(self, request: Request) -> None:
        for value in request.query_params.getlist("_format"):
            if value not in JSON_FORMATS:
                raise search.SearchError("_format", "only JSON (application/fhir+json) is served.")

    def resource_type(self, request: Request, resource_type: str) -> str:
        """A type this server serves and the user may read; another type is 404 (an unknown URL)."""
        if resource_type not in PERMISSIONS:
            raise exceptions.NotFound(f"Resource type '{resource_type[:40]}' is not served here.")
        if not request.user.has_perm(PERMISSIONS[resource_type]):
            raise exceptions.PermissionDenied(f"You may not read {resource_type} resources.")
        return resource_type


class MetadataView(FhirView):
    def get(self, request: Request) -> HttpResponse:
        self.check_format(request)
        return self.fhir_response(CapabilityStatement.model_validate(capability_statement(request)))


class ReadView(FhirView):
    def get(self, request: Request, resource_type: str, pk: str) -> HttpResponse:
        kind = self.resource_type(request, resource_type)
        self.check_format(request)
        ids = search.ids("_id", [pk]) if pk.isascii() and pk.isdigit() else []
        row = SEARCHABLE[kind].rows(user=request.user).filter(pk__in=ids).first() if ids else None
        if row is None:  # unknown, or another care team's: the same answer
            raise exceptions.NotFound(f"{kind}/{pk[:40]} is not known.")
        return self.fhir_response(BUILDERS[kind](row))


class SearchView(FhirView):
    def get(self, request: Request, resource_type: str) -> HttpResponse:
        kind = self.resource_type(request, resource_type)
        searchable = SEARCHABLE[kind]
        params = request.query_params
        for name in params:
            if name not in searchable.params and name not in COMMON_PARAMS:
                raise search.SearchError(name[:40], f"not supported for {kind}.", "not-supported")
        self.check_format(request)
        count = search.count(params.getlist("_count"))
        offset = search.offset(params.getlist("_offset"))
        zone = ZoneInfo(settings.TIME_ZONE)
        rows = searchable.rows(user=request.user)
        for name, apply in searchable.params.items():
            if values := params.getlist(name):
                rows = apply(rows, values, zone)
        total = rows.count()
        page = list(rows[offset : offset + count]) if offset < total else []
        base = request.build_absolute_uri(f"/fhir/{kind}")
        links = [{"relation": "self", "url": _page_url(base, params, offset, count)}]
        if offset + count < total:
            links.append({"relation": "next", "url": _page_url(base, params, offset + count, count)})
        if offset > 0:
            links.append({"relation": "previous", "url": _page_url(base, params, max(offset - count, 0), count)})
        bundle = Bundle.model_validate(
            {
                "type": "searchset",
                "total": total,
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{base}/{row.pk}",
                        "resource": BUILDERS[kind](row),
                        "search": {"mode": "match"},
                    }
                    for row in page
                ],
            }
        )
        return self.fhir_response(bundle)


def _page_url(base: str, params: Any, offset: int, count: int) -> str:
    query = [(k, v) for k in params for v in params.getlist(k) if k not in ("_count", "_offset")]
    query += [("_count", str(count)), ("_offset", str(offset))]
    return f"{base}?{urlencode(query)}"


def not_found(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
    """A URL under /fhir/ that no route takes: an OperationOutcome, not the HTML page."""
    response = HttpResponse(
        OperationOutcome.model_validate(outcome(404, "No such FHIR endpoint.")).model_dump_json(exclude_none=True),
        content_type=FHIR_JSON,
        status=404,
    )
    return response
