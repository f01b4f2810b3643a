"""Template filters of the orders pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import template

from core.numbers import plain_decimal
from core.times import duration_text

register = template.Library()


@register.filter
def plain(value: object) -> object:
    """A stored number as a person writes it, the same value without trailing zeros ("25.000" → "25",
    "1.50" → "1.5"); anything else unchanged. Display only: never used in a calculation."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return value
    if not number.is_finite() or value == "" or value is None:
        return value
    return plain_decimal(number)


@register.filter
def duration(value: object) -> object:
    """A catalogue duration ("1 h", "2 h 30 min", "30 min"); anything else unchanged."""
    return duration_text(value) if isinstance(value, timedelta) else value
