"""Writes on alerts. Every function runs in one transaction and takes the actor and time explicitly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction

from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.models import Alert
from labflow.errors import Conflict
from patients.choices import CareTeamRole


class AlertConflict(Conflict):
    """The alert is not in a state that allows this step (HTTP 409)."""


@dataclass(frozen=True)
class AlertCondition:
    subject_id: int
    patient_id: int
    summary: str


_RAISE_SQL = """
INSERT INTO alerts_alert (kind, severity, status, patient_id, subject_type_id, subject_id, summary, audience,
                          raised_at, updated_at, acknowledge_comment, resolution_reason, resolve_comment)
SELECT %(kind)s, %(severity)s, 'open', c.patient_id, %(subject_type)s, c.subject_id, c.summary, %(audience)s,
       COALESCE(%(now)s::timestamptz, statement_timestamp()), COALESCE(%(now)s::timestamptz, statement_timestamp()),
       '', '', ''
FROM unnest(%(subject_ids)s::bigint[], %(patient_ids)s::bigint[], %(summaries)s::text[])
     AS c(subject_id, patient_id, summary)
ON CONFLICT ON CONSTRAINT alert_one_per_condition DO NOTHING
RETURNING id
"""


def alerts_raise(
    *,
    kind: AlertKind,
    severity: AlertSeverity,
    subject_model: type[models.Model],
    conditions: Sequence[AlertCondition],
    now: datetime | None = None,
    audience: AlertAudience = AlertAudience.CARE_TEAM,
) -> list[int]:
    """Raise one alert per condition, set-based; a condition that ever had an alert gets none.

    `now=None` stamps the alerts with the database clock.
    """
    if not conditions:
        return []
    params: dict[str, Any] = {
        "kind": kind.value,
        "audience": audience.value,
        "severity": int(severity),
        "subject_type": ContentType.objects.get_for_model(subject_model).pk,
        "now": now,
        "subject_ids": [c.subject_id for c in conditions],
        "patient_ids": [c.patient_id for c in conditions],
        "summaries": [c.summary for c in conditions],
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RAISE_SQL, params)
        return [row[0] for row in cursor.fetchall()]


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user: User, now: datetime, comment: str = "") -> Alert:
    alert = _locked(alert)
    if alert.status != AlertStatus.OPEN:
        raise AlertConflict(f"Alert is already {alert.get_status_display().lower()}.")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by = user
    alert.acknowledge_comment = comment
    alert.updated_at = now
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "acknowledge_comment", "updated_at"])
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, user: User, now: datetime, comment: str = "") -> Alert:
    alert = _locked(alert)
    if alert.status == AlertStatus.RESOLVED:
        raise AlertConflict("Alert is already resolved.")
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolved_by = user
    alert.resolution_reason = ResolutionReason.MANUAL
    alert.resolve_comment = comment
    alert.updated_at = now
    alert.save(
        update_fields=["status", "resolved_at", "resolved_by", "resolution_reason", "resolve_comment", "updated_at"]
    )
    return alert


def alerts_resolve_for_subject(
    *,
    subject: models.Model,
    reason: ResolutionReason,
    now: datetime,
    user: User | None = None,
    kinds: Sequence[AlertKind] | None = None,
) -> int:
    """Resolve the unresolved alerts (of `kinds`, or all) about `subject` because their condition has ended."""
    return alerts_resolve_for_subjects(
        subject_model=type(subject), subject_ids=[subject.pk], reason=reason, now=now, user=user, kinds=kinds
    )


def alerts_resolve_for_subjects(
    *,
    subject_model: type[models.Model],
    subject_ids: Sequence[int],
    reason: ResolutionReason,
    now: datetime,
    user: User | None = None,
    kinds: Sequence[AlertKind] | None = None,
    comment: str = "",
) -> int:
    """Resolve, in one statement, the unresolved alerts (of `kinds`, or all) about these subjects: who, when, why.

    Resolved alerts are never escalated (escalation takes open alerts only)."""
    if not subject_ids:
        return 0
    alerts = Alert.objects.filter(
        subject_type=ContentType.objects.get_for_model(subject_model), subject_id__in=list(subject_ids)
    )
    if kinds is not None:
        alerts = alerts.filter(kind__in=kinds)
    return alerts.exclude(status=AlertStatus.RESOLVED).update(
        status=AlertStatus.RESOLVED,
        resolved_at=now,
        resolved_by=user,
        resolution_reason=reason,
        resolve_comment=comment,
        updated_at=now,
    )


_ESCALATE_SQL = """
WITH due AS (
    SELECT id FROM alerts_alert
    WHERE status = 'open' AND escalated_at IS NULL
      AND raised_at <= COALESCE(%(now)s::timestamptz, statement_timestamp()) - %(after)s
    ORDER BY raised_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
UPDATE alerts_alert AS a
SET escalated_at = COALESCE(%(now)s::timestamptz, statement_timestamp()),
    updated_at = COALESCE(%(now)s::timestamptz, statement_timestamp()),
    severity = GREATEST(a.severity, %(high)s)
FROM due WHERE a.id = due.id
RETURNING a.id
"""

_ESCALATE_RECIPIENTS_SQL = """
INSERT INTO alerts_alert_escalated_to (alert_id, user_id)
SELECT a.id, m.user_id
FROM alerts_alert a
JOIN patients_patient p ON p.id = a.patient_id
JOIN patients_careteammembership m ON m.care_team_id = p.care_team_id AND m.role = %(role)s
WHERE a.id = ANY(%(ids)s)
ON CONFLICT DO NOTHING
"""


def alerts_escalate_unacknowledged(*, now: datetime | None = None, batch_size: int = 5000) -> list[int]:
    """Escalate, once, every alert still open after ALERT_ESCALATE_AFTER to the care team's oncologists.

    Filtering runs in SQL on a partial index; `now=None` uses the database clock.
    """
    escalated: list[int] = []
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            params: dict[str, Any] = {
                "now": now,
                "after": settings.ALERT_ESCALATE_AFTER,
                "batch": batch_size,
                "high": int(AlertSeverity.HIGH),
            }
            cursor.execute(_ESCALATE_SQL, params)
            ids = [row[0] for row in cursor.fetchall()]
            if ids:
                cursor.execute(_ESCALATE_RECIPIENTS_SQL, {"ids": ids, "role": CareTeamRole.ONCOLOGIST.value})
        escalated.extend(ids)
        if len(ids) < batch_size:
            return escalated
