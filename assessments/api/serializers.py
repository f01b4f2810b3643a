from __future__ import annotations

from typing import Any

from rest_framework import serializers

from assessments.choices import Consciousness, MotorWeakness, OxygenSupport, RaisedIcp, Seizure, Vasopressors
from assessments.models import Assessment
from assessments.services import FINDING_FIELDS
from core.fields import VisibleRelatedField
from patients.selectors import patient_list

_NOT_RECORDED = "Omitted or null: not recorded (a grade it could change stays pending)."


def _choice(choices: type[Any]) -> Any:
    return serializers.ChoiceField(choices=choices.choices, allow_null=True, required=False, help_text=_NOT_RECORDED)


def _ice_item(help_text: str) -> Any:
    return serializers.BooleanField(allow_null=True, required=False, help_text=f"{help_text}. {_NOT_RECORDED}")


class FindingsSerializer(serializers.Serializer[Any]):
    """The bedside findings (ASTCT 2019). The grades are computed from them, never sent."""

    temperature_c = serializers.DecimalField(
        max_digits=5, decimal_places=1, allow_null=True, required=False, help_text=f"°C. {_NOT_RECORDED}"
    )
    systolic_bp_mmhg = serializers.IntegerField(allow_null=True, required=False, help_text=f"mmHg. {_NOT_RECORDED}")
    vasopressors = _choice(Vasopressors)
    oxygen = _choice(OxygenSupport)
    fever_masked = serializers.BooleanField(
        required=False, help_text="Antipyretic or anti-cytokine therapy was given: fever is no longer required."
    )
    oriented_year = _ice_item("ICE orientation: the year")
    oriented_month = _ice_item("ICE orientation: the month")
    oriented_city = _ice_item("ICE orientation: the city")
    oriented_hospital = _ice_item("ICE orientation: the hospital")
    names_object_1 = _ice_item("ICE naming: first object")
    names_object_2 = _ice_item("ICE naming: second object")
    names_object_3 = _ice_item("ICE naming: third object")
    follows_commands = _ice_item('ICE: follows simple commands (e.g. "show me 2 fingers")')
    writes_sentence = _ice_item("ICE: writes a standard sentence")
    counts_backwards = _ice_item("ICE attention: counts backwards from 100 by 10")
    unable_to_perform_ice = serializers.BooleanField(
        required=False, help_text="Unarousable and unable to perform ICE (score 0, ICANS grade 4)."
    )
    level_of_consciousness = _choice(Consciousness)
    seizure = _choice(Seizure)
    motor_weakness = _choice(MotorWeakness)
    raised_icp = _choice(RaisedIcp)


class AssessmentCreateSerializer(FindingsSerializer):
    patient = VisibleRelatedField(patient_list)
    assessed_at = serializers.DateTimeField(help_text="When the patient was assessed (not in the future).")


class AssessmentAmendSerializer(FindingsSerializer):
    """The corrections: findings sent replace the original's, findings not sent keep the original's value."""

    reason = serializers.CharField(max_length=2000)
    assessed_at = serializers.DateTimeField(required=False, help_text="Default: the original's.")


class AssessmentSerializer(serializers.ModelSerializer[Assessment]):
    recorded_by_username = serializers.CharField(source="recorded_by.username", read_only=True)
    superseded_by = serializers.SerializerMethodField()

    class Meta:
        model = Assessment
        fields = [
            "id", "patient", "assessed_at", "recorded_at", "recorded_by", "recorded_by_username",
            *FINDING_FIELDS,
            "hypotension_below_systolic_mmhg",
            "crs_grade", "crs_at_least", "crs_at_most", "crs_decisive", "crs_missing",
            "ice_score", "icans_grade", "icans_at_least", "icans_at_most", "icans_decisive", "icans_missing",
            "is_current", "supersedes", "superseded_by", "amendment_reason",
        ]  # fmt: skip
        read_only_fields = fields

    def get_superseded_by(self, assessment: Assessment) -> int | None:
        """The amendment that replaced this assessment, if any."""
        try:
            return assessment.superseded_by.pk
        except Assessment.superseded_by.RelatedObjectDoesNotExist:
            return None
