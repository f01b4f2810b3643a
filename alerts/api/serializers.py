from __future__ import annotations

from typing import Any

from rest_framework import serializers

from alerts.models import Alert, AlertEscalation


class AlertEscalationSerializer(serializers.ModelSerializer[AlertEscalation]):
    recipients: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = AlertEscalation
        fields = ["rung", "role", "escalated_at", "recipients"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer[Alert]):
    subject_type = serializers.CharField(source="subject_type.model", read_only=True)
    escalated = serializers.BooleanField(source="is_escalated", read_only=True)
    worsened = serializers.BooleanField(source="is_worsened", read_only=True)
    escalations = AlertEscalationSerializer(many=True, read_only=True)
    escalated_to: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = Alert
        fields = [
            "id", "kind", "severity", "status", "patient", "subject_type", "subject_id", "summary", "raised_at",
            "acknowledged_at", "acknowledged_by", "acknowledge_comment",
            "resolved_at", "resolved_by", "resolution_reason", "resolve_comment",
            "escalated", "escalated_at", "escalated_to", "escalation_rung", "escalations",
            "audience", "notify_at", "occurrences", "last_occurred_at", "worsened", "worsened_at", "findings",
        ]  # fmt: skip
        read_only_fields = fields


class AlertStepSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
