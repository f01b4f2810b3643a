from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.http import parse_etags
from django.utils.module_loading import import_string

from accounts.selectors import acting_user
from alerts.forms import AlertStepForm
from alerts.middleware import FRESH_HEADER, SCOPES_SESSION_KEY
from alerts.models import Alert
from alerts.push import fresh_scope_versions, poll_etag, sweep_stale, user_scopes
from alerts.selectors import alert_inbox, alert_list, alert_open_count
from alerts.services import AlertConflict, alert_acknowledge, alert_resolve
from core.errors import error_status, error_text
from core.views import html_view

# Most severe and newest first; the rest is counted, not rendered. 100 as on every worklist page: the rows are
# the page's cost (docs/architecture.md §6).
INBOX_ROWS = 100


def sweep_is_stale() -> bool:
    """Whether the overdue sweep has stopped beating; the sweep lives in a later app, which settings names."""
    return bool(import_string(settings.SWEEP_STALE_FUNCTION)())


def _inbox_context(request: HttpRequest, error: str = "") -> dict[str, object]:
    inbox = alert_inbox(user=request.user)
    return {
        "alerts": inbox[:INBOX_ROWS],
        "total": inbox.count(),
        "shown": INBOX_ROWS,
        "open_count": alert_open_count(user=request.user),
        "sweep_stale": sweep_is_stale(),
        "error": error,
        "notification_detail": settings.ALERT_NOTIFICATION_DETAIL,
    }


def _revalidate_every_time(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_cache=True)
    return response


@html_view("GET")
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/inbox.html", _inbox_context(request))


def _version_etag(request: HttpRequest) -> str:
    """The validator the poll short-circuit (alerts/middleware.py) recomputes from Redis, here from PostgreSQL.
    It is read before the rows, so a change in between makes the next poll render again."""
    scopes = user_scopes(request.user)
    if request.session.get(SCOPES_SESSION_KEY) != scopes:
        request.session[SCOPES_SESSION_KEY] = scopes
    versions = fresh_scope_versions(scopes)
    user_id = request.session.get(SESSION_KEY)
    return poll_etag(user_id=user_id, path=request.path_info, versions=versions, stale=sweep_stale())


def _conditional(request: HttpRequest, tag: str, render_page: Callable[[], HttpResponse]) -> HttpResponse:
    fresh = request.headers.get(FRESH_HEADER) == "1"
    if not fresh and tag in parse_etags(request.headers.get("If-None-Match", "")):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = render_page()
    response["ETag"] = tag
    return _revalidate_every_time(response)


@html_view("GET")
def inbox_partial(request: HttpRequest) -> HttpResponse:
    """Polled by the inbox (and fetched on a push event): 304 Not Modified unless an unresolved alert changed."""

    def render_rows() -> HttpResponse:
        return render(request, "alerts/_inbox.html", _inbox_context(request))

    return _conditional(request, _version_etag(request), render_rows)


@html_view("GET")
def badge(request: HttpRequest) -> HttpResponse:
    def render_badge() -> HttpResponse:
        return render(request, "alerts/_badge_poll.html", {"count": alert_open_count(user=request.user)})

    return _conditional(request, _version_etag(request), render_badge)


def _alert_step(step: Callable[..., Alert]) -> Callable[[HttpRequest, int], HttpResponse]:
    @html_view("POST", perm="alerts.handle_alert")
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        alert = get_object_or_404(alert_list(user=request.user), pk=pk)
        form = AlertStepForm(request.POST)
        form.is_valid()  # the comment is optional and clipped: always valid
        try:
            step(alert=alert, user=acting_user(request), now=timezone.now(), comment=form.cleaned_data["comment"])
        except (AlertConflict, ValidationError) as refused:
            context = _inbox_context(request, error_text(refused))
            return render(request, "alerts/_inbox.html", context, status=error_status(refused))
        return render(request, "alerts/_inbox.html", _inbox_context(request))

    return view


acknowledge = _alert_step(alert_acknowledge)
resolve = _alert_step(alert_resolve)
