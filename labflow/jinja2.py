"""The Jinja2 environment for the list rows that render hundreds of times a page (docs/architecture.md §6).

Django templates cost about 0.4 ms a worklist row in variable lookups; Jinja2 compiles a template to Python.
Autoescaping is always on, and Django's safe strings stay safe (both honour __html__).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.template.defaultfilters import capfirst, date
from django.urls import reverse
from django.utils.formats import get_format, localize
from django.utils.timezone import is_aware, localtime
from jinja2 import Environment


def url(name: str, *args: object) -> str:
    return reverse(name, args=args)


def shown(value: object) -> object:
    """What ``{{ value }}`` prints, as in a Django template: local time, numbers with the locale's decimal mark.
    Whole numbers and decimals take a short path (a collection list prints a thousand); it gives what
    ``localize`` gives when no thousands separator is used (the settings' default, pinned by a test)."""
    if isinstance(value, str) or value is None:
        return value
    if not settings.USE_THOUSAND_SEPARATOR:
        if type(value) is int:
            return str(value)
        if isinstance(value, Decimal) and value.is_finite():
            return format(value, "f").replace(".", get_format("DECIMAL_SEPARATOR"))
    if isinstance(value, datetime) and is_aware(value):
        value = localtime(value)
    return localize(value)


def environment(**options: Any) -> Environment:
    options.pop("autoescape", None)  # always on, whatever the settings say
    env = Environment(autoescape=True, finalize=shown, **options)
    env.globals["url"] = url
    env.filters["date"] = date
    env.filters["capfirst"] = capfirst
    return env
