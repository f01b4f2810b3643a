from django.core.exceptions import ValidationError


class Conflict(Exception):
    """A state change that the object's current state does not allow (HTTP 409)."""


def error_messages(error: Exception) -> list[str]:
    """What to show a user for a refused step: a ValidationError's messages, or the exception's text."""
    return error.messages if isinstance(error, ValidationError) else [str(error)]


def error_text(error: Exception) -> str:
    return " ".join(error_messages(error))
