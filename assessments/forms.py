"""The bedside assessment form: radio buttons for every choice (large touch targets on a 768 px tablet), the ten
ICE items spelled out, and "not recorded" as an explicit answer (it leaves a grade pending)."""

from __future__ import annotations

from typing import Any

from django import forms

from assessments.choices import (
    ICE_QUESTIONS,
    Consciousness,
    MotorWeakness,
    OxygenSupport,
    RaisedIcp,
    Seizure,
    Vasopressors,
)
from assessments.grading import ICE_ITEMS
from assessments.services import CHOICE_FIELDS, CRS_FIELDS, ICANS_DOMAIN_FIELDS

NOT_RECORDED = ("", "Not recorded")
ICE_ANSWERS = [("", "Not asked"), ("1", "Correct (1 point)"), ("0", "Incorrect (0 points)")]


def _radios(label: str, choices: type[Any]) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label, choices=[NOT_RECORDED, *choices.choices], required=False, widget=forms.RadioSelect
    )


class AssessmentForm(forms.Form):
    assessed_at = forms.DateTimeField(
        label="Assessed at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    temperature_c = forms.DecimalField(
        label="Temperature (°C)",
        max_digits=5,
        decimal_places=1,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )
    systolic_bp_mmhg = forms.IntegerField(
        label="Systolic blood pressure (mmHg)", required=False, widget=forms.NumberInput(attrs={"inputmode": "numeric"})
    )
    vasopressors = _radios("Vasopressors", Vasopressors)
    oxygen = _radios("Oxygen need", OxygenSupport)
    fever_masked = forms.BooleanField(
        label="Antipyretic or anti-cytokine therapy given (e.g. tocilizumab, corticosteroids)", required=False
    )
    unable_to_perform_ice = forms.BooleanField(
        label="Unarousable: unable to perform the ICE test (score 0)", required=False
    )
    level_of_consciousness = _radios("Level of consciousness", Consciousness)
    seizure = _radios("Seizures", Seizure)
    motor_weakness = _radios("Motor weakness", MotorWeakness)
    raised_icp = _radios("Raised intracranial pressure", RaisedIcp)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, question in ICE_QUESTIONS:
            self.fields[name] = forms.ChoiceField(
                label=question, choices=ICE_ANSWERS, required=False, widget=forms.RadioSelect
            )

    def findings(self) -> dict[str, Any]:
        """The cleaned answers as the service takes them: "" is not recorded (None), ICE answers as booleans."""
        data = self.cleaned_data
        values: dict[str, Any] = {name: data.get(name) or None for name in CHOICE_FIELDS}
        values.update({name: {"1": True, "0": False}.get(data.get(name) or "") for name in ICE_ITEMS})
        values.update(
            temperature_c=data.get("temperature_c"),
            systolic_bp_mmhg=data.get("systolic_bp_mmhg"),
            fever_masked=bool(data.get("fever_masked")),
            unable_to_perform_ice=bool(data.get("unable_to_perform_ice")),
        )
        return values

    def groups(self) -> dict[str, list[forms.BoundField]]:
        """The form's sections, in the order the nurse examines."""
        return {
            "crs": [self[name] for name in CRS_FIELDS],
            "ice": [self[name] for name in ICE_ITEMS],
            "icans": [self[name] for name in ICANS_DOMAIN_FIELDS],
        }


def initial_from(assessment: Any) -> dict[str, Any]:
    """The form's answers as an earlier assessment recorded them (to amend it)."""
    initial: dict[str, Any] = {"assessed_at": assessment.assessed_at}
    for name in ICE_ITEMS:
        value = getattr(assessment, name)
        initial[name] = "" if value is None else str(int(value))
    for name in ("temperature_c", "systolic_bp_mmhg", "fever_masked", "unable_to_perform_ice"):
        initial[name] = getattr(assessment, name)
    for name in CHOICE_FIELDS:
        initial[name] = getattr(assessment, name) or ""
    return initial


class AmendForm(AssessmentForm):
    """The whole assessment again, as corrected, with why; the original stays on record."""

    reason = forms.CharField(label="Reason for the amendment", max_length=2000)
