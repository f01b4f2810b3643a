"""Shared API plumbing: error format and action-level permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission

from core.errors import Conflict, error_status

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object's current state does not allow this."


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


class Pagination(LimitOffsetPagination):
    """Page by limit/offset, never more than 500 rows a request."""

    max_limit = 500


class SafeJSONParser(JSONParser):
    """A request nested too deeply to parse is a 400, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
