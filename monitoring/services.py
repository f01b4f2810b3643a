"""Writes on monitoring tests, including the overdue sweep (docs/architecture.md §3)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from alerts.choices import AlertKind, AlertSeverity, ResolutionReason
from alerts.services import alerts_raise_rows, alerts_resolve_for_subject
from core import locking
from core.errors import Conflict
from core.times import after_elapsed
from monitoring.choices import AWAITING_COLLECTION, AWAITING_RESULT, LabTestKind, MonitoringTestStatus
from monitoring.models import MAX_GRACE_PERIOD, SWEEP_AUDIT_SETTING, LabTest, MonitoringTest
from patients.models import Patient

PLAUSIBLE_PAST = timedelta(days=366)
PLAUSIBLE_FUTURE = timedelta(days=5 * 366)


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
    recollection_of: MonitoringTest | None = None,
) -> MonitoringTest:
    if timezone.is_naive(due_at):
        raise ValidationError({"due_at": "Due time must include a time zone."})
    if not now - PLAUSIBLE_PAST <= due_at <= now + PLAUSIBLE_FUTURE:
        raise ValidationError({"due_at": "Due time must lie within a year before and five years after now."})
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
        deadline=after_elapsed(due_at, grace_period),
        created_at=now,
        created_by=user,
        recollection_of=recollection_of,
    )


def _locked(monitoring_test: MonitoringTest, allowed: Iterable[str], action: str) -> MonitoringTest:
    row = locking.locked(monitoring_test, "lab_test")
    if row.status not in allowed:
        raise MonitoringTestConflict(f"Cannot {action}: the test is {row.get_status_display().lower()}.")
    return row


@transaction.atomic
def monitoring_test_record_collection(*, monitoring_test: MonitoringTest, user: User, now: datetime) -> MonitoringTest:
    """The specimen was collected: the collection stage is satisfied (its overdue alert resolves itself)
    and a verified result is now expected within the test's turnaround time."""
    locked = _locked(monitoring_test, AWAITING_COLLECTION, "record collection")
    if locked.lab_test.is_bedside:
        raise MonitoringTestConflict(f"{locked.lab_test.name} is a bedside assessment: it is recorded, not collected.")
    locked.status = MonitoringTestStatus.COLLECTED
    locked.collected_at = now
    locked.collected_by = user
    locked.result_deadline = now + locked.lab_test.turnaround
    locked.save(update_fields=["status", "collected_at", "collected_by", "result_deadline"])
    alerts_resolve_for_subject(
        subject=locked,
        kinds=[AlertKind.COLLECTION_OVERDUE],
        reason=ResolutionReason.SPECIMEN_COLLECTED,
        now=now,
        user=user,
    )
    return locked


@transaction.atomic
def monitoring_test_record_assessment(*, monitoring_test: MonitoringTest, user: User, now: datetime) -> MonitoringTest:
    """A bedside assessment was recorded for this due (or overdue) assessment test: it is satisfied at once (no
    specimen, no result stage) and its overdue alert stops waiting on it. The caller links the assessment to it."""
    locked = _locked(monitoring_test, AWAITING_COLLECTION, "record an assessment")
    if not locked.lab_test.is_bedside:
        raise MonitoringTestConflict(f"{locked.lab_test.name} is a specimen test: it is collected, not assessed.")
    locked.status = MonitoringTestStatus.SATISFIED
    locked.save(update_fields=["status"])
    alerts_resolve_for_subject(
        subject=locked, kinds=[AlertKind.ASSESSMENT_OVERDUE], reason=ResolutionReason.ASSESSMENT_RECORDED, now=now,
        user=user,
    )  # fmt: skip
    return locked


@transaction.atomic
def monitoring_test_record_result(*, monitoring_test: MonitoringTest, user: User, now: datetime) -> MonitoringTest:
    """Every analyte of the test has a verified result: the test is satisfied and a result-overdue
    alert resolves itself."""
    locked = _locked(monitoring_test, AWAITING_RESULT, "record a result")
    locked.status = MonitoringTestStatus.SATISFIED
    locked.save(update_fields=["status"])
    alerts_resolve_for_subject(
        subject=locked, kinds=[AlertKind.RESULT_OVERDUE], reason=ResolutionReason.RESULT_VERIFIED, now=now, user=user
    )
    return locked


@transaction.atomic
def monitoring_test_schedule_recollection(
    *, monitoring_test: MonitoringTest, user: User, now: datetime, grace_period: timedelta, reason: str
) -> MonitoringTest:
    """The specimen was rejected: this test is closed and a new one is due now (a new condition instance,
    so it can raise its own alerts); open alerts of the old one resolve with the reason."""
    locked = _locked(monitoring_test, AWAITING_RESULT, "schedule a recollection")
    locked.status = MonitoringTestStatus.RECOLLECT
    locked.cancel_reason = reason
    locked.save(update_fields=["status", "cancel_reason"])
    alerts_resolve_for_subject(subject=locked, reason=ResolutionReason.SPECIMEN_REJECTED, now=now, user=user)
    return monitoring_test_schedule(
        patient=locked.patient,
        lab_test=locked.lab_test,
        due_at=now,
        grace_period=grace_period,
        user=user,
        now=now,
        recollection_of=locked,
    )


@transaction.atomic
def monitoring_test_cancel(
    *, monitoring_test: MonitoringTest, user: User, now: datetime, reason: str
) -> MonitoringTest:
    if not reason.strip():
        raise ValidationError({"reason": "A reason is required to cancel a monitoring test."})
    locked = _locked(monitoring_test, (*AWAITING_COLLECTION, *AWAITING_RESULT), "cancel")
    locked.status = MonitoringTestStatus.CANCELLED
    locked.cancelled_at = now
    locked.cancelled_by = user
    locked.cancel_reason = reason
    locked.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason"])
    alerts_resolve_for_subject(subject=locked, reason=ResolutionReason.TEST_CANCELLED, now=now, user=user)
    return locked


def monitoring_tests_hold_result_deadline(*, test_ids: Sequence[int], until: datetime) -> int:
    """The specimen is on its way to the lab: its tests' results are not overdue before `until` (the transit
    limit), so nobody is told a result is late while the lab cannot have it."""
    return MonitoringTest.objects.filter(
        pk__in=list(test_ids), status=MonitoringTestStatus.COLLECTED, result_deadline__lt=until
    ).update(result_deadline=until)


def monitoring_tests_restore_result_deadline(*, test_ids: Sequence[int]) -> int:
    """The specimen arrived: its tests' results are due by collection plus turnaround again (at once if late)."""
    return MonitoringTest.objects.filter(pk__in=list(test_ids), status=MonitoringTestStatus.COLLECTED).update(
        result_deadline=F("collected_at")
        + Subquery(LabTest.objects.filter(pk=OuterRef("lab_test_id")).values("turnaround"))
    )


# Each statement flips a batch of past-deadline rows of one stage and groups them into draws. The partial indexes
# on the deadlines make the idle case one probe per stage; SKIP LOCKED lets sweeps share work. The same statement
# writes each flipped row's audit event (MonitoringTestFlagEvent: new status, both flagged-at columns, the
# pghistory context) and arms `labflow.sweep` with its own statement_timestamp(), so the full snapshot trigger
# skips exactly these rows (monitoring/models.py; docs/architecture.md §3 "The sweep's audit"). It returns the
# flipped tests grouped into draws, one row per alert to raise (test names sorted by code point, COLLATE "C", as
# Python sorts them). A draw is of one kind of test: bedside assessments past their deadline raise their own alert
# (kind, text and severity from _BEDSIDE), never a specimen collection alert, and fold apart from the specimens.
# The alerts are a second statement, run only when something was flipped: in the same statement their INSERT's
# statement triggers and planning cost every idle tick ~2.5x (docs/benchmarks.md).
_FLAG_SQL = """
WITH due AS (
    SELECT id FROM monitoring_monitoringtest
    WHERE status = %(from_status)s AND {deadline} <= COALESCE(%(now)s::timestamptz, statement_timestamp())
    ORDER BY {deadline}
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), armed AS (
    SELECT set_config('{setting}', statement_timestamp()::text, true) AS value
), flagged AS (
    UPDATE monitoring_monitoringtest AS mt
    SET status = %(to_status)s, {flagged_at} = COALESCE(%(now)s::timestamptz, statement_timestamp())
    FROM due, monitoring_labtest AS lt, armed
    WHERE mt.id = due.id AND lt.id = mt.lab_test_id AND armed.value IS NOT NULL
    RETURNING mt.id, mt.patient_id, lt.name COLLATE "C" AS name, mt.{draw} AS draw, mt.status, mt.flagged_at,
        mt.result_flagged_at, lt.kind
), context AS (
    SELECT _pgh_attach_context() AS value
), audited AS (
    INSERT INTO {event_table} (pgh_created_at, pgh_label, pgh_obj_id, pgh_context_id, status, flagged_at,
        result_flagged_at)
    SELECT now(), flagged.status, flagged.id, context.value, flagged.status, flagged.flagged_at,
        flagged.result_flagged_at
    FROM flagged, context
), draws AS (
    SELECT patient_id, draw, kind, min(id) AS subject_id, array_agg(id ORDER BY id) AS members,
        string_agg(DISTINCT name, ', ' ORDER BY name) AS names
    FROM flagged
    GROUP BY patient_id, draw, kind
), conditions AS (
    SELECT subject_id, patient_id,
        left(CASE WHEN kind = %(specimen)s THEN %(text)s ELSE %(bedside_text)s END || ': ' || names, 200) AS summary,
        %(draw_key)s || CASE WHEN kind = %(specimen)s THEN '' ELSE ':' || kind END || ':' || {iso_draw} AS fold_key,
        members::text, ', ' || names AS addendum, cardinality(members) AS tests, kind
    FROM draws
)
SELECT subject_id, patient_id, summary, fold_key, members, addendum, tests, kind FROM conditions
"""

# The draw's time as Python's datetime.isoformat() writes it (UTC; microseconds only when there are any), so fold
# keys match those of alerts raised before the draws were grouped in SQL.
_ISO_DRAW = (
    "to_char(draw AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN extract(microseconds FROM draw)::bigint %% 1000000 <> 0"
    " THEN to_char(draw AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00'"
)

_STAGES = (
    # (from, to, deadline column, flagged-at column, what makes one draw, alert kind, alert text)
    (MonitoringTestStatus.SCHEDULED, MonitoringTestStatus.OVERDUE, "deadline", "flagged_at", "due_at",
     AlertKind.COLLECTION_OVERDUE, "Collection overdue"),
    (MonitoringTestStatus.COLLECTED, MonitoringTestStatus.RESULT_OVERDUE, "result_deadline", "result_flagged_at",
     "collected_at", AlertKind.RESULT_OVERDUE, "Result overdue"),
)  # fmt: skip

# A bedside assessment past its deadline (it is never collected, so only the first stage flags it): its own kind,
# routed to the nurses (alerts 0012), high, so neither the overdue hold nor quiet hours delay it: the deadline
# already holds the due time's grace, and a CAR-T patient not assessed is the risk itself (docs/architecture.md §4a).
_BEDSIDE = (AlertKind.ASSESSMENT_OVERDUE, "CRS/ICANS assessment overdue", AlertSeverity.HIGH)


def monitoring_tests_flag_overdue(*, now: datetime | None = None, batch_size: int = 10_000) -> list[int]:
    """The overdue sweep: flag every test past its collection or result deadline and raise its alert, once:
    one alert per draw (a patient's tests due together; the tests collected together), routed by kind.
    A draw's alert lists its tests; later tests of the same draw join it (the fold key).

    Level-triggered: whatever is past its deadline and not yet flagged is flagged, so a missed
    tick only delays an alert. `now=None` (production) uses the database clock.
    Returns the ids of the alerts raised.
    """
    return _flag_overdue(now=now, batch_size=batch_size)[0]


def _flag_overdue(*, now: datetime | None, batch_size: int) -> tuple[list[int], int]:
    """The sweep's work: the ids of the alerts raised and the number of tests flagged."""
    alert_ids: list[int] = []
    flagged = 0
    for from_status, to_status, deadline, flagged_at, draw, kind, text in _STAGES:
        sql = _FLAG_SQL.format(
            deadline=deadline,
            flagged_at=flagged_at,
            draw=draw,
            setting=SWEEP_AUDIT_SETTING,
            event_table=apps.get_model("monitoring", "MonitoringTestFlagEvent")._meta.db_table,
            iso_draw=_ISO_DRAW,
        )
        params = {
            "from_status": from_status.value,
            "to_status": to_status.value,
            "now": now,
            "batch": batch_size,
            "text": text,
            "draw_key": draw,
            "specimen": LabTestKind.SPECIMEN.value,
            "bedside_text": _BEDSIDE[1],
        }
        while True:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    draws = cursor.fetchall()
                specimen = [row[:6] for row in draws if row[7] == LabTestKind.SPECIMEN]
                bedside = [row[:6] for row in draws if row[7] != LabTestKind.SPECIMEN]
                alert_ids += alerts_raise_rows(
                    kind=kind, severity=AlertSeverity.MODERATE, subject_model=MonitoringTest, rows=specimen, now=now
                )
                alert_ids += alerts_raise_rows(
                    kind=_BEDSIDE[0], severity=_BEDSIDE[2], subject_model=MonitoringTest, rows=bedside, now=now
                )
            count = sum(draw_row[6] for draw_row in draws)
            flagged += count
            if count < batch_size:
                break
    return alert_ids, flagged


def monitoring_sweep_run(*, name: str = "overdue_sweep") -> list[int]:
    """One beat of the overdue sweep as Celery runs it: flag, then record the heartbeat with how long the run
    took and how many tests it flagged (/health/ready and /metrics read them). Returns the alerts raised."""
    started = time.perf_counter()
    alert_ids, flagged = _flag_overdue(now=None, batch_size=10_000)
    sweep_heartbeat_record(
        name=name, flagged=len(alert_ids), rows_flagged=flagged, duration_seconds=time.perf_counter() - started
    )
    return alert_ids


def sweep_heartbeat_record(*, name: str, flagged: int, rows_flagged: int = 0, duration_seconds: float = 0.0) -> None:
    """Upsert the sweep's heartbeat with the database clock; the totals only grow."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO monitoring_sweepheartbeat AS beat (name, last_run_at, last_flagged, last_duration_seconds,
                last_rows_flagged, runs_total, duration_seconds_total, rows_flagged_total)
            VALUES (%(name)s, statement_timestamp(), %(flagged)s, %(duration)s, %(rows)s, 1, %(duration)s, %(rows)s)
            ON CONFLICT (name) DO UPDATE SET
                last_run_at = EXCLUDED.last_run_at,
                last_flagged = EXCLUDED.last_flagged,
                last_duration_seconds = EXCLUDED.last_duration_seconds,
                last_rows_flagged = EXCLUDED.last_rows_flagged,
                runs_total = beat.runs_total + 1,
                duration_seconds_total = beat.duration_seconds_total + EXCLUDED.last_duration_seconds,
                rows_flagged_total = beat.rows_flagged_total + EXCLUDED.last_rows_flagged
            """,
            {"name": name, "flagged": flagged, "duration": duration_seconds, "rows": rows_flagged},
        )
