from __future__ import annotations

from datetime import timedelta

import pghistory
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models

from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from patients.choices import CareTeamRole
from patients.models import NO_DELETE, CareTeam, Patient


@pghistory.track()
class Alert(models.Model):
    """One alert per finding (docs/architecture.md §3): (kind, subject) is unique, resolved or not.

    An alert may stand for several subjects of one kind (`members`: the tests of one draw, the results of one
    finding) and resolves once none of them is `outstanding`. Repeats fold into the unresolved alert with the
    same `fold_key` (one per patient, enforced by an index) instead of raising a new one."""

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
    escalation_rung = models.PositiveSmallIntegerField(default=0, help_text="The last ladder rung it reached.")

    # Held alerts (a moderate overdue alert in its grace, quiet hours) reach nobody before `notify_at`; one
    # resolved before it was never shown.
    notify_at = models.DateTimeField()
    fold_key = models.CharField(max_length=80, blank=True, default="")
    members = ArrayField(models.BigIntegerField(), default=list, blank=True)
    outstanding = ArrayField(models.BigIntegerField(), default=list, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    last_occurred_at = models.DateTimeField()
    worsened_at = models.DateTimeField(null=True, blank=True)
    findings = models.JSONField(default=list, blank=True, help_text="What the alert names, latest value first seen.")

    class Meta:
        ordering = ["-severity", "-raised_at", "-id"]
        permissions = [("handle_alert", "Can acknowledge and resolve alerts")]
        triggers = [NO_DELETE]
        constraints = [
            # Subject first: it also serves "the alerts about this subject".
            models.UniqueConstraint(fields=["subject_type", "subject_id", "kind"], name="alert_one_per_condition"),
            # One unresolved alert per patient and fold key: repeats fold into it (the ON CONFLICT arbiter).
            models.UniqueConstraint(
                fields=["patient", "fold_key"],
                condition=~models.Q(status=AlertStatus.RESOLVED) & ~models.Q(fold_key=""),
                name="alert_fold_idx",
            ),
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
            # Escalation probe: only open high and critical alerts escalate.
            models.Index(
                fields=["notify_at"],
                condition=models.Q(status=AlertStatus.OPEN, severity__gte=AlertSeverity.HIGH),
                name="alert_escalation_due_idx",
            ),
            # "The condition of these subjects ended": unresolved alerts still waiting on them.
            GinIndex(
                fields=["outstanding"], condition=~models.Q(status=AlertStatus.RESOLVED), name="alert_outstanding_idx"
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

    @property
    def is_worsened(self) -> bool:
        return self.worsened_at is not None


class AlertEscalation(models.Model):
    """One rung of the ladder an alert reached: when, which role, and who it reached (none may be on duty)."""

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="escalations")
    rung = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=20, choices=CareTeamRole.choices)
    escalated_at = models.DateTimeField()
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    class Meta:
        ordering = ["alert", "rung"]
        triggers = [NO_DELETE]
        constraints = [models.UniqueConstraint(fields=["alert", "rung"], name="alert_escalation_once_per_rung")]

    def __str__(self) -> str:
        return f"Alert #{self.alert_id} rung {self.rung} ({self.role})"


@pghistory.track()
class EscalationRung(models.Model):
    """The escalation ladder: rows without a team are the default for teams that have none of their own.

    Rung `position` is due `after` the previous one (the first: after the alert was shown) and reaches the
    team's members of `role` who did not already have the alert."""

    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    position = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=20, choices=CareTeamRole.choices)
    after = models.DurationField()

    class Meta:
        ordering = ["care_team", "position"]
        constraints = [
            models.UniqueConstraint(fields=["care_team", "position"], name="rung_unique_position"),
            models.UniqueConstraint(
                fields=["position"], condition=models.Q(care_team__isnull=True), name="rung_unique_default_position"
            ),
            models.CheckConstraint(condition=models.Q(position__gte=1), name="rung_position_from_one"),
            models.CheckConstraint(condition=models.Q(after__gt=timedelta(0)), name="rung_after_positive"),
        ]

    def __str__(self) -> str:
        team = self.care_team.name if self.care_team else "default"
        return f"{team} rung {self.position}: {self.get_role_display()} after {self.after}"


@pghistory.track()
class TeamAlertPolicy(models.Model):
    """A team's choices: quiet hours hold moderate alerts (never high or critical) until they end."""

    care_team = models.OneToOneField(CareTeam, on_delete=models.PROTECT, related_name="alert_policy")
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "team alert policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | models.Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="policy_quiet_hours_both_or_none",
            ),
        ]

    def __str__(self) -> str:
        return f"Alert policy of {self.care_team.name}"


@pghistory.track()
class AlertRoute(models.Model):
    """Who each kind of alert is for (audiences as data); `then_audience` takes over an unresolved alert
    after `then_after` (e.g. a result the lab has not reported reaches the care team)."""

    kind = models.CharField(max_length=40, choices=AlertKind.choices, unique=True)
    audience = models.CharField(max_length=20, choices=AlertAudience.choices)
    then_audience = models.CharField(max_length=20, choices=AlertAudience.choices, blank=True)
    then_after = models.DurationField(null=True, blank=True)

    class Meta:
        ordering = ["kind"]
        triggers = [NO_DELETE]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(then_audience="", then_after__isnull=True)
                | (~models.Q(then_audience="") & models.Q(then_after__gt=timedelta(0))),
                name="route_then_both_or_none",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.get_audience_display()}"
