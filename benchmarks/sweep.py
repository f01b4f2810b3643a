"""Benchmark of the overdue sweep (`monitoring.services.monitoring_tests_flag_overdue`).

Run from the project root:

    .venv/bin/python benchmarks/sweep.py [--sizes 100000 1000000] [--overdue 10000] [--repeat 5]

For each table size N it loads N scheduled monitoring tests (all due in the future) and measures:

  (a) the sweep with nothing due (median / p95 over --idle-calls calls) and the plan of its probe;
  (b) the sweep flagging --overdue newly overdue tests, end to end (flagged AND alerted);
  (c) the hand-written baseline `UPDATE ... SET status = 'overdue' ... RETURNING` on the same rows.

The database is TRUNCATEd: it must be a dedicated one whose name contains "bench"
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/labflow_bench; created if missing).
Audit/protection triggers are bypassed only while resetting between repetitions, never while timing.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_bench"

sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "labflow.settings_test"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)

import django  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

Params = Sequence[Any] | Mapping[str, Any] | None

PATIENTS = 1_000
CARE_TEAMS = 10

# Everything the benchmark writes; TRUNCATE ... CASCADE also empties the pghistory event tables listed here.
TRUNCATE_TABLES = [
    "alerts_alert_escalated_to",
    "alerts_alert",
    "alerts_alertevent",
    "monitoring_monitoringtest",
    "monitoring_monitoringtestevent",
    "patients_careteammembership",
    "patients_careteammembershipevent",
    "patients_patient",
    "patients_patientevent",
    "patients_careteam",
    "patients_careteamevent",
]

# The baseline the design compares against: one hand-written statement, no alerts.
BASELINE_SQL = """
UPDATE monitoring_monitoringtest SET status = 'overdue', flagged_at = now()
WHERE status = 'scheduled' AND deadline <= now()
RETURNING id, patient_id
"""

# The sweep's candidate probe, exactly as in monitoring.services._FLAG_OVERDUE_SQL (now=None).
PROBE_SQL = """
SELECT id FROM monitoring_monitoringtest
WHERE status = 'scheduled' AND deadline <= COALESCE(NULL::timestamptz, statement_timestamp())
ORDER BY deadline
LIMIT 10000
FOR UPDATE SKIP LOCKED
"""


@dataclass
class SizeResult:
    size: int
    overdue: int
    load_s: float
    idle_median_ms: float
    idle_p95_ms: float
    idle_plan: list[str]
    sweep_runs_ms: list[float]
    baseline_runs_ms: list[float]

    @property
    def sweep_ms(self) -> float:
        return statistics.median(self.sweep_runs_ms)

    @property
    def baseline_ms(self) -> float:
        return statistics.median(self.baseline_runs_ms)

    @property
    def ratio(self) -> float:
        return self.sweep_ms / self.baseline_ms


def ensure_database(url: str) -> str:
    """Create the benchmark database if it does not exist; return its name."""
    dbname = str(conninfo_to_dict(url).get("dbname") or "")
    if "bench" not in dbname:
        sys.exit(f"refusing to run: the benchmark TRUNCATEs tables, and database {dbname!r} is not named *bench*")
    with psycopg.connect(url, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            print(f"created database {dbname}", file=sys.stderr)
    return dbname


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def execute(statement: str, params: Params = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def scalar(statement: str, params: Params = None) -> object:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    assert row is not None
    return row[0]


def explain(statement: str, params: Params = None) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) inside a transaction that is rolled back."""
    from django.db import connection, transaction

    lines: list[str] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return lines


def load(size: int) -> float:
    """Empty the tables, then load care teams, patients and `size` scheduled tests due in the future."""
    started = time.perf_counter()
    execute(f"TRUNCATE {', '.join(TRUNCATE_TABLES)} RESTART IDENTITY CASCADE")
    lab_test_id = scalar("SELECT id FROM monitoring_labtest ORDER BY id LIMIT 1")
    execute(
        "INSERT INTO patients_careteam (name, ward) SELECT 'Bench team ' || g, 'Ward ' || g"
        " FROM generate_series(1, %s) g",
        [CARE_TEAMS],
    )
    execute(
        """
        INSERT INTO patients_patient (mrn, family_name, given_name, birth_date, sex, weight_kg, height_cm,
                                      care_team_id, created_at)
        SELECT 'BENCH-' || g, 'Family' || g, 'Given' || g, DATE '1960-01-01' + g, (ARRAY['F', 'M'])[1 + g %% 2],
               70.0, 170.0, (SELECT min(id) FROM patients_careteam) + g %% %(teams)s, now()
        FROM generate_series(1, %(patients)s) g
        """,
        {"teams": CARE_TEAMS, "patients": PATIENTS},
    )
    # Deadlines spread evenly over now + 1 hour .. now + 30 days; grace 0..6 h; deadline = due_at + grace exactly.
    execute(
        """
        INSERT INTO monitoring_monitoringtest (patient_id, lab_test_id, due_at, grace_period, deadline, status,
                                               flagged_at, created_at, cancel_reason)
        SELECT p0 + g %% %(patients)s, %(lab_test)s, t.deadline - t.grace, t.grace, t.deadline, 'scheduled',
               NULL, now(), ''
        FROM generate_series(1, %(size)s) g,
             LATERAL (SELECT now() + interval '1 hour' + (interval '30 days' - interval '1 hour') * g / %(size)s
                             AS deadline,
                             make_interval(hours => g %% 7) AS grace) t,
             (SELECT min(id) AS p0 FROM patients_patient) p
        """,
        {"patients": PATIENTS, "lab_test": lab_test_id, "size": size},
    )
    execute("VACUUM ANALYZE monitoring_monitoringtest")
    execute("VACUUM ANALYZE patients_patient")
    execute("VACUUM ANALYZE alerts_alert")
    return time.perf_counter() - started


def measure_idle(calls: int) -> tuple[float, float, list[str]]:
    from monitoring.services import monitoring_tests_flag_overdue

    for _ in range(5):  # warm-up: connection, ContentType cache, plan, buffers
        monitoring_tests_flag_overdue()
    timings: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        flagged = monitoring_tests_flag_overdue()
        timings.append((time.perf_counter() - started) * 1000)
        assert flagged == [], f"nothing should be due, yet {len(flagged)} alerts were raised"
    plan = explain(PROBE_SQL)
    assert any("monitoringtest_deadline_idx" in line for line in plan), "the probe does not use the deadline index"
    return statistics.median(timings), percentile(timings, 95), plan


def reset(size: int, overdue: int) -> None:
    """Untimed: clear alerts, put `overdue` rows (spread over the heap) back to scheduled with a past deadline.

    Runs with session_replication_role = replica so the reset itself neither hits the delete protection
    nor writes audit events; it is restored before anything is timed.
    """
    step = size // overdue
    execute("SET session_replication_role = replica")
    try:
        execute("TRUNCATE alerts_alert_escalated_to, alerts_alert, alerts_alertevent RESTART IDENTITY")
        execute(
            """
            UPDATE monitoring_monitoringtest
            SET status = 'scheduled', flagged_at = NULL,
                due_at = now() - interval '1 minute' - (id %% 60) * interval '1 second' - grace_period,
                deadline = now() - interval '1 minute' - (id %% 60) * interval '1 second'
            WHERE id %% %(step)s = 0 AND id <= %(last)s
            """,
            {"step": step, "last": step * overdue},
        )
    finally:
        execute("SET session_replication_role = origin")
    execute("VACUUM monitoring_monitoringtest")
    due = scalar("SELECT count(*) FROM monitoring_monitoringtest WHERE status = 'scheduled' AND deadline <= now()")
    assert due == overdue, f"reset left {due} rows due, expected {overdue}"


def time_sweep(overdue: int) -> float:
    from monitoring.services import monitoring_tests_flag_overdue

    started = time.perf_counter()
    alert_ids = monitoring_tests_flag_overdue()
    elapsed = (time.perf_counter() - started) * 1000
    assert len(alert_ids) == overdue, f"sweep raised {len(alert_ids)} alerts, expected {overdue}"
    flagged = scalar("SELECT count(*) FROM monitoring_monitoringtest WHERE status = 'overdue'")
    alerts = scalar("SELECT count(*) FROM alerts_alert WHERE kind = 'collection_overdue'")
    assert flagged == alerts == overdue, f"flagged {flagged}, alerts {alerts}, expected {overdue}"
    return elapsed


def time_baseline(overdue: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL)
        rows = cursor.fetchall()
    elapsed = (time.perf_counter() - started) * 1000
    assert len(rows) == overdue, f"baseline flagged {len(rows)} rows, expected {overdue}"
    return elapsed


def explain_flagging(size: int, overdue: int) -> None:
    """Plans (with trigger times) of the sweep's two statements and of the baseline, each rolled back."""
    from django.contrib.contenttypes.models import ContentType

    from monitoring.models import MonitoringTest
    from monitoring.services import _FLAG_OVERDUE_SQL

    reset(size, overdue)
    print("\n#### Sweep flagging statement (rolled back)\n\n```")
    print("\n".join(explain(_FLAG_OVERDUE_SQL, {"now": None, "batch": 10_000})))
    print("```\n\n#### Baseline UPDATE ... RETURNING (rolled back)\n\n```")
    print("\n".join(explain(BASELINE_SQL)))
    print("```\n\n#### Alert INSERT of", overdue, "rows (rolled back)\n\n```")
    subject_type = ContentType.objects.get_for_model(MonitoringTest).pk
    insert = f"""
        INSERT INTO alerts_alert (kind, severity, status, patient_id, subject_type_id, subject_id, summary,
                                  raised_at, updated_at, acknowledge_comment, resolution_reason, resolve_comment)
        SELECT 'collection_overdue', 2, 'open', patient_id, {int(subject_type)}, id, 'x: collection overdue',
               statement_timestamp(), statement_timestamp(), '', '', ''
        FROM monitoring_monitoringtest WHERE status = 'scheduled' AND deadline <= now()
        ON CONFLICT ON CONSTRAINT alert_one_per_condition DO NOTHING
        RETURNING id
    """
    print("\n".join(explain(insert)))
    print("```")


def run_size(size: int, overdue: int, repeat: int, idle_calls: int, show_plans: bool) -> SizeResult:
    overdue = min(overdue, size)
    print(f"[{size:,}] loading ...", file=sys.stderr, flush=True)
    load_s = load(size)
    print(f"[{size:,}] loaded in {load_s:.1f} s; idle sweep x{idle_calls} ...", file=sys.stderr, flush=True)
    idle_median, idle_p95, plan = measure_idle(idle_calls)
    sweep_runs: list[float] = []
    baseline_runs: list[float] = []
    steps: list[tuple[list[float], Callable[[int], float]]] = [(sweep_runs, time_sweep), (baseline_runs, time_baseline)]
    for rep in range(repeat):  # interleaved so drift affects both alike
        for runs, timed in steps:
            reset(size, overdue)
            runs.append(timed(overdue))
        print(
            f"[{size:,}] rep {rep + 1}/{repeat}: sweep {sweep_runs[-1]:.0f} ms, baseline {baseline_runs[-1]:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
    if show_plans:
        print(f"\n### Plans at {size:,} rows, {overdue:,} overdue")
        explain_flagging(size, overdue)
    return SizeResult(size, overdue, load_s, idle_median, idle_p95, plan, sweep_runs, baseline_runs)


def machine_facts() -> dict[str, str]:
    from django.db import connection

    facts = {
        "nproc": str(len(os.sched_getaffinity(0))),
        "PostgreSQL": str(scalar("SHOW server_version")),
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "psycopg": psycopg.__version__,
    }
    for setting in ("shared_buffers", "synchronous_commit", "fsync", "jit"):
        facts[setting] = str(scalar(f"SHOW {setting}"))
    facts["database"] = connection.settings_dict["NAME"]
    return facts


def report(results: list[SizeResult], facts: dict[str, str], repeat: int, idle_calls: int) -> None:
    print("\n## Machine\n")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(f"\n## Results (median of {repeat} runs; idle sweep median/p95 of {idle_calls} calls)\n")
    print(
        "| Rows | Nothing due: median | Nothing due: p95 | Newly overdue | Sweep (flag + alert) "
        "| Baseline UPDATE…RETURNING | Sweep / baseline |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.size:,} | {r.idle_median_ms:.2f} ms | {r.idle_p95_ms:.2f} ms | {r.overdue:,} "
            f"| {r.sweep_ms:.0f} ms | {r.baseline_ms:.0f} ms | {r.ratio:.2f}x |"
        )
    print("\n### Individual runs (ms)\n")
    for r in results:
        sweep = ", ".join(f"{v:.0f}" for v in r.sweep_runs_ms)
        baseline = ", ".join(f"{v:.0f}" for v in r.baseline_runs_ms)
        print(f"- {r.size:,} rows (loaded in {r.load_s:.1f} s): sweep [{sweep}]; baseline [{baseline}]")
    for r in results:
        print(f"\n### Nothing-due probe at {r.size:,} rows: EXPLAIN (ANALYZE, BUFFERS)\n\n```")
        print("\n".join(r.idle_plan))
        print("```")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="table sizes (rows)")
    parser.add_argument("--overdue", type=int, default=10_000, help="tests made newly overdue per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the flagging measurements")
    parser.add_argument("--idle-calls", type=int, default=50, help="calls of the nothing-due sweep")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of the flagging statements")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.overdue < 1 or args.idle_calls < 1 or min(args.sizes) < 1:
        parser.error("--sizes, --overdue, --repeat and --idle-calls must be positive")

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    execute("SET statement_timeout = '10min'")  # bounds every statement, including the load

    results = [run_size(size, args.overdue, args.repeat, args.idle_calls, args.explain) for size in args.sizes]
    report(results, machine_facts(), args.repeat, args.idle_calls)


if __name__ == "__main__":
    main()
