from __future__ import annotations

from typing import Any

from rest_framework import serializers

from alerts.selectors import alert_list
from core.fields import VisibleRelatedField
from monitoring.models import LabTest
from results.models import CriticalCall, Result
from specimens.selectors import specimen_list


class ResultSerializer(serializers.ModelSerializer[Result]):
    lab_test_name = serializers.CharField(source="lab_test.name", read_only=True)
    loinc_code = serializers.CharField(source="lab_test.loinc_code", read_only=True)
    accession = serializers.CharField(source="specimen.accession", read_only=True)

    class Meta:
        model = Result
        fields = [
            "id", "patient", "specimen", "accession", "lab_test", "lab_test_name", "loinc_code",
            "value_numeric", "value_text", "unit", "received_value", "received_unit", "observed_at",
            "reference_low", "reference_high", "flag", "delta_flag",
            "ctcae_term", "ctcae_grade", "ctcae_version", "ctcae_lab_only", "ctcae_assumed",
            "status", "version", "root", "supersedes", "is_current", "amendment_reason", "source",
            "entered_at", "entered_by", "verified_at", "verified_by", "reviewed_at", "reviewed_by", "review_comment",
        ]  # fmt: skip
        read_only_fields = fields


class ResultValueSerializer(serializers.Serializer[Any]):
    lab_test = serializers.PrimaryKeyRelatedField(queryset=LabTest.objects.filter(result_spec__isnull=False))
    value = serializers.CharField(max_length=60)
    unit = serializers.CharField(max_length=30, allow_blank=True, default="")


class ResultEntrySerializer(serializers.Serializer[Any]):
    specimen = VisibleRelatedField(specimen_list)
    results = ResultValueSerializer(many=True, allow_empty=False, max_length=200)  # type: ignore[call-arg]


class ResultIdsSerializer(serializers.Serializer[Any]):
    results = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=1000)
    comment = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class AmendSerializer(serializers.Serializer[Any]):
    value = serializers.CharField(max_length=60)
    unit = serializers.CharField(max_length=30, allow_blank=True, default="")
    reason = serializers.CharField(max_length=2000)


class CommentSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class VerifyOutcomeSerializer(serializers.Serializer[Any]):
    verified = ResultSerializer(many=True)
    skipped_own = serializers.ListField(child=serializers.IntegerField())
    alerts = serializers.ListField(child=serializers.IntegerField())


class CriticalCallSerializer(serializers.ModelSerializer[CriticalCall]):
    alert = VisibleRelatedField(alert_list)

    class Meta:
        model = CriticalCall
        fields = ["id", "alert", "called_at", "caller", "recipient", "read_back_confirmed", "note"]
        read_only_fields = ["id", "called_at", "caller"]
