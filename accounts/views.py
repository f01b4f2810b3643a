"""Login and logout pages (django.contrib.auth's views; django-axes counts the failures)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse

from accounts.services import api_tokens_revoke


class LogoutView(auth_views.LogoutView):
    """Logging out of the browser also revokes the user's API tokens: a token never outlives a logout."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if isinstance(request.user, User):
            api_tokens_revoke(user=request.user)
        return super().post(request, *args, **kwargs)
