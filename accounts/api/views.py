"""API tokens (django-rest-knox): log in with a username and password, log out one token or all of them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox import views as knox_views
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import LoginSerializer, TokenSerializer
from accounts.selectors import acting_user
from accounts.services import (
    LockedOut,
    api_token_issue,
    api_token_revoke,
    api_tokens_revoke,
    authenticate_password,
)


class LockedOutError(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


class TokenLoginView(knox_views.LoginView):
    """A new API token for a username and password. A wrong password counts toward the same lock-out as the login
    page and signatures (5 failures per username and address): while locked out, even the right password is
    answered 429 until the cool-off ends."""

    # The credentials are in the body: no session is read, so no CSRF applies.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(description="Missing fields, or a wrong username or password."),
            429: OpenApiResponse(description="Locked out after repeated wrong passwords."),
        },
        auth=[],
    )
    def post(self, request: Request, format: str | None = None) -> Response:
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = authenticate_password(request=request, **data.validated_data)
        except LockedOut as refused:
            raise LockedOutError(str(refused)) from None
        except PermissionDenied as refused:
            raise exceptions.ValidationError({"non_field_errors": [str(refused)]}) from None
        request.user = user
        response: Response = super().post(request, format)
        return response

    def create_token(self) -> tuple[AuthToken, str]:
        return api_token_issue(user=acting_user(self.request))


class TokenLogoutView(knox_views.LogoutView):
    """Revoke the token this request is authenticated with."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, format: str | None = None) -> Response:
        api_token_revoke(token=request.auth)
        return self._logged_out(request)

    def _logged_out(self, request: Request) -> Response:
        user_logged_out.send(sender=type(request.user), request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenLogoutAllView(TokenLogoutView):
    """Revoke every API token of the user (logging out of the browser does the same)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, format: str | None = None) -> Response:
        api_tokens_revoke(user=acting_user(request))
        return self._logged_out(request)
