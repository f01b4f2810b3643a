"""Two database roles (docs/architecture.md §5, §7): web, worker, beat and the MLLP listener connect as a runtime
role that cannot empty, drop or switch off the audit trail or the clinical tables, and every write the product
makes still works as that role."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import cast

import pghistory
import psycopg
import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.choices import Role
from alerts.models import Alert
from labflow.db_roles import DELETABLE_TABLES, check_runtime_role, runtime_database_url
from monitoring.services import monitoring_tests_flag_overdue
from patients.models import Patient
from results.mllp import send
from results.models import Result
from results.services import ResultEntry, results_enter
from tests import factories, stack
from tests.polling import wait_for
from tests.results.helpers import analyte, collected_specimen
from tests.stack import ROOT

INSUFFICIENT_PRIVILEGE = "42501"
AUDIT_TABLES = [
    "patients_patientevent",
    "monitoring_monitoringtestevent",
    "alerts_alertevent",
    "results_resultevent",
    "pghistory_context",
]
CLINICAL_TABLES = [
    "patients_patient",
    "monitoring_monitoringtest",
    "alerts_alert",
    "specimens_specimen",
    "results_result",
]


@pytest.fixture
def runtime_role(reference_db):
    call_command("db_roles", stdout=StringIO())
    return settings.DATABASE_RUNTIME_ROLE


@pytest.fixture
def runtime_sql(runtime_role):
    """A raw connection as the runtime role, as a compromised process would hold it."""
    url = runtime_database_url(runtime_role, settings.DATABASE_RUNTIME_PASSWORD or None)
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def as_runtime_role(runtime_role):
    """Django's own connection as the runtime role for the test (and for the processes celery_stack starts after
    it); the owner again for the flush after the test."""
    db = connection.settings_dict
    saved = db["USER"], db["PASSWORD"]
    connection.close()
    db["USER"], db["PASSWORD"] = runtime_role, settings.DATABASE_RUNTIME_PASSWORD
    yield runtime_role
    connection.close()
    db["USER"], db["PASSWORD"] = saved


def sqlstate(conn: psycopg.Connection, statement: str) -> str | None:
    """The SQLSTATE `statement` fails with, None if it succeeds."""
    try:
        conn.execute(statement)
    except psycopg.Error as error:
        return error.sqlstate
    return None


def clinical_record(team) -> Patient:
    """A patient with history, an overdue test with its alert, a specimen and a result: rows in every table."""
    with pghistory.context(interface="test"):
        return _clinical_record(team)


def _clinical_record(team) -> Patient:
    nurse = factories.make_user(Role.NURSE, team)
    patient = factories.make_patient(team)
    patient.weight_kg = Decimal("71.0")
    patient.save()
    factories.make_test(patient, due_at=timezone.now() - timedelta(hours=2), grace=timedelta(0))
    assert monitoring_tests_flag_overdue()
    specimen = collected_specimen(patient, nurse, "Potassium")
    technician = factories.make_user(Role.LAB_TECHNICIAN)
    entry = ResultEntry(specimen=specimen, lab_test=analyte("Potassium"), value="4.1", unit="mmol/L")
    results_enter(entries=[entry], user=technician, now=timezone.now())
    return patient


def counts(tables: list[str]) -> dict[str, int]:
    with connection.cursor() as cursor:
        result = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")  # names from the lists above
            result[table] = cursor.fetchone()[0]
        return result


def test_runtime_role_cannot_truncate_drop_disable_triggers_or_delete_audit_and_clinical_rows(
    runtime_role, runtime_sql, team_a
):
    clinical_record(team_a)
    tables = AUDIT_TABLES + CLINICAL_TABLES
    before = counts(tables)
    assert all(before.values()), before  # every table has rows a successful statement would remove
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, min(t.tgname) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relname = ANY(%s) GROUP BY c.relname",
            [tables],
        )
        triggers = dict(cursor.fetchall())

    allowed = []
    for table in tables:
        statements = [
            f"TRUNCATE {table}",
            f"TRUNCATE {table} CASCADE",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"ALTER TABLE {table} DISABLE TRIGGER USER",
            f"DROP TABLE {table}",
            f"DROP TABLE {table} CASCADE",
            f"DELETE FROM {table}",
            f"ALTER TABLE {table} OWNER TO {runtime_role}",
        ]
        if table in triggers:
            statements.append(f"DROP TRIGGER {triggers[table]} ON {table}")
        if table in AUDIT_TABLES and table != "pghistory_context":  # the context upsert needs UPDATE
            statements.append(f"UPDATE {table} SET pgh_obj_id = pgh_obj_id")
        allowed += [(s, sqlstate(runtime_sql, s)) for s in statements]
    for statement in (
        "SET session_replication_role = replica",  # would silence every trigger
        "CREATE TABLE sneaky (id int)",
        "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        f"ALTER ROLE {runtime_role} SUPERUSER",
        "CREATE ROLE sneaky",
        "CREATE SCHEMA sneaky",
    ):
        allowed.append((statement, sqlstate(runtime_sql, statement)))
    assert [(s, state) for s, state in allowed if state != INSUFFICIENT_PRIVILEGE] == []
    assert counts(tables) == before


def test_db_roles_grants_only_the_listed_deletes_and_repairs_drift(runtime_role):
    assert check_runtime_role(runtime_role) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, "
            "(SELECT count(*) FROM pg_class WHERE relowner = r.oid) FROM pg_roles r WHERE rolname = %s",
            [runtime_role],
        )
        assert cursor.fetchone() == (False, False, False, False, False, True, 0)
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND has_table_privilege(%s, c.oid, 'DELETE')",
            [runtime_role],
        )
        deletable = {name for (name,) in cursor.fetchall()}
        assert "django_session" in deletable
        assert deletable <= set(DELETABLE_TABLES)
        assert not deletable & set(AUDIT_TABLES + CLINICAL_TABLES)

        # Someone grants too much by hand: the check names it, and the next db_roles run takes it back.
        cursor.execute(f"GRANT DELETE, TRUNCATE ON patients_patient, alerts_alertevent TO {runtime_role}")
    problems = check_runtime_role(runtime_role)
    assert "may DELETE from patients_patient" in problems
    assert "has TRUNCATE on alerts_alertevent" in problems
    call_command("db_roles", stdout=StringIO())
    assert check_runtime_role(runtime_role) == []


def test_tables_of_later_migrations_get_plain_dml_without_delete(runtime_role, runtime_sql):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE db_roles_later (id int)")
    try:
        assert sqlstate(runtime_sql, "INSERT INTO db_roles_later VALUES (1)") is None
        assert sqlstate(runtime_sql, "UPDATE db_roles_later SET id = 2") is None
        assert sqlstate(runtime_sql, "DELETE FROM db_roles_later") == INSUFFICIENT_PRIVILEGE
        assert sqlstate(runtime_sql, "TRUNCATE db_roles_later") == INSUFFICIENT_PRIVILEGE
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE db_roles_later")


def test_db_roles_refuses_the_owner_and_bad_role_names(runtime_role):
    with pytest.raises(CommandError, match="must be another role"):
        call_command("db_roles", "--role", connection.settings_dict["USER"], stdout=StringIO())
    with pytest.raises(CommandError, match="role name"):
        call_command("db_roles", "--role", "app; DROP TABLE patients_patient", stdout=StringIO())


def test_pages_api_sessions_and_services_work_as_the_runtime_role(as_runtime_role, client, team_a):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == as_runtime_role
    patient = clinical_record(team_a)  # services: schedule, sweep, collect, enter results (with their history)
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.runtime")
    factories.api_token(nurse)

    assert client.post("/accounts/login/", {"username": "nurse.runtime", "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": "nurse.runtime", "password": "a-long-test-password"})
    assert response.status_code == 302  # the failed attempt is cleared, the session key rotated
    assert client.get("/alerts/").status_code == 200
    alert = Alert.objects.get(patient=patient)
    assert client.post(f"/api/alerts/{alert.pk}/acknowledge/", {"comment": "seen"}).status_code == 200
    event = Alert.pgh_event_model.objects.filter(pgh_obj_id=alert.pk).latest("pgh_id")  # type: ignore[attr-defined]
    assert event.status == "acknowledged"
    assert event.pgh_context.metadata["user"] == nurse.pk
    assert client.post("/accounts/logout/").status_code == 302  # deletes the session and the API tokens
    assert client.get("/alerts/").status_code == 302


@pytest.mark.celery_stack
def test_worker_beat_and_mllp_listener_run_as_the_runtime_role(as_runtime_role, celery_stack, team_a, tmp_path):
    url = stack.test_database_url()
    assert f"//{as_runtime_role}" in url  # celery_stack started worker and beat with these credentials
    nurse = factories.make_user(Role.NURSE, team_a)
    patient = factories.make_patient(team_a)
    factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=1), grace=timedelta(0))
    wait_for(lambda: Alert.objects.filter(patient=patient).exists(), timeout=60)  # the beat's sweep, as runtime

    specimen = collected_specimen(patient, nurse, "Comprehensive metabolic panel")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "labflow.settings_test"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = tmp_path / "mllp.log"
    with log_path.open("w") as log:
        listener = subprocess.Popen(
            [sys.executable, "manage.py", "mllp_listen", "--port", "0"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        found = wait_for(lambda: re.search(r"MLLP listening on 127\.0\.0\.1:(\d+)", log_path.read_text()), 60)
        port = int(cast(re.Match[str], found).group(1))
        ack = send("127.0.0.1", port, _oru(patient, specimen))
    finally:
        listener.terminate()
        listener.wait(20)
    assert "MSA|AA|RUNTIME1" in ack, ack
    assert Result.objects.filter(specimen=specimen, lab_test__name="Potassium").exists()
    logs = "".join(Path(p).read_text() for p in celery_stack.values()) + log_path.read_text()
    assert "permission denied" not in logs.lower()


def _oru(patient, specimen) -> str:
    return (
        "MSH|^~\\&|ANALYZER|CORE LAB|LABFLOW|ONCOLOGY|20261122102000+0000||ORU^R01^ORU_R01|RUNTIME1|P|2.5.1\r"
        f"PID|1||{patient.mrn}^^^HOSP^MR||{patient.family_name}^{patient.given_name}||19600517|F\r"
        f"OBR|1|PL1|{specimen.accession}|24323-8^Comprehensive metabolic panel^LN|||20261122093000+0000\r"
        "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F|||20261122101500+0000\r"
        f"SPM|1|{specimen.accession}||SER^Serum^HL70487\r"
    )


def test_every_process_runs_by_default_and_as_the_runtime_role():
    """make run (Procfile) and Docker Compose start web, worker, beat and the MLLP listener; in Compose the owner
    only migrates and runs db_roles."""
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(procfile) == {"web", "worker", "beat", "mllp"}
    assert "mllp_listen --port ${MLLP_PORT:-2575}" in procfile["mllp"]
    assert all("--uid $LABFLOW_CELERY_USER" in procfile[name] for name in ("worker", "beat"))

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("web", "worker", "beat", "mllp"):
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://labflow_app:"), name
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    for name in ("web", "worker", "mllp"):
        assert services[name]["healthcheck"]["test"], name
    assert "/health/ready" in " ".join(services["web"]["healthcheck"]["test"])
    assert "mllp_listen" in services["mllp"]["command"]
    assert services["mllp"]["ports"] == ["${MLLP_PORT:-2575}:2575"]
    migrate = services["migrate"]
    assert migrate["environment"]["DATABASE_URL"].startswith("postgres://labflow_owner:")
    assert "manage.py migrate --noinput && python manage.py db_roles" in " ".join(migrate["command"])
    assert "POSTGRES_PASSWORD" not in str({k: v for k, v in services.items() if k not in ("postgres", "db-init")})
