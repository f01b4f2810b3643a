"""OpenAPI generation (drf-spectacular): every error an endpoint can answer, documented once for all views.

Apart from core/api.py because drf-spectacular imports rest_framework.views, which imports core.api through the
REST framework settings (docs/architecture.md §2: core is the shared kernel)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated

from core.api import VALIDATION_ERROR_SCHEMA, ErrorSerializer

PAGINATION = {"limit", "offset"}  # a bad value is ignored, never a 400
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
JSON = "application/json"

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: each field named with its reasons.",
    "401": "Not authenticated: no token, or an expired or revoked one.",
    "403": "Not allowed for this user.",
    "404": "No such object, or not visible to this user.",
    "409": "The object's current state does not allow this.",
    "415": "Unsupported media type: send JSON, a form or multipart.",
    "429": "Too many requests.",
}


class AutoSchema(SpectacularAutoSchema):
    """Adds to each operation the errors core.api.exception_handler can answer for it: 400 where it takes a body,
    filters or query parameters, or writes; 401 and 403 where a login or a permission is needed; 404 on an object's
    path; 409 on a write to a model's endpoint; 415 where it takes a body; 429 under a throttle. A status the view
    documents without a body gets the standard body; one it documents with another body (a recorded identity
    check's 409) gets either. Writes are never filtered or paged: a write that answers a list answers all of it."""

    def get_filter_backends(self) -> list[Any]:
        return super().get_filter_backends() if self.method == "GET" else []

    def _get_paginator(self) -> Any:
        return super()._get_paginator() if self.method == "GET" else None

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses: dict[str, Any] = operation["responses"]
        for code in self._error_statuses(operation, responses):
            standard = self._error_schema(code)
            documented = responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code]})
            if documented.get("description") in (None, "", "No response body"):
                documented["description"] = ERROR_DESCRIPTIONS[code]
            content = documented.setdefault("content", {})
            own = content.get(JSON, {}).get("schema")
            content[JSON] = {"schema": standard if own in (None, standard) else {"oneOf": [own, standard]}}
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        if isinstance(field, serializers.ChoiceField) and field.read_only and _model_allows_blank(field):
            # DRF drops allow_blank from read-only fields; the model's blank choice is still answered.
            field.allow_blank = True
        return super()._map_serializer_field(field, direction, bypass_extensions)

    def _error_statuses(self, operation: dict[str, Any], responses: dict[str, Any]) -> list[str]:
        parameters = operation.get("parameters", [])
        names = {p["name"] for p in parameters if p["in"] == "query"}
        on_object = any(p["in"] == "path" for p in parameters)
        write = self.method in WRITES
        model_endpoint = getattr(self.view, "queryset", None) is not None
        permissions = self.view.get_permissions()
        authenticators = self.view.get_authenticators()
        needs_login = not all(isinstance(p, AllowAny) for p in permissions)
        # Unauthenticated is 401 only when the first authenticator names a scheme (WWW-Authenticate), else 403.
        challenge = bool(authenticators) and authenticators[0].authenticate_header(None) is not None  # type: ignore[arg-type]
        may_refuse = any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions) or (
            write and any(isinstance(a, SessionAuthentication) for a in authenticators)  # CSRF
        )
        statuses = {
            "400": bool(names - PAGINATION) or "requestBody" in operation or (write and model_endpoint),
            "401": needs_login and challenge,
            "403": may_refuse or (needs_login and not challenge),
            "404": on_object,
            "409": write and model_endpoint,
            "415": "requestBody" in operation,
            "429": bool(self.view.get_throttles()),
        }
        # A view may document an error status the rules cannot see (a team that is not visible: 404).
        return [code for code in ERROR_DESCRIPTIONS if statuses[code] or code in responses]

    def _error_schema(self, code: str) -> dict[str, Any]:
        if code == "400":
            component = ResolvedComponent(
                name="ValidationError",
                type=ResolvedComponent.SCHEMA,
                object="ValidationError",
                schema=VALIDATION_ERROR_SCHEMA,
            )
            self.registry.register_on_missing(component)
            return component.ref
        resolved = self.resolve_serializer(ErrorSerializer, "response")
        return resolved.ref


def _model_allows_blank(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source:
        return False
    try:
        return bool(model._meta.get_field(field.source).blank)
    except FieldDoesNotExist:
        return False
