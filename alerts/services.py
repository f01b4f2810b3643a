"""Writes on alerts. Every function runs in one transaction and takes the actor and time explicitly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.findings import (
    AUDIENCE_ROLES,
    Finding,
    findings_audience,
    findings_severity,
    findings_summary,
    fold_findings,
    quiet_hours_release,
    withdraw_findings,
)
from alerts.models import Alert
from alerts.push import alerts_changed
from core.errors import Conflict
from core.locking import locked


class AlertConflict(Conflict):
    """The alert is not in a state that allows this step (HTTP 409)."""


@dataclass(frozen=True)
class AlertCondition:
    """What one alert is about. `members` (default: the subject alone) are the subjects it stands for; with a
    `fold_key`, a condition meeting an unresolved alert of the patient with the same key joins it: the members
    are added and `addendum` is appended to its summary."""

    subject_id: int
    patient_id: int
    summary: str
    members: tuple[int, ...] = ()
    fold_key: str = ""
    addendum: str = ""


# The alert INSERT reads its conditions from the CTE `conditions` (_CONDITIONS_SQL: one row per alert, unnested
# from array parameters).
_INSERT = """
INSERT INTO alerts_alert (kind, severity, status, patient_id, subject_type_id, subject_id, summary, audience,
                          raised_at, updated_at, notify_at, last_occurred_at, fold_key, members, outstanding,
                          occurrences, escalation_rung, findings, acknowledge_comment, resolution_reason,
                          resolve_comment)
SELECT %(kind)s, %(severity)s, 'open', c.patient_id, %(subject_type)s, c.subject_id, c.summary, t.audience,
       t.now, t.now, t.now + %(hold)s, t.now, c.fold_key, c.members, c.members,
       1, 0, '[]'::jsonb, '', '', ''
FROM conditions AS c,
     (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now,
             COALESCE(%(audience)s::text, NULLIF((SELECT r.audience FROM alerts_alertroute r WHERE r.kind = %(kind)s),
                                                 ''), %(default_audience)s) AS audience) AS t
"""

_RAISE_SQL = (
    _INSERT
    + """
ON CONFLICT ON CONSTRAINT alert_one_per_condition DO NOTHING
RETURNING id, patient_id, audience, kind, status, occurrences, notify_at
"""
)

# A condition that ever had an alert of this kind gets none (the first guard); one that meets an unresolved
# alert with its fold key joins it (the fold index is the arbiter). OFFSET 0 keeps the guard a probe of the whole
# unique key per condition, whatever the planner estimates for `conditions` (as a join it can scan every alert of
# the kind per condition: quadratic).
_RAISE_FOLDING_SQL = (
    _INSERT
    + """
WHERE NOT EXISTS (
    SELECT 1 FROM alerts_alert x
    WHERE x.subject_type_id = %(subject_type)s AND x.subject_id = c.subject_id AND x.kind = %(kind)s
    OFFSET 0
)
ON CONFLICT (patient_id, fold_key) WHERE status <> 'resolved' AND fold_key <> '' DO UPDATE SET
    members = alerts_alert.members || EXCLUDED.members,
    outstanding = alerts_alert.outstanding || EXCLUDED.outstanding,
    occurrences = alerts_alert.occurrences + 1,
    last_occurred_at = EXCLUDED.last_occurred_at,
    updated_at = EXCLUDED.updated_at,
    summary = left(alerts_alert.summary || (
        SELECT a.addendum FROM conditions AS a WHERE a.subject_id = EXCLUDED.subject_id
    ), 200)
RETURNING id, patient_id, audience, kind, status, occurrences, notify_at
"""
)

_CONDITIONS_SQL = """
WITH conditions AS (
    SELECT c.subject_id, c.patient_id, c.summary, c.fold_key, c.members::bigint[] AS members, c.addendum
    FROM unnest(%(subject_ids)s::bigint[], %(patient_ids)s::bigint[], %(summaries)s::text[],
                %(fold_keys)s::text[], %(members)s::text[], %(addenda)s::text[])
             AS c(subject_id, patient_id, summary, fold_key, members, addendum)
)"""

# The raised or joined rows with what the holds and the push scopes need, in the same statement (no second
# query carrying every raised id); notify_at only where the team has quiet hours (10k timestamps cost ~50 ms).
_RAISED_SQL = """
{conditions}, raised AS ({insert})
SELECT raised.id, p.care_team_id, raised.audience, raised.kind, raised.status, raised.occurrences,
       CASE WHEN pol.quiet_hours_start IS NOT NULL THEN raised.notify_at END, pol.quiet_hours_start,
       pol.quiet_hours_end
FROM raised
JOIN patients_patient p ON p.id = raised.patient_id
LEFT JOIN alerts_teamalertpolicy pol ON pol.care_team_id = p.care_team_id
"""

_HOLD_SQL = """
UPDATE alerts_alert AS a SET notify_at = h.release
FROM unnest(%(ids)s::bigint[], %(releases)s::timestamptz[]) AS h(id, release)
WHERE a.id = h.id
"""
_RAISED_PLAIN_SQL = _RAISED_SQL.format(conditions=_CONDITIONS_SQL, insert=_RAISE_SQL)
_RAISED_FOLDING_SQL = _RAISED_SQL.format(conditions=_CONDITIONS_SQL, insert=_RAISE_FOLDING_SQL)


def _merge(conditions: Sequence[AlertCondition]) -> list[AlertCondition]:
    """One condition per patient and fold key (a statement may touch an alert once); others as they are."""
    merged: dict[tuple[int, str], AlertCondition] = {}
    plain: list[AlertCondition] = []
    for c in conditions:
        if not c.fold_key:
            plain.append(c)
            continue
        key = (c.patient_id, c.fold_key)
        first = merged.get(key)
        if first is None:
            merged[key] = c
        else:
            members = (*(first.members or (first.subject_id,)), *(c.members or (c.subject_id,)))
            merged[key] = AlertCondition(
                first.subject_id, first.patient_id, first.summary + c.addendum, members, first.fold_key,
                first.addendum + c.addendum,
            )  # fmt: skip
    return plain + list(merged.values())


def alerts_raise(
    *,
    kind: AlertKind,
    severity: AlertSeverity,
    subject_model: type[models.Model],
    conditions: Sequence[AlertCondition],
    now: datetime | None = None,
    audience: AlertAudience | None = None,
) -> list[int]:
    """Raise one alert per condition, set-based; a condition that ever had an alert gets none, one with a fold
    key joins the patient's unresolved alert with that key. Returns the ids of the alerts raised or joined.

    The audience is the kind's route unless given. Moderate overdue alerts are held for ALERT_OVERDUE_HOLD
    (dropped unseen if they resolve meanwhile) and moderate alerts wait out their team's quiet hours.
    `now=None` stamps the alerts with the database clock."""
    rows = [
        (c.subject_id, c.patient_id, c.summary, c.fold_key, _array(c.members or (c.subject_id,)), c.addendum)
        for c in _merge(conditions)
    ]
    return alerts_raise_rows(
        kind=kind, severity=severity, subject_model=subject_model, rows=rows, now=now, audience=audience
    )


def _array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal: one text parameter per condition instead of a nested list to adapt."""
    return "{" + ",".join(str(v) for v in values) + "}"


ConditionRow = tuple[int, int, str, str, str, str]


def alerts_raise_rows(
    *,
    kind: AlertKind,
    severity: AlertSeverity,
    subject_model: type[models.Model],
    rows: Sequence[ConditionRow],
    now: datetime | None = None,
    audience: AlertAudience | None = None,
) -> list[int]:
    """:func:`alerts_raise` for conditions a writer computed in SQL (the sweep groups its tests into draws there):
    one row each, (subject id, patient id, summary, fold key, members as an array literal `{1,2}`, addendum), at
    most one per patient and fold key. Spares building and merging a condition object per row."""
    if not rows:
        return []
    held = severity <= AlertSeverity.MODERATE and kind in HELD_KINDS
    params: dict[str, Any] = {
        "kind": kind.value,
        # the kind's route is looked up by the INSERT itself
        "audience": audience.value if audience else None,
        "default_audience": AlertAudience.CARE_TEAM.value,
        "severity": int(severity),
        "subject_type": ContentType.objects.get_for_model(subject_model).pk,
        "now": now,
        "hold": settings.ALERT_OVERDUE_HOLD if held else timedelta(0),
        "subject_ids": [r[0] for r in rows],
        "patient_ids": [r[1] for r in rows],
        "summaries": [r[2] for r in rows],
        "fold_keys": [r[3] for r in rows],
        "members": [r[4] for r in rows],
        "addenda": [r[5] for r in rows],
    }
    sql = _RAISED_FOLDING_SQL if any(r[3] for r in rows) else _RAISED_PLAIN_SQL
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        raised = cursor.fetchall()
        ids = [row[0] for row in raised]
        if severity <= AlertSeverity.MODERATE and raised:
            _hold_for_quiet_hours(cursor, raised)
        # published on commit (alerts/push.py); the scopes come from the rows at hand
        alerts_changed(ids, scope_rows=[(team, audience, kind) for _, team, audience, kind, *_ in raised])
    return ids


HELD_KINDS = frozenset({AlertKind.COLLECTION_OVERDUE, AlertKind.RESULT_OVERDUE})


def _hold_for_quiet_hours(cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """Moderate alerts raised in their team's quiet hours are shown when the quiet hours end (new alerts only:
    open, first occurrence); all teams of the batch in one statement."""
    zone = timezone.get_default_timezone()
    held: list[int] = []
    releases: list[datetime] = []
    for pk, _team, _audience, _kind, status, occurrences, notify_at, start, end in rows:
        if status != AlertStatus.OPEN or occurrences != 1 or start is None or end is None or notify_at is None:
            continue
        release = quiet_hours_release(notify_at, start, end, zone)
        if release != notify_at:
            held.append(pk)
            releases.append(release)
    if held:
        cursor.execute(_HOLD_SQL, {"ids": held, "releases": releases})


class FindingOutcome(StrEnum):
    RAISED = "raised"
    FOLDED = "folded"
    WORSENED = "worsened"
    RENOTIFIED = "renotified"


LAB_FINDINGS_FOLD_KEY = "lab-findings"
# Resolutions after which a repeat is old news: someone looked at the finding (not a retraction by the lab).
DEALT_WITH = (ResolutionReason.RESULT_REVIEWED, ResolutionReason.MANUAL)


@transaction.atomic
def alert_raise_findings(
    *,
    patient_id: int,
    subject_model: type[models.Model],
    subject_id: int,
    findings: Sequence[Finding],
    now: datetime,
) -> tuple[int, FindingOutcome]:
    """One alert for a patient's findings (critical values, CTCAE grades, hold rules) of one verification,
    or the patient's unresolved findings alert updated: a repeat at the same or a lower grade updates its
    latest value and count; a new or worse finding raises its severity, re-opens it and marks it worsened; a
    finding back after more than ALERT_FOLD_WINDOW without it re-opens it. With none unresolved, a repeat within
    the window of the alert someone dealt with (the oncologist reviewed its results) is counted on that one and
    wakes nobody; anything new, worse or back raises a new alert, marked worsened when it is worse.
    It is a critical-result alert once any finding is a critical value (the lab phones those), else toxicity."""
    roots = sorted({f.subject_id for f in findings if f.subject_id is not None})
    unresolved = (
        Alert.objects.select_for_update()
        .filter(patient_id=patient_id, fold_key=LAB_FINDINGS_FOLD_KEY)
        .exclude(status=AlertStatus.RESOLVED)
    )
    alert = unresolved.first()
    worse_than_reviewed = False
    if alert is None:
        reviewed = (
            Alert.objects.select_for_update()
            .filter(patient_id=patient_id, fold_key=LAB_FINDINGS_FOLD_KEY, status=AlertStatus.RESOLVED)
            .filter(resolution_reason__in=DEALT_WITH, last_occurred_at__gte=now - settings.ALERT_FOLD_WINDOW)
            .order_by("-last_occurred_at", "-pk")
            .first()
        )
        if reviewed is not None:
            fold = fold_findings(reviewed.findings, findings, now, settings.ALERT_FOLD_WINDOW)
            if not fold.worsened and not fold.returned:  # nothing new since it was dealt with: nobody woken
                _record_fold(reviewed, fold.findings, roots, now, outstanding=False)
                reviewed.save()
                alerts_changed([reviewed.pk])
                return reviewed.pk, FindingOutcome.FOLDED
            worse_than_reviewed = bool(fold.worsened)
        fold = fold_findings([], findings, now)
        try:
            with transaction.atomic():  # a savepoint: a concurrent verification may have raised it meanwhile
                alert = Alert.objects.create(
                    kind=_findings_kind(fold.findings),
                    severity=findings_severity(fold.findings),
                    audience=findings_audience(fold.findings),
                    patient_id=patient_id,
                    subject_type=ContentType.objects.get_for_model(subject_model),
                    subject_id=subject_id,
                    summary=findings_summary(fold.findings),
                    raised_at=now,
                    updated_at=now,
                    notify_at=now,
                    last_occurred_at=now,
                    fold_key=LAB_FINDINGS_FOLD_KEY,
                    members=roots,
                    outstanding=roots,
                    findings=fold.findings,
                    worsened_at=now if worse_than_reviewed else None,
                )
                alerts_changed([alert.pk])
            return alert.pk, FindingOutcome.WORSENED if worse_than_reviewed else FindingOutcome.RAISED
        except IntegrityError:
            alert = unresolved.get()
    fold = fold_findings(alert.findings, findings, now, settings.ALERT_FOLD_WINDOW)
    outcome = FindingOutcome.FOLDED
    if fold.worsened:
        outcome = FindingOutcome.WORSENED
    elif fold.returned:
        outcome = FindingOutcome.RENOTIFIED
    _record_fold(alert, fold.findings, roots, now, outstanding=True)
    if outcome is FindingOutcome.WORSENED:
        alert.worsened_at = now
    elif outcome is FindingOutcome.RENOTIFIED:
        alert.notify_at = now  # the escalation clock starts again
    if outcome is not FindingOutcome.FOLDED:
        alert.status = AlertStatus.OPEN  # news again: it needs someone's attention and may escalate
    alert.save()
    alerts_changed([alert.pk])
    return alert.pk, outcome


@transaction.atomic
def alerts_withdraw_findings(
    *,
    subject_model: type[models.Model],
    subject_ids: Sequence[int],
    reason: ResolutionReason,
    now: datetime,
    user: User | None = None,
) -> list[int]:
    """These subjects no longer stand (the lab retracted the results): the findings alerts naming them drop
    those findings and say what remains; one left with none resolves with `reason`. Returns the alerts changed."""
    alerts = (
        Alert.objects.select_for_update()
        .filter(
            subject_type=ContentType.objects.get_for_model(subject_model),
            fold_key=LAB_FINDINGS_FOLD_KEY,
            members__overlap=list(subject_ids),
        )
        .exclude(status=AlertStatus.RESOLVED)
    )
    changed = []
    for alert in alerts:
        standing = withdraw_findings(alert.findings, subject_ids)
        alert.outstanding = [m for m in alert.outstanding if m not in set(subject_ids)]
        alert.updated_at = now
        if standing and alert.outstanding:
            alert.findings = standing
            alert.kind = _findings_kind(standing)
            alert.severity = findings_severity(standing)
            alert.audience = findings_audience(standing)
            alert.summary = findings_summary(standing)
        else:
            alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED, now, user
            alert.resolution_reason = reason
        alert.save()
        changed.append(alert.pk)
    alerts_changed(changed)
    return changed


def _record_fold(
    alert: Alert, findings: list[dict[str, Any]], roots: list[int], now: datetime, *, outstanding: bool
) -> None:
    alert.findings = findings
    alert.kind = _findings_kind(findings)
    alert.severity = findings_severity(findings)
    alert.audience = findings_audience(findings)
    alert.summary = findings_summary(findings)
    alert.members = sorted({*alert.members, *roots})
    if outstanding:
        alert.outstanding = sorted({*alert.outstanding, *roots})
    alert.occurrences += 1
    alert.last_occurred_at = now
    alert.updated_at = now


def _findings_kind(findings: Sequence[dict[str, Any]]) -> AlertKind:
    return AlertKind.CRITICAL_RESULT if any(f["critical"] for f in findings) else AlertKind.TOXICITY


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user: User, now: datetime, comment: str = "") -> Alert:
    alert = locked(alert)
    if alert.status != AlertStatus.OPEN:
        raise AlertConflict(f"Alert is already {alert.get_status_display().lower()}.")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by = user
    alert.acknowledge_comment = comment
    alert.updated_at = now
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "acknowledge_comment", "updated_at"])
    alerts_changed([alert.pk])
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, user: User, now: datetime, comment: str = "") -> Alert:
    alert = locked(alert)
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
    alerts_changed([alert.pk])
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


_RESOLVE_SQL = """
UPDATE alerts_alert AS a
SET outstanding = remaining.ids,
    updated_at = %(now)s,
    status = CASE WHEN cardinality(remaining.ids) = 0 THEN 'resolved' ELSE a.status END,
    resolved_at = CASE WHEN cardinality(remaining.ids) = 0 THEN %(now)s END,
    resolved_by_id = CASE WHEN cardinality(remaining.ids) = 0 THEN %(user)s::integer END,
    resolution_reason = CASE WHEN cardinality(remaining.ids) = 0 THEN %(reason)s ELSE '' END,
    resolve_comment = CASE WHEN cardinality(remaining.ids) = 0 THEN %(comment)s ELSE '' END
FROM alerts_alert AS b,
     LATERAL (SELECT COALESCE(array_agg(m), '{}') AS ids
              FROM unnest(b.outstanding) AS m WHERE m <> ALL(%(ids)s::bigint[])) AS remaining
WHERE a.id = b.id AND b.status <> 'resolved' AND b.outstanding && %(ids)s::bigint[]
  AND b.subject_type_id = %(subject_type)s AND (%(kinds)s::text[] IS NULL OR b.kind = ANY(%(kinds)s::text[]))
RETURNING a.id, a.status
"""


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
    """The condition of these subjects ended: in one statement, the unresolved alerts (of `kinds`, or all)
    waiting on them stop waiting, and those waiting on nothing more resolve (who, when, why). Returns how many
    resolved. Resolved alerts are never escalated (escalation takes open alerts only)."""
    if not subject_ids:
        return 0
    params: dict[str, Any] = {
        "ids": list(subject_ids),
        "now": now,
        "user": user.pk if user is not None else None,
        "reason": reason.value,
        "comment": comment,
        "subject_type": ContentType.objects.get_for_model(subject_model).pk,
        "kinds": [k.value for k in kinds] if kinds is not None else None,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RESOLVE_SQL, params)
        rows = cursor.fetchall()
        alerts_changed(alert_id for alert_id, _ in rows)
        return sum(1 for _, status in rows if status == AlertStatus.RESOLVED)


_REROUTE_SQL = """
UPDATE alerts_alert AS a
SET audience = r.then_audience, updated_at = COALESCE(%(now)s::timestamptz, statement_timestamp())
FROM alerts_alertroute AS r
WHERE a.kind = r.kind AND a.audience = r.audience AND r.then_audience <> ''
  AND a.status <> 'resolved'
  AND a.raised_at + r.then_after <= COALESCE(%(now)s::timestamptz, statement_timestamp())
RETURNING a.id
"""


def alerts_reroute_due(*, now: datetime | None = None) -> list[int]:
    """Unresolved alerts still with their route's first audience reach its next one once `then_after` has passed
    (e.g. a result still overdue 2 h after the lab's queue got it reaches the care team)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REROUTE_SQL, {"now": now})
        ids = [row[0] for row in cursor.fetchall()]
        alerts_changed(ids)
        return ids


# The ladder of each team: its own rungs, else the default ones (no team).
_ESCALATE_SQL = """
WITH clock AS (SELECT COALESCE(%(now)s::timestamptz, statement_timestamp()) AS now),
due AS (
    SELECT a.id, r.position, r.role
    FROM alerts_alert a
    JOIN patients_patient p ON p.id = a.patient_id
    JOIN alerts_escalationrung r ON r.position = a.escalation_rung + 1 AND (
        r.care_team_id = p.care_team_id
        OR (r.care_team_id IS NULL AND NOT EXISTS (
            SELECT 1 FROM alerts_escalationrung own WHERE own.care_team_id = p.care_team_id)))
    CROSS JOIN clock
    WHERE a.status = 'open' AND a.severity >= %(high)s AND a.notify_at <= clock.now
      AND GREATEST(a.notify_at, a.escalated_at, a.worsened_at) + r.after <= clock.now
    ORDER BY a.notify_at
    LIMIT %(batch)s
    FOR UPDATE OF a SKIP LOCKED
),
stepped AS (
    UPDATE alerts_alert AS a
    SET escalated_at = clock.now, updated_at = clock.now, escalation_rung = due.position
    FROM due, clock WHERE a.id = due.id
    RETURNING a.id, a.patient_id, a.audience, due.position, due.role, clock.now AS at
)
INSERT INTO alerts_alertescalation (alert_id, rung, role, escalated_at)
SELECT id, position, role, at FROM stepped
RETURNING id, alert_id
"""

# Members of the rung's role on the patient's team who did not already have the alert: not in its audience,
# not reached by an earlier rung.
_ESCALATE_RECIPIENTS_SQL = """
WITH reached AS (
    SELECT e.id AS escalation_id, a.id AS alert_id, m.user_id
    FROM alerts_alertescalation e
    JOIN alerts_alert a ON a.id = e.alert_id
    JOIN patients_patient p ON p.id = a.patient_id
    JOIN patients_careteammembership m ON m.care_team_id = p.care_team_id AND m.role = e.role
    WHERE e.id = ANY(%(ids)s)
      AND NOT EXISTS (
          SELECT 1 FROM unnest(%(audiences)s::text[], %(roles)s::text[]) AS aud(audience, role)
          JOIN patients_careteammembership had
            ON had.care_team_id = p.care_team_id AND had.user_id = m.user_id AND had.role = aud.role
          WHERE aud.audience = a.audience)
      AND NOT EXISTS (
          SELECT 1 FROM alerts_alert_escalated_to t WHERE t.alert_id = a.id AND t.user_id = m.user_id)
),
step AS (
    INSERT INTO alerts_alertescalation_recipients (alertescalation_id, user_id)
    SELECT escalation_id, user_id FROM reached
)
INSERT INTO alerts_alert_escalated_to (alert_id, user_id)
SELECT alert_id, user_id FROM reached
ON CONFLICT DO NOTHING
"""


def alerts_escalate_unacknowledged(*, now: datetime | None = None, batch_size: int = 5000) -> list[int]:
    """Move every open high or critical alert that nobody acknowledged up its team's ladder, one rung when it is
    due, to people who did not have it yet; each step is recorded. Moderate alerts never escalate and severity
    never changes by waiting. Lab-queue alerts reach their next audience first (:func:`alerts_reroute_due`).

    Filtering runs in SQL on a partial index; `now=None` uses the database clock. Returns the alerts escalated."""
    alerts_reroute_due(now=now)
    audiences = [(a.value, r.value) for a, roles in AUDIENCE_ROLES.items() for r in sorted(roles)]
    escalated: list[int] = []
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            params: dict[str, Any] = {"now": now, "batch": batch_size, "high": int(AlertSeverity.HIGH)}
            cursor.execute(_ESCALATE_SQL, params)
            rows = cursor.fetchall()
            if rows:
                cursor.execute(
                    _ESCALATE_RECIPIENTS_SQL,
                    {
                        "ids": [step_id for step_id, _ in rows],
                        "audiences": [a for a, _ in audiences],
                        "roles": [r for _, r in audiences],
                    },
                )
            alerts_changed(alert_id for _, alert_id in rows)
        escalated.extend(alert_id for _, alert_id in rows)
        if len(rows) < batch_size:
            return escalated
