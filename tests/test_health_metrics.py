"""Operations (docs/architecture.md §5): health probes, Prometheus metrics, JSON logs without patient data."""

from __future__ import annotations

import io
import json
import logging
import socket
from datetime import date, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from alerts.choices import AlertKind, AlertSeverity
from alerts.models import Alert
from alerts.services import AlertCondition, alert_acknowledge, alerts_escalate_unacknowledged, alerts_raise
from core.cache import redis_py_url
from monitoring.models import SweepHeartbeat
from monitoring.services import monitoring_sweep_run
from monitoring.tasks import sweep_overdue_tests
from patients.models import Patient
from results.importing import import_oru_message, interface_user
from tests import factories
from tests.results.helpers import collected_specimen

TOKEN = "test-metrics-token-0123456789abcdef"
JSON = {"HTTP_ACCEPT": "application/json"}


def _ready(client):
    response = client.get("/health/ready", **JSON)
    return response.status_code, json.loads(response.content)


def _failing(body: dict[str, str]) -> dict[str, str]:
    return {check: answer for check, answer in body.items() if answer != "OK"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fresh_sweep(db):
    monitoring_sweep_run()


# --- /health/live and /health/ready ---


def test_live_answers_without_the_database_or_a_login(client):
    response = client.get("/health/live")  # no db fixture: any query would fail the test
    assert response.status_code == 200
    assert json.loads(response.content) == {}


def test_ready_is_200_on_a_healthy_stack_and_names_each_check(client, fresh_sweep):
    status, body = _ready(client)
    assert status == 200
    assert body == {
        "Database(alias='default')": "OK",
        "Migrations()": "OK",
        "SweepHeartbeat()": "OK",
        "Redis(broker+cache)": "OK",
    }


def test_ready_is_503_naming_the_heartbeat_when_the_sweep_stopped(client, fresh_sweep, settings):
    settings.SWEEP_STALE_SECONDS = 30
    SweepHeartbeat.objects.update(last_run_at=timezone.now() - timedelta(seconds=29))
    assert _ready(client)[0] == 200  # under SWEEP_STALE_SECONDS
    SweepHeartbeat.objects.update(last_run_at=timezone.now() - timedelta(seconds=31))
    status, body = _ready(client)
    assert status == 503
    assert _failing(body) == {
        "SweepHeartbeat()": "Unavailable: the overdue sweep has not run in the last 30 s (SWEEP_STALE_SECONDS)"
    }


def test_ready_is_503_before_the_first_sweep(client, db):
    status, body = _ready(client)
    assert status == 503
    assert list(_failing(body)) == ["SweepHeartbeat()"]


def test_ready_is_503_naming_an_unapplied_migration(client, fresh_sweep):
    with connection.cursor() as cursor:  # the last migration "not applied yet" (rolled back with the test)
        cursor.execute(
            "DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations) RETURNING app, name"
        )
        app, name = cursor.fetchone()
    status, body = _ready(client)
    assert status == 503
    assert _failing(body) == {"Migrations()": f"Unavailable: 1 unapplied migration(s), first {app}.{name}"}


def test_ready_is_503_naming_redis_when_the_broker_is_unreachable(client, fresh_sweep, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    status, body = _ready(client)
    assert status == 503
    assert _failing(body) == {"Redis(broker)": "Unavailable: Unable to connect to Redis: Connection Error"}
    assert body["Redis(cache)"] == "OK"  # the cache's server is still there, and said so apart


def test_health_answers_name_no_patient(client, fresh_sweep, patient_a):
    for path in ("/health/live", "/health/ready", "/health/ready?format=text"):
        text = client.get(path).content.decode()
        assert patient_a.mrn not in text
        assert patient_a.family_name not in text


# --- /metrics ---


def _scrape(client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _value(metrics, name: str, **labels: str) -> float:
    return metrics[(name, frozenset(labels.items()))]


def test_metrics_need_the_token_or_a_staff_session(client, settings, nurse_a, django_user_model):
    settings.METRICS_TOKEN = TOKEN
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    client.force_login(nurse_a)
    assert client.get("/metrics").status_code == 403
    client.force_login(django_user_model.objects.create_user("ops", password="a-long-ops-password", is_staff=True))
    assert client.get("/metrics").status_code == 200


def test_without_a_configured_token_no_bearer_is_accepted(client, settings, db):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 401


def test_alert_metrics_follow_raise_acknowledge_and_escalation(client, settings, patient_a, nurse_a):
    settings.METRICS_TOKEN = TOKEN
    before = _scrape(client)
    overdue = {"kind": AlertKind.COLLECTION_OVERDUE.value, "severity": str(AlertSeverity.MODERATE.value)}
    assert _value(before, "labflow_alerts_raised_total", **overdue) == 0
    assert not any(name.startswith("labflow_sweep_") for name, _ in before)  # no sweep has run yet

    due = timezone.now() - timedelta(hours=2)
    factories.make_test(patient_a, due_at=due, grace=timedelta(minutes=30))
    factories.make_test(patient_a, due_at=due, grace=timedelta(minutes=30), name="ALT")
    (alert_id,) = monitoring_sweep_run()  # the patient's two tests due together: one alert
    swept = _scrape(client)
    sweep = {"sweep": "overdue_sweep"}
    assert _value(swept, "labflow_alerts_raised_total", **overdue) == 1
    assert _value(swept, "labflow_alerts_open", **overdue, status="open") == 1
    assert _value(swept, "labflow_sweep_duration_seconds_count", **sweep) == 1
    assert _value(swept, "labflow_sweep_duration_seconds_sum", **sweep) > 0
    assert _value(swept, "labflow_sweep_last_rows_flagged", **sweep) == 2
    assert _value(swept, "labflow_sweep_rows_flagged_total", **sweep) == 2
    assert _value(swept, "labflow_sweep_stale", **sweep) == 0
    assert _value(swept, "labflow_alerts_acknowledged_total") == 0

    monitoring_sweep_run()  # nothing new: a run, no rows
    alert_acknowledge(alert=Alert.objects.get(pk=alert_id), user=nurse_a, now=timezone.now())
    acknowledged = _scrape(client)
    assert _value(acknowledged, "labflow_sweep_duration_seconds_count", **sweep) == 2
    assert _value(acknowledged, "labflow_sweep_last_rows_flagged", **sweep) == 0
    assert _value(acknowledged, "labflow_sweep_rows_flagged_total", **sweep) == 2
    assert _value(acknowledged, "labflow_alerts_acknowledged_total") == 1
    assert _value(acknowledged, "labflow_alert_acknowledge_seconds_count") == 1
    assert _value(acknowledged, "labflow_alert_acknowledge_seconds_bucket", le="60.0") == 1
    assert _value(acknowledged, "labflow_alerts_open", **overdue, status="open") == 0
    assert _value(acknowledged, "labflow_alerts_open", **overdue, status="acknowledged") == 1
    assert _value(acknowledged, "labflow_alerts_raised_total", **overdue) == 1  # a counter: stays

    (high_id,) = alerts_raise(
        kind=AlertKind.SPECIMEN_REJECTED,
        severity=AlertSeverity.HIGH,
        subject_model=Patient,
        conditions=[AlertCondition(patient_a.pk, patient_a.pk, "Specimen rejected: recollect")],
    )
    assert alerts_escalate_unacknowledged(now=Alert.objects.get(pk=high_id).notify_at + timedelta(minutes=15))
    escalated = _scrape(client)
    rejected = {"kind": AlertKind.SPECIMEN_REJECTED.value, "severity": str(AlertSeverity.HIGH.value)}
    assert _value(escalated, "labflow_alerts_raised_total", **rejected) == 1
    assert _value(escalated, "labflow_alert_escalations_total", role="charge_nurse") == 1
    assert _value(escalated, "labflow_alerts_escalated_total") == 1
    assert _value(escalated, "labflow_alerts_open", **rejected, status="open") == 1


def _oru(patient, specimen, control_id: str) -> str:
    return (
        f"MSH|^~\\&|ANALYZER|CORE LAB|LABFLOW|ONCOLOGY|20261122102000+0000||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r"
        f"PID|1||{patient.mrn}^^^HOSP^MR||{patient.family_name}^{patient.given_name}||19600517|F\r"
        f"OBR|1|PL1|{specimen.accession}|24323-8^Comprehensive metabolic panel^LN|||20261122093000+0000\r"
        "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F|||20261122101500+0000\r"
        f"SPM|1|{specimen.accession}||SER^Serum^HL70487\r"
    )


def test_hl7_metrics_count_accepted_and_refused_messages(client, settings, team_a, nurse_a, patient_a):
    settings.METRICS_TOKEN = TOKEN
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    user, now = interface_user(), timezone.now()
    assert import_oru_message(_oru(patient_a, specimen, "M-1"), user=user, now=now).stored == 1
    stranger = factories.make_patient(team_a)
    assert import_oru_message(_oru(stranger, specimen, "M-2"), user=user, now=now).error  # another patient: AE
    metrics = _scrape(client)
    assert _value(metrics, "labflow_hl7_messages_accepted_total") == 1
    assert _value(metrics, "labflow_hl7_messages_refused", outcome="error") == 1
    assert _value(metrics, "labflow_hl7_messages_refused", outcome="rejected") == 0
    assert _value(metrics, "labflow_hl7_results_stored_total") == 1


def test_queue_depth_comes_from_the_broker(client, settings, db):
    from labflow.celery import app

    settings.METRICS_TOKEN = TOKEN
    redis = Redis.from_url(redis_py_url(settings.CELERY_BROKER_URL))
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    redis.delete(queue)
    try:
        assert _value(_scrape(client), "labflow_celery_queue_length", queue=queue) == 0
        app.send_task("monitoring.sweep_overdue_tests")  # nobody consumes this test's Redis database
        app.send_task("alerts.escalate_open_alerts")
        metrics = _scrape(client)
        assert _value(metrics, "labflow_redis_up") == 1
        assert _value(metrics, "labflow_celery_queue_length", queue=queue) == 2
    finally:
        redis.delete(queue)
        redis.close()


def test_metrics_still_answer_when_the_broker_is_down(client, settings, db):
    settings.METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    metrics = _scrape(client)
    assert _value(metrics, "labflow_redis_up") == 0
    assert not any(name == "labflow_celery_queue_length" for name, _ in metrics)
    assert _value(metrics, "labflow_alerts_acknowledged_total") == 0


def test_metric_labels_name_no_patient(client, settings, patient_a):
    settings.METRICS_TOKEN = TOKEN
    factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=2), grace=timedelta(minutes=30))
    monitoring_sweep_run()
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "labflow_alerts_open" in text
    for identifier in (patient_a.mrn, patient_a.family_name, str(patient_a.pk) + '"'):
        assert identifier not in text


# --- JSON logs ---


@pytest.fixture
def console_log():
    """What the configured console handler (settings.LOGGING) writes, line by line."""
    (handler,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def test_json_log_lines_parse_and_carry_no_patient_data(console_log, settings, team_a, nurse_a):
    assert settings.LOG_FORMAT == "json"
    patient = factories.make_patient(
        team_a, mrn="QZ-480517", family_name="Quixworth", given_name="Zebulon", birth_date=date(1958, 3, 9)
    )
    factories.make_test(patient, due_at=timezone.now() - timedelta(hours=2), grace=timedelta(minutes=30))
    sweep_overdue_tests()  # the task's own log line
    logger = logging.getLogger("labflow.test")
    logger.warning("chart opened for %s", patient)  # FAMILY, Given (MRN)
    logger.warning("lookup", extra={"mrn": patient.mrn, "family_name": patient.family_name, "ward": "4A"})
    logger.warning("wristband=%s did not match MRN %s", patient.mrn, patient.mrn)
    logger.warning(
        "ORU %s segment %s", "MSG-0042", f"PID|1||{patient.mrn}^^^H||{patient.family_name}^{patient.given_name}"
    )
    same = {
        field: getattr(patient, field)
        for field in ("mrn", "family_name", "given_name", "birth_date", "sex", "weight_kg", "height_cm", "care_team")
    }
    # PostgreSQL's details name the values: "Key (mrn)=(…) already exists", "Failing row contains (…)".
    for fields in (same, {**same, "mrn": "QZ-480518", "weight_kg": None}):
        try:
            with transaction.atomic():
                Patient.objects.create(**fields)
        except IntegrityError:
            logger.exception("could not register the patient")
    lines = [json.loads(line) for line in console_log.getvalue().splitlines()]
    text = console_log.getvalue()
    assert {
        "overdue sweep raised 1 alerts",
        "chart opened for [redacted]",
        "lookup",
        "wristband=[redacted] did not match MRN [redacted]",
        "ORU MSG-0042 segment PID|[redacted]",  # a message control id is no patient data: it stays
    } <= {line["message"] for line in lines}
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (lookup,) = [line for line in lines if line["message"] == "lookup"]
    assert (lookup["mrn"], lookup["family_name"], lookup["ward"]) == ("[redacted]", "[redacted]", "4A")
    failures = [line["exc_info"] for line in lines if line["message"] == "could not register the patient"]
    assert len(failures) == 2
    assert "Key (mrn)=([redacted]) already exists" in failures[0]
    assert "Failing row contains ([redacted])" in failures[1]
    for secret in (patient.mrn, "QZ-480518", patient.family_name, patient.given_name, patient.family_name.upper()):
        assert secret not in text
