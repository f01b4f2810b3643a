"""Input of the results pages: forms check what the browser sent; the services validate the values."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.formats import get_format

from core.forms import PksField

# A number as typed with a decimal comma: "4,5", "<0,05", ">= 11,0" (no other comma, no point).
DECIMAL_COMMA_NUMBER = re.compile(r"\s*(?:<=|>=|<|>|=)?\s*\d+,\d+\s*")


def with_decimal_point(value: str) -> str:
    """A number typed with the site locale's decimal comma, with a point instead. Anything else unchanged: in a
    locale whose decimal mark is the point, "4,5" stays as typed and is refused as not a number, never read as 45
    or 4.5."""
    if get_format("DECIMAL_SEPARATOR") == "," and DECIMAL_COMMA_NUMBER.fullmatch(value):
        return value.replace(",", ".")
    return value


class ResultGridForm(forms.Form):
    """A grid of values keyed by row (``value-<key>``), each with its unit (``unit-<key>``) or one unit for all
    (``unit``). Rows left blank are not entered."""

    def __init__(self, *args: Any, keys: Sequence[int], one_unit: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys, self.one_unit = list(keys), one_unit
        for key in self.keys:
            self.fields[f"value-{key}"] = forms.CharField(required=False, strip=False)
            if not one_unit:
                self.fields[f"unit-{key}"] = forms.CharField(required=False)
        if one_unit:
            self.fields["unit"] = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.entered():
            raise forms.ValidationError("Enter at least one value.")
        return data

    def entered(self) -> list[tuple[int, str, str]]:
        """(key, value, unit) of each filled row, in grid order."""
        data = self.cleaned_data
        unit = lambda key: data.get("unit" if self.one_unit else f"unit-{key}") or ""  # noqa: E731
        return [
            (k, with_decimal_point(data[f"value-{k}"]), unit(k))
            for k in self.keys
            if (data.get(f"value-{k}") or "").strip()
        ]

    def service_fields(self) -> dict[str, str]:
        """The services name an entry's field results[0].value (or value, for a single entry)."""
        entered = self.entered()
        names: dict[str, str] = {}
        for index, (key, _value, _unit) in enumerate(entered):
            where = f"results[{index}]." if len(entered) > 1 else ""
            names[f"{where}value"] = f"value-{key}"
            names[f"{where}unit"] = "unit" if self.one_unit else f"unit-{key}"
        return names

    def typed(self, key: int, unit: str = "") -> dict[str, Any]:
        """What the user typed in a row (to show it again) with the row's errors, or the row's blank value and
        default unit."""
        if not self.is_bound:
            return {"value": "", "unit": unit, "errors": []}
        return {
            "value": self.data.get(f"value-{key}", ""),
            "unit": self.data.get(f"unit-{key}", ""),
            "errors": self.row_errors(key),
        }

    def row_errors(self, key: int) -> list[str]:
        return [str(e) for name in (f"value-{key}", f"unit-{key}") for e in self.errors.get(name, [])]

    def error_summary(self, labels: dict[int, str]) -> list[str]:
        """Every error once, a row's named by its row (`labels`: key -> what the user sees, e.g. "Potassium"),
        never by its field name."""
        rows = {f"{prefix}-{key}": label for key, label in labels.items() for prefix in ("value", "unit")}
        return [
            f"{rows[name]}: {error}" if name in rows else (f"Unit: {error}" if name == "unit" else str(error))
            for name, errors in self.errors.items()
            for error in errors
        ]


class AmendForm(forms.Form):
    value = forms.CharField(required=False, strip=False)
    unit = forms.CharField(required=False)
    reason = forms.CharField(required=False, max_length=2000)


class CriticalCallForm(forms.Form):
    recipient = forms.CharField(required=False, max_length=200)
    read_back_confirmed = forms.BooleanField(required=False)
    note = forms.CharField(required=False)

    def clean_note(self) -> str:
        return str(self.cleaned_data["note"])[:2000]


class ResultsChoiceForm(forms.Form):
    results = PksField(required=False)
    comment = forms.CharField(required=False, max_length=2000)


TREND_WINDOWS = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("all", "Whole course")]
TREND_DEFAULT_WINDOW = "90"


class TrendWindowForm(forms.Form):
    """How far back the trend charts reach (they always reach TREND_AHEAD_DAYS ahead, for the planned doses)."""

    window = forms.ChoiceField(choices=TREND_WINDOWS, required=False)
