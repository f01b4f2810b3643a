"""Filters shared by the apps' APIs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField, IsoDateTimeRangeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time normalised to UTC, so any offset the parser accepts also works in PostgreSQL."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Date and time out of range.", code="invalid") from None


class UtcIsoDateTimeRangeField(IsoDateTimeRangeField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = (UtcIsoDateTimeField(required=False), UtcIsoDateTimeField(required=False))


class DateTimeRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """`<name>_after` / `<name>_before` in ISO 8601, any offset."""

    field_class = UtcIsoDateTimeRangeField


@extend_schema_field(OpenApiTypes.INT)
class VisibleIdFilter(django_filters.Filter):
    """`?<name>=<id>` of a related object, among those the selector `visible(user=...)` returns. Another team's id
    and an id that does not exist answer alike, 200 with no rows, so a filter never tells whether an id exists
    (docs/architecture.md §7); only a value that is not a whole number is a 400 naming the field."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, visible: Callable[..., QuerySet[Any]], **kwargs: Any) -> None:
        self.visible = visible
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet[Any], value: int | None) -> QuerySet[Any]:
        if value is None:
            return qs
        user = getattr(getattr(self.parent, "request", None), "user", None)
        if user is None:
            return qs.none()
        # The id must be among the visible rows: a subquery, so the answer costs no extra query.
        seen = self.visible(user=user).filter(pk=value).values("pk")
        return qs.filter(**{f"{self.field_name}__in": seen})
