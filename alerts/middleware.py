"""The polled inbox and badge answer 304 from the session and Redis alone (docs/architecture.md §3 Push).

A background poll (`X-LabFlow-Poll: 1`) that presents a version-number validator (`"av-…"`, see
`alerts.push.poll_etag`) is checked before Django's authentication loads the user: the session row is read (the
request is authenticated by it; an idle-expired session falls through, so the idle-timeout middleware logs it
out), the scopes the last full answer stored in the session are looked up in Redis, and an unchanged validator is
answered 304 with no body. Anything else (no validator, another user, Redis down, a changed version) takes the
full path, which renders and answers a fresh validator. A 304 reveals nothing but "unchanged".
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers

from accounts.middleware import LAST_ACTIVITY_KEY, is_background_poll
from alerts.push import poll_etag, scope_versions, sweep_stale

SCOPES_SESSION_KEY = "labflow_alert_scopes"
# Sent by a refresh that a push event asked for: answer the rows, never 304.
FRESH_HEADER = "X-LabFlow-Fresh"


def polled_paths() -> frozenset[str]:
    return frozenset({reverse("alerts:inbox-partial"), reverse("alerts:badge")})


class PollShortCircuitMiddleware:
    """Put first: it reads the session row itself, before any other middleware (authentication, CSRF, idle
    timeout) runs; whatever it cannot answer goes down the whole stack unchanged."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.paths: frozenset[str] | None = None
        self.sessions = import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tag = request.headers.get("If-None-Match", "")
        fresh = request.headers.get(FRESH_HEADER) == "1"
        if request.method == "GET" and tag.startswith('"av-') and is_background_poll(request) and not fresh:
            if self.paths is None:
                self.paths = polled_paths()
            if request.path_info in self.paths and (unchanged := self._unchanged(request, tag)) is not None:
                return unchanged
        return self.get_response(request)

    def _unchanged(self, request: HttpRequest, tag: str) -> HttpResponse | None:
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not key:
            return None
        try:
            return self._unchanged_session(self.sessions(key), request, tag)
        except DatabaseError:
            return None  # the full path answers 503 (core.middleware)

    def _unchanged_session(self, session: SessionBase, request: HttpRequest, tag: str) -> HttpResponse | None:
        user_id = session.get(SESSION_KEY)
        last = session.get(LAST_ACTIVITY_KEY)
        scopes = session.get(SCOPES_SESSION_KEY)
        if user_id is None or last is None or not isinstance(scopes, list):
            return None
        if timezone.now().timestamp() - float(last) > settings.IDLE_TIMEOUT.total_seconds():
            return None  # the full path logs the session out
        versions = scope_versions([str(s) for s in scopes])
        if versions is None:
            return None
        stale = sweep_stale()
        if poll_etag(user_id=user_id, path=request.path_info, versions=versions, stale=stale) != tag:
            return None
        response = HttpResponseNotModified()
        response["ETag"] = tag
        patch_cache_control(response, private=True, no_cache=True)
        patch_vary_headers(response, ("Cookie",))
        return response
