from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.http import urlencode

LAST_ACTIVITY_KEY = "labflow_last_activity"
# Sent by the page's own background requests (inbox refresh, header count).
POLL_HEADER = "X-LabFlow-Poll"
# Activity is recorded at most this often: a page view within it writes no session row. The timeout can
# only come this much earlier than IDLE_TIMEOUT, never later.
ACTIVITY_RESOLUTION_SECONDS = 30


def is_background_poll(request: HttpRequest) -> bool:
    # An EventSource (the alert push stream) cannot send headers; it asks for text/event-stream.
    return request.headers.get(POLL_HEADER) == "1" or request.headers.get("Accept") == "text/event-stream"


class IdleTimeoutMiddleware:
    """Log out a session idle for IDLE_TIMEOUT; background polls never count as activity."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = timezone.now().timestamp()
            last = request.session.get(LAST_ACTIVITY_KEY)
            if last is not None and now - float(last) > settings.IDLE_TIMEOUT.total_seconds():
                logout(request)
                return self._expired(request)
            stale = last is None or now - float(last) >= ACTIVITY_RESOLUTION_SECONDS
            if stale and (not is_background_poll(request) or last is None):
                request.session[LAST_ACTIVITY_KEY] = now
        return self.get_response(request)

    def _expired(self, request: HttpRequest) -> HttpResponse:
        login_url = resolve_url(settings.LOGIN_URL)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": "Session expired after inactivity."}, status=401)
        if request.headers.get("HX-Request") == "true":
            # A background request of a page: back to that page after the login, not to the polled fragment.
            page = urlsplit(request.headers.get("HX-Current-URL", "")).path or request.path
            response = HttpResponse(status=401)
            response["HX-Redirect"] = f"{login_url}?{urlencode({'next': page, 'reason': 'idle'})}"
            return response
        return HttpResponseRedirect(f"{login_url}?{urlencode({'next': request.path, 'reason': 'idle'})}")
