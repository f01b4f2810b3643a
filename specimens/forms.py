from __future__ import annotations

from django import forms

from core.forms import PksField
from specimens.choices import MANUAL_CUSTODY_KINDS, RejectionReason, SpecimenCondition


class ReceiveForm(forms.Form):
    accession = forms.CharField(max_length=20, label="Scan accession")
    condition = forms.ChoiceField(choices=SpecimenCondition.choices, initial=SpecimenCondition.ROOM)


class RejectForm(forms.Form):
    reason = forms.ChoiceField(choices=RejectionReason.choices, label="Reason (HL7 0490)")
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)


class CustodyForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k.value, k.label) for k in MANUAL_CUSTODY_KINDS])
    location = forms.CharField(max_length=100, required=False)
    note = forms.CharField(max_length=2000, required=False)


class CollectForm(forms.Form):
    wristband = forms.CharField(required=False, max_length=100)
    tests = PksField(required=False)
