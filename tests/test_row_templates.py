"""The Jinja2 row templates (labflow/jinja2.py): they print values as the Django templates around them do."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from labflow.jinja2 import shown

VALUES = [
    0, 7, -12, 123456789, Decimal("2.5"), Decimal("-0.25"), Decimal("100.000"), Decimal("1E+2"), Decimal("0"),
    Decimal("0.0001"), 2.5, datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "4 < 5 & x", None, True,
]  # fmt: skip


@pytest.mark.parametrize("language", ["en-gb", "de", "fr"])
def test_row_values_print_as_a_django_template_prints_them(language, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    django_template = Template("{{ value }}")
    with translation.override(language):
        for value in VALUES:
            expected = django_template.render(Context({"value": value}, autoescape=False))
            assert str(shown(value)) == ("None" if value is None else expected), (language, value)


def test_decimal_mark_follows_the_language():
    with translation.override("de"):
        assert shown(Decimal("2.50")) == "2,50"
    with translation.override("en-gb"):
        assert shown(Decimal("2.50")) == "2.50"
