from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from patients.models import NO_DELETE, Patient


@pghistory.track()
class Alert(models.Model):
    """One alert per condition instance: (kind, subject) is unique, resolved or not."""

    kind = models.CharField(max_length=40, choices=AlertKind.choices)
    severity = models.PositiveSmallIntegerField(choices=AlertSeverity.choices)
    status = models.CharField(max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="alerts")
    # No single-column indexes where the unique constraint or nothing needs one: every alert the sweep raises
    # pays for each index it writes.
    subject_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+", db_index=False)
    subject_id = models.BigIntegerField()
    subject = GenericForeignKey("subject_type", "subject_id")
    summary = models.CharField(max_length=200)
    audience = models.CharField(max_length=20, choices=AlertAudience.choices, default=AlertAudience.CARE_TEAM)
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    acknowledge_comment = models.TextField(blank=True)

    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    resolution_reason = models.CharField(max_length=40, choices=ResolutionReason.choices, blank=True)
    resolve_comment = models.TextField(blank=True)

    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="escalated_alerts")

    class Meta:
        ordering = ["-severity", "-raised_at", "-id"]
        permissions = [("handle_alert", "Can acknowledge and resolve alerts")]
        triggers = [NO_DELETE]
        constraints = [
            # Subject first: it also serves "the alerts about this subject".
            models.UniqueConstraint(fields=["subject_type", "subject_id", "kind"], name="alert_one_per_condition"),
            models.CheckConstraint(
                condition=~models.Q(status=AlertStatus.RESOLVED) | models.Q(resolved_at__isnull=False),
                name="alert_resolved_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(status=AlertStatus.OPEN)
                | models.Q(acknowledged_at__isnull=False)
                | models.Q(resolved_at__isnull=False),
                name="alert_handled_has_time",
            ),
        ]
        indexes = [
            # Escalation probe: open, not yet escalated, oldest first.
            models.Index(
                fields=["raised_at"],
                condition=models.Q(status=AlertStatus.OPEN, escalated_at__isnull=True),
                name="alert_escalation_due_idx",
            ),
            # Inbox: unresolved alerts by patient.
            models.Index(
                fields=["patient", "-severity", "-raised_at"],
                condition=~models.Q(status=AlertStatus.RESOLVED),
                name="alert_unresolved_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_escalated(self) -> bool:
        return self.escalated_at is not None
