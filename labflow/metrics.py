"""Prometheus metrics at /metrics (docs/architecture.md §5 Operations).

Computed at scrape time from PostgreSQL (and Redis for the queue), not counted in process memory: gunicorn runs
several workers, the sweep runs in Celery and HL7 arrives through the MLLP listener, each in its own process or
container, so only the database sees all of them (prometheus_client's multiprocess mode shares a directory, which
separate containers do not). Counters come from rows that only grow: alerts raised from the alerts' append-only
audit events (kind and severity as raised: a findings alert may worsen later), acknowledgements from the alerts'
acknowledged_at (never cleared), escalations from their steps, accepted HL7 messages (never refused afterwards),
sweep totals from the heartbeat. Labels name kinds, severities, roles and outcomes, never a patient.

Scrapers authenticate with `Authorization: Bearer $METRICS_TOKEN`; staff may read it in the browser.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from redis import Redis
from redis.exceptions import RedisError

from alerts.choices import AlertKind, AlertSeverity, AlertStatus
from alerts.models import Alert, AlertEscalation
from core.cache import redis_py_url
from labflow.health import REDIS_TIMEOUT_SECONDS
from monitoring.models import SweepHeartbeat
from monitoring.selectors import sweep_is_stale
from patients.choices import CareTeamRole
from results.choices import MessageOutcome, OutboundStatus
from results.models import InboundMessage, OutboundMessage

# Seconds from an alert being shown to its acknowledgement; 900 is the first escalation step (§3).
ACKNOWLEDGE_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
# kombu's Redis transport keeps a queue's priorities 3, 6 and 9 in lists named queue + this separator + priority.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)

_HL7_OUTCOMES = {
    MessageOutcome.ACCEPTED: "accepted",
    MessageOutcome.ERROR: "error",
    MessageOutcome.REJECTED: "rejected",
}


def _alert_event_table() -> str:
    return str(apps.get_model("alerts", "AlertEvent")._meta.db_table)


def _kind_severity_grid() -> Iterator[tuple[str, int]]:
    """Every kind and severity, so that a series is 0 rather than missing before its first alert."""
    for kind in AlertKind:
        for severity in AlertSeverity:
            yield kind.value, severity.value


def _sweep_metrics() -> Iterator[Metric]:
    last_run = GaugeMetricFamily(
        "labflow_sweep_last_run_timestamp_seconds", "When the sweep last finished (Unix time).", labels=["sweep"]
    )
    stale = GaugeMetricFamily(
        "labflow_sweep_stale",
        "1 when the sweep has not run for SWEEP_STALE_SECONDS (alerts are delayed).",
        labels=["sweep"],
    )
    last_duration = GaugeMetricFamily(
        "labflow_sweep_last_duration_seconds", "How long the sweep's last run took.", labels=["sweep"]
    )
    last_rows = GaugeMetricFamily(
        "labflow_sweep_last_rows_flagged", "Monitoring tests the sweep's last run flagged overdue.", labels=["sweep"]
    )
    duration = SummaryMetricFamily(
        "labflow_sweep_duration_seconds", "Runs of the sweep and the time they took.", labels=["sweep"]
    )
    rows = CounterMetricFamily(
        "labflow_sweep_rows_flagged", "Monitoring tests the sweep flagged overdue.", labels=["sweep"]
    )
    for beat in SweepHeartbeat.objects.order_by("name"):
        labels = [beat.name]
        last_run.add_metric(labels, beat.last_run_at.timestamp())
        stale.add_metric(labels, float(sweep_is_stale(name=beat.name)))
        last_duration.add_metric(labels, beat.last_duration_seconds)
        last_rows.add_metric(labels, beat.last_rows_flagged)
        duration.add_metric(labels, beat.runs_total, beat.duration_seconds_total)
        rows.add_metric(labels, beat.rows_flagged_total)
    yield from (last_run, stale, last_duration, last_rows, duration, rows)


def _alerts_raised() -> Metric:
    counts = dict.fromkeys(_kind_severity_grid(), 0)
    with connection.cursor() as cursor:
        cursor.execute(
            # The table name comes from the model, never from input.
            f"SELECT kind, severity, count(*) FROM {_alert_event_table()} "
            "WHERE pgh_label = 'insert' GROUP BY kind, severity"
        )
        for kind, severity, n in cursor.fetchall():
            counts[(kind, severity)] = n
    raised = CounterMetricFamily(
        "labflow_alerts_raised", "Alerts raised, by kind and severity when raised.", labels=["kind", "severity"]
    )
    for (kind, severity), n in counts.items():
        raised.add_metric([kind, str(severity)], n)
    return raised


def _acknowledgements() -> Iterator[Metric]:
    """Alerts acknowledged, and the wait from when each was shown (`notify_at`: a held alert reaches nobody before)
    to its acknowledgement, as a histogram. From the alerts, not their audit events (five times as many rows, and
    growing with every fold): acknowledged_at is never cleared, so the count only grows; an alert re-opened and
    acknowledged again counts once, with its latest wait."""
    # The table name comes from the model and the bounds from this module, never from input.
    buckets = ", ".join(f"count(*) FILTER (WHERE wait <= {int(bound)})" for bound in ACKNOWLEDGE_BUCKETS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {buckets}, count(*), COALESCE(sum(wait), 0)
            FROM (
                SELECT GREATEST(date_part('epoch', acknowledged_at - notify_at), 0) AS wait
                FROM {Alert._meta.db_table}
                WHERE acknowledged_at IS NOT NULL
            ) AS acknowledged
            """
        )
        *cumulative, total, wait_sum = cursor.fetchone() or (0,) * (len(ACKNOWLEDGE_BUCKETS) + 2)
    yield CounterMetricFamily("labflow_alerts_acknowledged", "Alerts acknowledged.", value=total)
    histogram_buckets = [
        (str(float(bound)), float(n)) for bound, n in zip(ACKNOWLEDGE_BUCKETS, cumulative, strict=True)
    ]
    yield HistogramMetricFamily(
        "labflow_alert_acknowledge_seconds",
        "Time from an alert being shown to its acknowledgement.",
        buckets=[*histogram_buckets, ("+Inf", float(total))],
        sum_value=float(wait_sum),
    )


def _escalations() -> Iterator[Metric]:
    by_role = dict.fromkeys((role.value for role in CareTeamRole), 0)
    for row in AlertEscalation.objects.order_by().values("role").annotate(n=Count("pk")):
        by_role[row["role"]] = row["n"]
    steps = CounterMetricFamily(
        "labflow_alert_escalations", "Escalation steps, by the role they reached.", labels=["role"]
    )
    for role, n in by_role.items():
        steps.add_metric([role], n)
    yield steps
    escalated = AlertEscalation.objects.order_by().values("alert_id").distinct().count()
    yield CounterMetricFamily("labflow_alerts_escalated", "Alerts escalated at least once.", value=escalated)


def _unresolved_alerts() -> Metric:
    statuses = (AlertStatus.OPEN.value, AlertStatus.ACKNOWLEDGED.value)
    counts = {(kind, severity, status): 0 for kind, severity in _kind_severity_grid() for status in statuses}
    rows = (
        Alert.objects.filter(status__in=statuses)
        .order_by()
        .values("kind", "severity", "status")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[(row["kind"], row["severity"], row["status"])] = row["n"]
    gauge = GaugeMetricFamily(
        "labflow_alerts_open",
        "Unresolved alerts by kind, severity and status (open: nobody acknowledged it yet).",
        labels=["kind", "severity", "status"],
    )
    for (kind, severity, status), n in counts.items():
        gauge.add_metric([kind, str(severity), status], n)
    return gauge


def _hl7_metrics() -> Iterator[Metric]:
    """Messages as recorded by sender and control id. An accepted message stays accepted (a counter); a refused
    one may be sent again and accepted, so the refused are a gauge. A frame that is not HL7 at all (no MSH) is
    answered AR without a row and is not counted."""
    by_outcome = dict.fromkeys(_HL7_OUTCOMES.values(), 0)
    stored = 0
    rows = InboundMessage.objects.order_by().values("outcome").annotate(n=Count("pk"), stored=Sum("results_stored"))
    for row in rows:
        by_outcome[_HL7_OUTCOMES[MessageOutcome(row["outcome"])]] = row["n"]
        stored += row["stored"] or 0
    yield CounterMetricFamily(
        "labflow_hl7_messages_accepted", "HL7 messages accepted (ACK AA).", value=by_outcome["accepted"]
    )
    refused = GaugeMetricFamily(
        "labflow_hl7_messages_refused",
        "HL7 messages whose last answer was AE (error) or AR (rejected).",
        labels=["outcome"],
    )
    for outcome in ("error", "rejected"):
        refused.add_metric([outcome], by_outcome[outcome])
    yield refused
    yield CounterMetricFamily("labflow_hl7_results_stored", "Results stored from HL7 messages.", value=stored)


def _outbound_metrics() -> Iterator[Metric]:
    """Results out to the EHR (results/outbox.py): accepted messages only grow (a counter); the rest are a gauge by
    state (waiting: never tried; retrying: after a timeout or lost connection; refused: AE/AR until re-sent)."""
    states = {"waiting": 0, "retrying": 0, "refused": 0}
    sent = 0
    rows = (
        OutboundMessage.objects.order_by()
        .values("status", retried=ExpressionWrapper(Q(attempts__gt=0), output_field=BooleanField()))
        .annotate(n=Count("pk"))
    )
    for row in rows:
        if row["status"] == OutboundStatus.SENT:
            sent += row["n"]
        elif row["status"] == OutboundStatus.ERROR:
            states["refused"] += row["n"]
        else:
            states["retrying" if row["retried"] else "waiting"] += row["n"]
    yield CounterMetricFamily(
        "labflow_hl7_outbound_messages_sent", "ORU^R01 messages the EHR accepted (AA/CA).", value=sent
    )
    unsent = GaugeMetricFamily(
        "labflow_hl7_outbound_messages_unsent", "ORU^R01 messages not yet accepted, by state.", labels=["state"]
    )
    for state, n in states.items():
        unsent.add_metric([state], n)
    yield unsent


def celery_queues() -> list[str]:
    """The queues LabFlow's tasks go to: the default one and any named in task routes."""
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE}
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    if isinstance(routes, dict):
        queues |= {route["queue"] for route in routes.values() if isinstance(route, dict) and "queue" in route}
    return sorted(queues)


def _queue_metrics() -> Iterator[Metric]:
    up = GaugeMetricFamily("labflow_redis_up", "1 when the Celery broker (Redis) answered this scrape.")
    depth = GaugeMetricFamily("labflow_celery_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
    client = Redis.from_url(
        redis_py_url(settings.CELERY_BROKER_URL),
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    queues = celery_queues()
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
                for priority in _PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{priority}")
            pipe.hlen("unacked")
            lengths = pipe.execute()
    except (RedisError, OSError):
        up.add_metric([], 0)
        yield up
        return
    finally:
        client.close()
    up.add_metric([], 1)
    yield up
    per_queue = 1 + len(_PRIORITY_STEPS)
    for index, queue in enumerate(queues):
        depth.add_metric([queue], sum(lengths[index * per_queue : (index + 1) * per_queue]))
    yield depth
    yield GaugeMetricFamily(
        "labflow_celery_unacked_tasks", "Tasks a worker has taken but not yet finished.", value=lengths[-1]
    )


class LabflowCollector:
    """Everything at scrape time; a handful of aggregate queries and one Redis round trip."""

    def collect(self) -> Iterable[Metric]:
        yield from _sweep_metrics()
        yield _alerts_raised()
        yield from _acknowledgements()
        yield from _escalations()
        yield _unresolved_alerts()
        yield from _hl7_metrics()
        yield from _outbound_metrics()
        yield from _queue_metrics()
        yield GaugeMetricFamily(
            "labflow_metrics_scrape_timestamp_seconds",
            "When this scrape was computed.",
            value=timezone.now().timestamp(),
        )


_REGISTRY = CollectorRegistry(auto_describe=False)
_REGISTRY.register(LabflowCollector())


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the request may scrape: the bearer token (compared in constant time) or a staff session."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = str(getattr(settings, "METRICS_TOKEN", "") or "")
        offered = header[len("bearer ") :].strip()
        if token and hmac.compare_digest(offered.encode(), token.encode()):
            return None
        return _unauthorized("Invalid metrics token.")
    if not request.user.is_authenticated:
        return _unauthorized("Authentication required.")
    if not request.user.is_staff:
        return HttpResponse("Only staff may read the metrics.\n", status=403, content_type="text/plain")
    return None


def _unauthorized(text: str) -> HttpResponse:
    response = HttpResponse(f"{text}\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    response = HttpResponse(generate_latest(_REGISTRY), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    patch_cache_control(response, private=True, no_store=True)
    return response
