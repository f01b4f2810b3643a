from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.module_loading import import_string
from django.views.decorators.http import condition

from accounts.selectors import acting_user
from alerts.forms import AlertStepForm
from alerts.models import Alert
from alerts.selectors import alert_inbox, alert_inbox_etag, alert_list, alert_open_count
from alerts.services import AlertConflict, alert_acknowledge, alert_resolve
from core.errors import error_status, error_text
from core.views import html_view

INBOX_ROWS = 200  # most severe and newest first; the rest is counted, not rendered


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
    }


def _revalidate_every_time(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_cache=True)
    return response


@html_view("GET")
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/inbox.html", _inbox_context(request))


@html_view("GET")
@condition(etag_func=lambda request: f"{alert_inbox_etag(user=request.user)}-{int(sweep_is_stale())}")
def inbox_partial(request: HttpRequest) -> HttpResponse:
    """Polled by the inbox: 304 Not Modified unless an unresolved alert changed."""
    return _revalidate_every_time(render(request, "alerts/_inbox.html", _inbox_context(request)))


@html_view("GET")
def badge(request: HttpRequest) -> HttpResponse:
    response = render(request, "alerts/_badge_poll.html", {"count": alert_open_count(user=request.user)})
    return _revalidate_every_time(response)


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
