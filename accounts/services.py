"""Writes of the accounts app: API tokens (django-rest-knox) and every password check (django-axes).

A password is checked in one way only, `authenticate_password`, whether it signs in (the login page, the API
token login) or signs a step (a verification, a co-signature): each failure counts toward one lock-out per
username and address (AXES_LOCKOUT_PARAMETERS), and a locked-out user can neither sign in nor sign until the
cool-off ends (docs/architecture.md §7).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from knox.models import AuthToken
from rest_framework.request import Request

WRONG_CREDENTIALS = "Unable to sign in with the username and password given."


class LockedOut(PermissionDenied):
    """Too many wrong passwords for this username from this address: refused until the cool-off ends."""


def lockout_message() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return f"Too many wrong passwords: signing in and signing with this account are locked for {minutes} minutes."


def _attempt_request(request: HttpRequest | Request) -> HttpRequest:
    """What django-axes records of an attempt: the address, headers and path, never the submitted form (a
    signature form carries clinical reasons and labels that have no place in the lock-out tables)."""
    source: HttpRequest = getattr(request, "_request", request)
    attempt = HttpRequest()
    attempt.method = source.method
    attempt.path, attempt.path_info = source.path, source.path_info
    attempt.META = {key: value for key, value in source.META.items() if isinstance(value, str)}
    return attempt


def authenticate_password(*, request: HttpRequest | Request, username: str, password: str) -> User:
    """The user whose password this is, through `django.contrib.auth.authenticate` so that django-axes counts a
    failure. Raises LockedOut while the username is locked out at this address (even with the right password),
    PermissionDenied for a wrong password. Call it outside the transaction of the write it guards: a refused
    write is rolled back, the counted failure must stay."""
    attempt = _attempt_request(request)
    user = authenticate(attempt, username=username, password=password)
    if getattr(attempt, "axes_locked_out", False):
        raise LockedOut(lockout_message())
    if not isinstance(user, User):
        raise PermissionDenied(WRONG_CREDENTIALS)
    return user


def confirm_password(*, request: HttpRequest | Request, user: User, password: str, refusal: str) -> None:
    """A signature: `user` re-enters their password. `refusal` is the answer to a wrong one."""
    try:
        signer = authenticate_password(request=request, username=user.get_username(), password=password)
    except LockedOut:
        raise
    except PermissionDenied:
        raise PermissionDenied(refusal) from None
    if signer.pk != user.pk:
        raise PermissionDenied(refusal)


def api_token_issue(*, user: User) -> tuple[AuthToken, str]:
    """A new API token for `user`, expiring after REST_KNOX["TOKEN_TTL"]. The raw token exists only in this
    return value: the database keeps its SHA-512 digest and its first characters (`token_key`) to find it."""
    instance, token = AuthToken.objects.create(user=user)
    return instance, token


def api_token_revoke(*, token: AuthToken) -> None:
    token.delete()


def api_tokens_revoke(*, user: User) -> int:
    """Every API token of `user` (at logout, and the API's logout-all)."""
    return api_tokens_revoke_selected(tokens=AuthToken.objects.filter(user=user))


def api_tokens_revoke_selected(*, tokens: QuerySet[AuthToken]) -> int:
    deleted, _ = tokens.delete()
    return deleted
