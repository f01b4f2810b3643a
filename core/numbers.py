"""Numbers as a person writes them. Pure (no Django): the pure dosing modules use it too."""

from __future__ import annotations

from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    """A stored quantity without trailing zeros or an exponent: 240.000 -> "240", 1.50 -> "1.5", 0.0280 -> "0.028"."""
    return format(value.normalize(), "f")
