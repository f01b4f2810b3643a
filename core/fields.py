"""Serializer fields the apps' APIs share (docs/architecture.md §2: core is the shared kernel)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.INT)
class VisibleRelatedField(serializers.PrimaryKeyRelatedField[Model]):
    """A row by id among those the requesting user may see (the app's scoping selector, called with `user=`):
    any other id is refused like one that does not exist, a 400 naming the field."""

    def __init__(self, selector: Callable[..., QuerySet[Any]], **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.selector(user=self.context["request"].user)
