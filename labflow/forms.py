"""Forms of the pages the project composes."""

from __future__ import annotations

from django import forms

from labflow.timeline import DEFAULT_PAST_DAYS, PAST_DAYS_CHOICES


class TimelineFilterForm(forms.Form):
    """The timeline's GET filters: how far back it reaches (it always reaches two weeks ahead) and one test."""

    days = forms.TypedChoiceField(choices=[(d, f"{d} days") for d in PAST_DAYS_CHOICES], coerce=int, required=False)
    test = forms.IntegerField(min_value=1, required=False)

    def clean_days(self) -> int:
        return self.cleaned_data["days"] or DEFAULT_PAST_DAYS
