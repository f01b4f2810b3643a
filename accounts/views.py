"""Login and logout pages (django.contrib.auth's views; django-axes counts the failures)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.middleware import LAST_ACTIVITY_KEY
from accounts.services import api_tokens_revoke
from core.views import html_view


class LogoutView(auth_views.LogoutView):
    """Logging out of the browser also revokes the user's API tokens: a token never outlives a logout."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if isinstance(request.user, User):
            api_tokens_revoke(user=request.user)
        return super().post(request, *args, **kwargs)


@html_view("POST")
def keepalive(request: HttpRequest) -> HttpResponse:
    """'Stay signed in', or typing in a form: real activity, always recorded (a page view within 30 s of the last
    recorded one is not). An expired session gets the idle middleware's answer first."""
    request.session[LAST_ACTIVITY_KEY] = timezone.now().timestamp()
    return HttpResponse(status=204)
