"""503 with Retry-After, not 500, while PostgreSQL cannot be reached (a restart, a failover).

A restart takes the database away for a few seconds; users should see "try again", and htmx polls (which do
not swap error responses) simply try again at their next tick. Only connection-level failures are mapped: a
lost or refused connection, or the server saying it is shutting down or starting up. Anything else (a
constraint, a cancelled query) is a bug or a real error and stays a 500.

The first database access of a request usually happens in another middleware (the session behind
`request.user`), and Django turns an exception there into a 500 response before any outer middleware sees it.
So `got_request_exception` marks the request when the exception is connection-level, and this middleware,
placed outside the session and authentication middleware, swaps that 500 for a 503. Exceptions raised by a
view are answered directly in `process_exception`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MARK = "_labflow_database_unavailable"
# SQLSTATE of a server going away or not there yet: connection exceptions (class 08), admin shutdown, crash
# shutdown, cannot connect now (starting up or shutting down). No SQLSTATE at all: no server answered.
CONNECTION_SQLSTATE_CLASSES = ("08",)
CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
MESSAGE = "The database is briefly unavailable. Please try again in a few seconds."
PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>LabFlow: try again shortly</title>"
    f"<meta http-equiv='refresh' content='{RETRY_AFTER_SECONDS}'></head>"
    f"<body><h1>Try again in a few seconds</h1><p>{MESSAGE}</p></body></html>"
)


def is_connection_error(error: BaseException | None) -> bool:
    """Whether `error` (a Django database exception) means the database cannot be reached right now."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(CONNECTION_SQLSTATE_CLASSES) or sqlstate in CONNECTION_SQLSTATES


def fhir_outcome(text: str, code: str, *, status: int) -> HttpResponse:
    """An error under /fhir/ as a FHIR OperationOutcome (fhir_api answers its own; this is for the ones Django or
    this middleware answer before a view runs)."""
    issue = {"severity": "error", "code": code, "diagnostics": text}
    body = json.dumps({"resourceType": "OperationOutcome", "issue": [issue]})
    return HttpResponse(body, status=status, content_type="application/fhir+json")


def unavailable(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    elif request.path.startswith("/fhir/"):
        response = fhir_outcome(MESSAGE, "transient", status=503)
    else:
        response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    # Logged once already (one line, below); Django's handler would log every 503 again as an error.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


class _OneLineForConnectionErrors(logging.Filter):
    """Django logs each failed request with its traceback; for an unreachable database one line says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_connection_error(error):
            request = getattr(record, "request", None)
            where = f"{request.method} {request.path}" if isinstance(request, HttpRequest) else record.getMessage()
            record.msg, record.args = "database unavailable, answered 503: %s (%s)", (where, _one_line(error))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_ONE_LINE = _OneLineForConnectionErrors()


def _mark_connection_errors(sender: object, request: HttpRequest | None = None, **_: Any) -> None:
    if request is not None and is_connection_error(sys.exc_info()[1]):
        setattr(request, MARK, True)


class DatabaseUnavailableMiddleware:
    """Answer 503 + Retry-After instead of 500 when the request failed because PostgreSQL is unreachable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_mark_connection_errors, dispatch_uid="core.middleware.database_unavailable")
        logging.getLogger("django.request").addFilter(_ONE_LINE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, MARK, False):
            return unavailable(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_connection_error(exception):
            return None
        logger.warning(
            "database unavailable, answered 503: %s %s (%s)", request.method, request.path, _one_line(exception)
        )
        return unavailable(request)
