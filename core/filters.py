"""Filters shared by the apps' APIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField, IsoDateTimeRangeField


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
