from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.fields import VisibleRelatedField
from monitoring.selectors import monitoring_test_list
from patients.selectors import patient_list
from specimens.choices import CustodyEventKind, RejectionReason, SpecimenCondition
from specimens.models import Container, CustodyEvent, Specimen, TestSpecimenRequirement


class ContainerSerializer(serializers.ModelSerializer[Container]):
    class Meta:
        model = Container
        fields = ["id", "code", "name", "cap_colour", "additive", "specimen_type", "draw_order"]
        read_only_fields = fields


class RequirementSerializer(serializers.ModelSerializer[TestSpecimenRequirement]):
    lab_test_name = serializers.CharField(source="lab_test.name", read_only=True)
    loinc_code = serializers.CharField(source="lab_test.loinc_code", read_only=True)
    container = ContainerSerializer(read_only=True)

    class Meta:
        model = TestSpecimenRequirement
        fields = ["lab_test", "lab_test_name", "loinc_code", "container", "min_volume_ml",
                  "stability_room_temp", "stability_refrigerated"]  # fmt: skip
        read_only_fields = fields


class CustodyEventSerializer(serializers.ModelSerializer[CustodyEvent]):
    by_username = serializers.CharField(source="by.username", read_only=True)

    class Meta:
        model = CustodyEvent
        fields = ["id", "kind", "at", "by", "by_username", "location", "note"]
        read_only_fields = fields


class SpecimenSerializer(serializers.ModelSerializer[Specimen]):
    container = ContainerSerializer(read_only=True)
    monitoring_tests: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )
    custody_events = CustodyEventSerializer(many=True, read_only=True)

    class Meta:
        model = Specimen
        fields = [
            "id", "accession", "patient", "container", "specimen_type", "status", "monitoring_tests",
            "collected_at", "collected_by", "received_at", "received_by", "condition", "stability_exceeded",
            "rejected_at", "rejected_by", "rejection_reason", "rejection_comment", "custody_events",
        ]  # fmt: skip
        read_only_fields = fields


class CollectSerializer(serializers.Serializer[Any]):
    patient = VisibleRelatedField(patient_list)
    wristband = serializers.CharField(max_length=40, help_text="The MRN scanned from the patient's wristband.")
    monitoring_tests = serializers.ListField(
        child=VisibleRelatedField(monitoring_test_list), allow_empty=False, max_length=50
    )
    location = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)


class ReceiveSerializer(serializers.Serializer[Any]):
    accession = serializers.CharField(max_length=20)
    condition = serializers.ChoiceField(choices=SpecimenCondition.choices, default=SpecimenCondition.ROOM)
    location = serializers.CharField(max_length=100, required=False, default="Laboratory", allow_blank=True)


class RejectSerializer(serializers.Serializer[Any]):
    reason = serializers.ChoiceField(choices=RejectionReason.choices)
    comment = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class CustodySerializer(serializers.Serializer[Any]):
    # Only in transit, aliquoted, stored and disposed are recorded directly; the service refuses the rest.
    kind = serializers.ChoiceField(choices=CustodyEventKind.choices)
    location = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)
