"""Request and response bodies of the API token endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class LoginSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=200, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown once, never stored.")
    expiry = serializers.DateTimeField(help_text="The token stops working at this time.")
