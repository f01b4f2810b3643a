"""The header's patient search."""

from __future__ import annotations

from django import forms


class PatientSearchForm(forms.Form):
    q = forms.CharField(label="Find a patient", min_length=2, max_length=100, strip=True)

    def clean_q(self) -> str:
        q: str = self.cleaned_data["q"]
        if not any(ch.isalnum() for ch in q):
            raise forms.ValidationError("Type a name, an MRN or a birth date.")
        return q
