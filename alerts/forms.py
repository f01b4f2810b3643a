from __future__ import annotations

from django import forms


class AlertStepForm(forms.Form):
    """Acknowledge or resolve: an optional comment (kept to 2000 characters)."""

    comment = forms.CharField(required=False, strip=False)

    def clean_comment(self) -> str:
        return str(self.cleaned_data["comment"])[:2000]
