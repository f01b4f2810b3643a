from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.fields import VisibleRelatedField
from monitoring.models import MAX_GRACE_PERIOD, LabTest, MonitoringTest
from monitoring.selectors import lab_test_list
from patients.selectors import patient_list


class LabTestSerializer(serializers.ModelSerializer[LabTest]):
    class Meta:
        model = LabTest
        fields = ["id", "name", "loinc_code", "kind"]
        read_only_fields = fields


class MonitoringTestSerializer(serializers.ModelSerializer[MonitoringTest]):
    lab_test = LabTestSerializer(read_only=True)
    grace_minutes = serializers.SerializerMethodField()
    alert = serializers.SerializerMethodField()

    class Meta:
        model = MonitoringTest
        fields = [
            "id", "patient", "lab_test", "due_at", "grace_minutes", "deadline", "status", "flagged_at",
            "created_at", "collected_at", "collected_by", "cancelled_at", "cancelled_by", "cancel_reason", "alert",
        ]  # fmt: skip
        read_only_fields = fields

    def get_grace_minutes(self, obj: MonitoringTest) -> int:
        return int(obj.grace_period.total_seconds() // 60)

    def get_alert(self, obj: MonitoringTest) -> int | None:
        alert_ids: dict[int, int] = self.context.get("alert_ids", {})
        return alert_ids.get(obj.pk)


class MonitoringTestCreateSerializer(serializers.Serializer[Any]):
    patient = VisibleRelatedField(patient_list)
    lab_test = serializers.PrimaryKeyRelatedField(queryset=lab_test_list())
    due_at = serializers.DateTimeField()
    grace_minutes = serializers.IntegerField(min_value=0, max_value=int(MAX_GRACE_PERIOD.total_seconds() // 60))


class CommentSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class CancelSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)
