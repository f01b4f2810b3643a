"""Form fields the apps' HTML forms share."""

from __future__ import annotations

from typing import Any

from django import forms


class PksField(forms.Field):
    """Ticked rows (``results=1&results=2``) as ids; anything that is not an id is ignored."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        return [int(v) for v in value or [] if str(v).isdigit()]
