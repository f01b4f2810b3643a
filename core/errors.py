from collections.abc import Mapping

from django import forms
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404


class Conflict(Exception):
    """A state change that the object's current state does not allow (HTTP 409)."""


def error_status(error: Exception) -> int:
    """The one error-to-status mapping, for HTML views and the API alike: invalid input 400, not allowed 403,
    not found 404, a state conflict 409. Anything else is a bug (500)."""
    if isinstance(error, ValidationError):
        return 400
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, (Http404, ObjectDoesNotExist)):
        return 404
    if isinstance(error, Conflict):
        return 409
    return 500


def error_messages(error: Exception) -> list[str]:
    """What to show a user for a refused step: a ValidationError's messages, or the exception's text."""
    return error.messages if isinstance(error, ValidationError) else [str(error)]


def error_text(error: Exception) -> str:
    return " ".join(error_messages(error))


def form_refused(form: forms.BaseForm, error: Exception, fields: Mapping[str, str] | None = None) -> int:
    """Show a refused step on the form the user submitted: a ValidationError's per-field messages go to the
    matching fields (``fields`` renames a service's field names to the form's), the rest above the form; returns
    the status to re-render with (error_status)."""
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            name = (fields or {}).get(name, name)
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(
            None, error_messages(error) if not isinstance(error, PermissionDenied) else str(error) or "Not allowed."
        )
    return error_status(error)
