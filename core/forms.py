"""Form fields the apps' HTML forms share."""

from __future__ import annotations

from typing import Any

from django import forms


class PksField(forms.Field):
    """Ticked rows (``results=1&results=2``) as ids; a row may stand for several (a panel: ``results=1 2 3``);
    anything that is not an id is ignored."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        return [int(token) for v in value or [] for token in str(v).split() if token.isdigit()]
