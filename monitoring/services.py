"""Writes on monitoring tests, including the overdue sweep (DESIGN.md §3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from alerts.choices import AlertKind, AlertSeverity, ResolutionReason
from alerts.services import AlertCondition, alerts_raise, alerts_resolve_for_subject
from labflow.errors import Conflict
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MAX_GRACE_PERIOD, LabTest, MonitoringTest
from patients.models import Patient

OPEN_STATUSES = (MonitoringTestStatus.SCHEDULED, MonitoringTestStatus.OVERDUE)


class MonitoringTestConflict(Conflict):
    """The monitoring test is not in a state that allows this step (HTTP 409)."""


def monitoring_test_schedule(
    *,
    patient: Patient,
    lab_test: LabTest,
    due_at: datetime,
    grace_period: timedelta,
    user: User | None,
    now: datetime,
) -> MonitoringTest:
    if timezone.is_naive(due_at):
        raise ValidationError({"due_at": "Due time must include a time zone."})
    if grace_period < timedelta(0):
        raise ValidationError({"grace_period": "Grace period cannot be negative."})
    if grace_period > MAX_GRACE_PERIOD:
        raise ValidationError({"grace_period": "Grace period cannot exceed 7 days."})
    if not lab_test.active:
        raise ValidationError({"lab_test": "This test is no longer offered."})
    return MonitoringTest.objects.create(
        patient=patient,
        lab_test=lab_test,
        due_at=due_at,
        grace_period=grace_period,
        deadline=due_at + grace_period,
        created_at=now,
        created_by=user,
    )


def _locked_open(monitoring_test: MonitoringTest, action: str) -> MonitoringTest:
    locked = MonitoringTest.objects.select_for_update().get(pk=monitoring_test.pk)
    if locked.status not in OPEN_STATUSES:
        raise MonitoringTestConflict(f"Cannot {action}: the test is already {locked.get_status_display().lower()}.")
    return locked


@transaction.atomic
def monitoring_test_record_collection(*, monitoring_test: MonitoringTest, user: User, now: datetime) -> MonitoringTest:
    """The specimen was collected: the test is satisfied and its overdue alert resolves itself."""
    locked = _locked_open(monitoring_test, "record collection")
    locked.status = MonitoringTestStatus.SATISFIED
    locked.collected_at = now
    locked.collected_by = user
    locked.save(update_fields=["status", "collected_at", "collected_by"])
    alerts_resolve_for_subject(subject=locked, reason=ResolutionReason.SPECIMEN_COLLECTED, now=now, user=user)
    return locked


@transaction.atomic
def monitoring_test_cancel(
    *, monitoring_test: MonitoringTest, user: User, now: datetime, reason: str
) -> MonitoringTest:
    if not reason.strip():
        raise ValidationError({"reason": "A reason is required to cancel a monitoring test."})
    locked = _locked_open(monitoring_test, "cancel")
    locked.status = MonitoringTestStatus.CANCELLED
    locked.cancelled_at = now
    locked.cancelled_by = user
    locked.cancel_reason = reason
    locked.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason"])
    alerts_resolve_for_subject(subject=locked, reason=ResolutionReason.TEST_CANCELLED, now=now, user=user)
    return locked


# One statement flips a batch of scheduled, past-deadline tests to overdue. The partial
# index on deadline makes the idle case a single probe; SKIP LOCKED lets sweeps share work.
_FLAG_OVERDUE_SQL = """
WITH due AS (
    SELECT id FROM monitoring_monitoringtest
    WHERE status = 'scheduled' AND deadline <= COALESCE(%(now)s::timestamptz, statement_timestamp())
    ORDER BY deadline
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
UPDATE monitoring_monitoringtest AS mt
SET status = 'overdue', flagged_at = COALESCE(%(now)s::timestamptz, statement_timestamp())
FROM due, monitoring_labtest AS lt
WHERE mt.id = due.id AND lt.id = mt.lab_test_id
RETURNING mt.id, mt.patient_id, lt.name
"""


def monitoring_tests_flag_overdue(*, now: datetime | None = None, batch_size: int = 10_000) -> list[int]:
    """The overdue sweep: flag every scheduled test past its deadline and raise its alert, exactly once.

    Level-triggered: whatever is past its deadline and still scheduled is flagged, so a
    missed tick only delays an alert. `now=None` (production) uses the database clock.
    Returns the ids of the alerts raised.
    """
    alert_ids: list[int] = []
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_FLAG_OVERDUE_SQL, {"now": now, "batch": batch_size})
                rows = cursor.fetchall()
            alert_ids += alerts_raise(
                kind=AlertKind.COLLECTION_OVERDUE,
                severity=AlertSeverity.MODERATE,
                subject_model=MonitoringTest,
                conditions=[
                    AlertCondition(subject_id=test_id, patient_id=patient_id, summary=f"{name}: collection overdue")
                    for test_id, patient_id, name in rows
                ],
                now=now,
            )
        if len(rows) < batch_size:
            return alert_ids


def sweep_heartbeat_record(*, name: str, flagged: int) -> None:
    """Upsert the sweep's heartbeat with the database clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO monitoring_sweepheartbeat (name, last_run_at, last_flagged)
            VALUES (%s, statement_timestamp(), %s)
            ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, last_flagged = EXCLUDED.last_flagged
            """,
            [name, flagged],
        )
