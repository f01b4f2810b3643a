"""Shared API plumbing: error format, action-level permissions and what every viewset shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission

from core.errors import Conflict, error_status
from core.middleware import fhir_outcome

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView
    from rest_framework.viewsets import GenericViewSet

    _ViewSet = GenericViewSet[Any]
else:
    _ViewSet = object


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object's current state does not allow this."


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of every refused request but invalid input (401, 403, 404, 409, 415, 429: DRF's format)."""

    detail = serializers.CharField(help_text="Why the request was refused.")


# The body of a 400 (DRF's format): each invalid field maps to its reasons, `non_field_errors` holds those about
# the input as a whole; a nested object maps to the same shape, a list to one entry per item; a body that could
# not be parsed gets `detail`. A raw schema: no serializer can say "any field name".
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Each invalid field (`non_field_errors`: the input as a whole) maps to its reasons.",
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {}},
            {"type": "object", "additionalProperties": {}},
            {"type": "string"},
        ]
    },
    "example": {"due_at": ["Datetime has wrong format."], "non_field_errors": ["Scan the patient's wristband."]},
}


_API_ERRORS: dict[int, type[exceptions.APIException]] = {
    400: exceptions.ValidationError,
    404: exceptions.NotFound,
    409: ConflictError,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's format everywhere: validation errors map each field to its reasons."""
    if isinstance(exc, (DjangoValidationError, Conflict, ObjectDoesNotExist)):
        # Same status as the HTML views (core.errors.error_status); DRF maps 403/404 (Http404) itself.
        api_error = _API_ERRORS[error_status(exc)]
        if isinstance(exc, DjangoValidationError):
            exc = api_error(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})
        else:
            exc = api_error(str(exc))
    from rest_framework.views import exception_handler as drf_exception_handler

    return drf_exception_handler(exc, context)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 for a request it cannot read (`handler400`: too many fields, too large): under /api/ the
    API's error body, else the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "The request could not be read: too many fields, or too large."}, status=400)
    if request.path.startswith("/fhir/"):
        return fhir_outcome("The request could not be read: too many fields, or too large.", "too-long", status=400)
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for a URL no route takes (`handler404`): under /api/ the API's error body, else the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


class ActionPermission(BasePermission):
    """Each view action (or, on a plain APIView, each method) names the Django permission it needs;
    unnamed ones are refused. Views that declare none (the API root) need only a login."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        action = getattr(view, "action", None)
        declared: dict[str, str] | None = getattr(view, "required_permissions", None)
        if action == "metadata" or declared is None:
            return True
        required = declared.get(action if action is not None else (request.method or "").lower())
        return required is not None and request.user.has_perm(required)


def action_permissions(view: str, **actions: str) -> dict[str, str]:
    """A viewset's `required_permissions`: `view` for list and retrieve, then each further action's own."""
    return {"list": view, "retrieve": view, **actions}


# What the API's viewsets share (docs/architecture.md §8): their rows are the app selector's for the requesting user
# (`selector`, called with `user=`), input is read through a serializer, and what the serializer needs about the
# rows shown is worked out once for them all (`row_context`). A mixin, not a viewset: rest_framework.views imports
# this module. No docstring: drf-spectacular would show it as each viewset's description.
class ScopedViewSetMixin(_ViewSet):
    selector: ClassVar[Callable[..., QuerySet[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The schema reads the model off `queryset` (the path's id type); requests never use it.
        meta = getattr(getattr(cls, "serializer_class", None), "Meta", None)
        if getattr(cls, "queryset", None) is None and meta is not None:
            cls.queryset = meta.model._default_manager.none()

    def get_queryset(self) -> QuerySet[Any]:
        return type(self).selector(user=self.request.user)

    def validated(self, serializer_class: type[serializers.Serializer[Any]], **context: Any) -> Any:
        """The request's body as `serializer_class` reads it; else a 400 naming each field and its reasons."""
        data = serializer_class(data=self.request.data, context={"request": self.request, **context})
        data.is_valid(raise_exception=True)
        return data.validated_data

    def row_context(self, rows: list[Any]) -> dict[str, Any]:
        """Serializer context for the rows about to be shown, in one batch (not a query per row)."""
        return {}

    def rows_shown(self, rows: list[Any]) -> None:
        self._row_context = self.row_context(rows)

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        self.rows_shown(list(page or []))
        return page

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), **getattr(self, "_row_context", {})}


class Pagination(LimitOffsetPagination):
    """Page by limit/offset, never more than 500 rows a request."""

    max_limit = 500


class FileNegotiation(BaseContentNegotiation):
    """For actions that answer a file themselves (a label as PDF or ZPL): any Accept header is served, never a
    406, and an error is answered in the first renderer's format (JSON)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class SafeSlugRelatedField(serializers.SlugRelatedField[Any]):
    """A slug with a NUL character is a 400 naming the field, not a database error (PostgreSQL text refuses it)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError("Null characters are not allowed.")
        return super().to_internal_value(data)


class SafeJSONParser(JSONParser):
    """A request nested too deeply to parse is a 400, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
