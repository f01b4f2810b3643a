"""Benchmark of the overdue sweep (`monitoring.services.monitoring_tests_flag_overdue`).

Run from the project root:

    .venv/bin/python benchmarks/sweep.py [--sizes 100000 1000000] [--overdue 10000] [--repeat 5]

For each table size N it loads N scheduled monitoring tests (all due in the future) and measures:

  (a) the sweep with nothing due (median / p95 over --idle-calls calls) and the plans of its statements
      (one index probe per stage), captured from the sweep itself;
  (b) the sweep flagging --overdue newly overdue tests, end to end (flagged AND alerted); (b1) is the part of (b)
      spent in its flagging statements (flag + the sweep's own audit events + grouping the tests into draws),
      timed around the real statements; the rest of (b) is the alert side;
  (c) the hand-written baseline `UPDATE ... SET status = 'overdue' ... RETURNING` on the same rows (the design's
      reference for the 1.5x target; it raises no alerts);
  (d) for context, a hand-written single statement that flags AND alerts (UPDATE ... RETURNING feeding
      INSERT INTO alerts_alert ... ON CONFLICT DO NOTHING): the floor for the work the sweep must do.

The database is TRUNCATEd: it must be a dedicated one whose name contains "bench"
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/labflow_bench; created if missing).
Audit/protection triggers are bypassed only while resetting between repetitions, never while timing;
--explain adds EXPLAIN (ANALYZE, BUFFERS) of the flagging statements (rolled back), with trigger times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_bench"

sys.path.insert(0, str(ROOT))

from benchmarks._common import configure_django, execute, percentile, print_facts, run_facts, scalar, setup_database  # noqa: E402

configure_django(DEFAULT_DATABASE_URL)

if TYPE_CHECKING:
    from django.db.models import Model

    from benchmarks._common import Params


PATIENTS = 1_000
CARE_TEAMS = 10

# Everything the benchmark writes; TRUNCATE ... CASCADE also empties the pghistory event tables listed here.
TRUNCATE_TABLES = [
    "alerts_alert_escalated_to",
    "alerts_alert",
    "alerts_alertevent",
    "monitoring_monitoringtest",
    "monitoring_monitoringtestevent",
    "monitoring_monitoringtestflagevent",
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

# The same work as the sweep (flag + one alert per test), hand-written as one statement; {columns}/{values}
# come from insert_columns() so that new alert columns with a Django default are filled as alerts_raise does.
FLAG_AND_ALERT_SQL = """
WITH flagged AS (
    UPDATE monitoring_monitoringtest AS mt SET status = 'overdue', flagged_at = now()
    FROM monitoring_labtest AS lt
    WHERE mt.status = 'scheduled' AND mt.deadline <= now() AND lt.id = mt.lab_test_id
    RETURNING mt.id, mt.patient_id, lt.name
)
INSERT INTO alerts_alert ({columns})
SELECT {values}
FROM flagged AS f
ON CONFLICT ON CONSTRAINT alert_one_per_condition DO NOTHING
RETURNING id
"""


def _median_of(runs: str) -> property:
    """A property: the median of the list attribute `runs`."""
    return property(lambda self: statistics.median(getattr(self, runs)))


@dataclass
class SizeResult:
    size: int
    overdue: int
    load_s: float
    table_mb: float
    idle_median_ms: float
    idle_p95_ms: float
    idle_plans: list[list[str]]
    sweep_runs_ms: list[float]
    flag_runs_ms: list[float]
    alerts: int
    baseline_runs_ms: list[float]
    one_statement_runs_ms: list[float]

    sweep_ms = _median_of("sweep_runs_ms")
    flag_ms = _median_of("flag_runs_ms")
    baseline_ms = _median_of("baseline_runs_ms")
    one_statement_ms = _median_of("one_statement_runs_ms")

    @property
    def ratio(self) -> float:
        return self.sweep_ms / self.baseline_ms


def explain(statement: str, params: Params = None, *, immediate: bool = False) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) inside a transaction that is rolled back.

    `immediate` makes the deferred foreign-key checks run (and show) inside the statement.
    """
    from django.db import connection, transaction

    lines: list[str] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            if immediate:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return lines


def insert_columns(model: type[Model], computed: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """Column list, SELECT expressions and parameters for a set-based INSERT into `model`'s table.

    `computed` maps columns to SQL expressions; every other NOT NULL column gets the field's Django
    default as a parameter (nullable ones are left NULL), so the benchmark survives new columns.
    """
    from django.db import connection

    columns: list[str] = []
    values: list[str] = []
    params: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        column = field.column
        if column is None or (field.primary_key and column not in computed):
            continue
        if column in computed:
            columns.append(column)
            values.append(computed[column])
        elif not field.null:
            default = field.get_default()
            if default is None:
                raise RuntimeError(f"benchmark: no value for NOT NULL column {model._meta.db_table}.{column}")
            columns.append(column)
            values.append(f"%(default_{column})s")
            params[f"default_{column}"] = field.get_db_prep_save(default, connection)
    missing = set(computed) - set(columns)
    if missing:
        raise RuntimeError(f"benchmark: {model._meta.db_table} has no column(s) {sorted(missing)}")
    return ", ".join(columns), ", ".join(values), params


def load(size: int) -> float:
    """Empty the tables, then load care teams, patients and `size` scheduled tests due in the future."""
    from monitoring.models import MonitoringTest
    from patients.models import CareTeam, Patient

    started = time.perf_counter()
    execute(f"TRUNCATE {', '.join(TRUNCATE_TABLES)} RESTART IDENTITY CASCADE")
    lab_test_id = scalar("SELECT id FROM monitoring_labtest ORDER BY id LIMIT 1")
    columns, values, params = insert_columns(CareTeam, {"name": "'Bench team ' || g", "ward": "'Ward ' || g"})
    execute(
        f"INSERT INTO patients_careteam ({columns}) SELECT {values} FROM generate_series(1, %(teams)s) g",
        {**params, "teams": CARE_TEAMS},
    )
    columns, values, params = insert_columns(
        Patient,
        {
            "mrn": "'BENCH-' || g",
            "family_name": "'Family' || g",
            "given_name": "'Given' || g",
            "birth_date": "DATE '1960-01-01' + g",
            "sex": "(ARRAY['F', 'M'])[1 + g %% 2]",
            "weight_kg": "70.0",
            "height_cm": "170.0",
            "care_team_id": "(SELECT min(id) FROM patients_careteam) + g %% %(teams)s",
            "created_at": "now()",
        },
    )
    execute(
        f"INSERT INTO patients_patient ({columns}) SELECT {values} FROM generate_series(1, %(patients)s) g",
        {**params, "teams": CARE_TEAMS, "patients": PATIENTS},
    )
    # Deadlines spread evenly over now + 1 hour .. now + 30 days; grace 0..6 h; deadline = due_at + grace exactly.
    columns, values, params = insert_columns(
        MonitoringTest,
        {
            "patient_id": "p0 + g %% %(patients)s",
            "lab_test_id": "%(lab_test)s",
            "due_at": "t.deadline - t.grace",
            "grace_period": "t.grace",
            "deadline": "t.deadline",
            "status": "'scheduled'",
            "created_at": "now()",
        },
    )
    execute(
        f"""
        INSERT INTO monitoring_monitoringtest ({columns})
        SELECT {values}
        FROM generate_series(1, %(size)s) g,
             LATERAL (SELECT now() + interval '1 hour' + (interval '30 days' - interval '1 hour') * g / %(size)s
                             AS deadline,
                             make_interval(hours => g %% 7) AS grace) t,
             (SELECT min(id) AS p0 FROM patients_patient) p
        """,
        {**params, "patients": PATIENTS, "lab_test": lab_test_id, "size": size},
    )
    execute("VACUUM ANALYZE monitoring_monitoringtest")
    execute("VACUUM ANALYZE patients_patient")
    execute("VACUUM ANALYZE alerts_alert")
    return time.perf_counter() - started


def capture_sweep_statements() -> list[tuple[str, Params]]:
    """The flagging statements the sweep really executes (one per stage), captured during one call."""
    from django.db import connection

    from monitoring.services import monitoring_tests_flag_overdue

    captured: list[tuple[str, Params]] = []

    def wrapper(run: Callable[..., Any], statement: str, params: Params, many: bool, context: Any) -> Any:
        if "UPDATE monitoring_monitoringtest" in statement and not many:
            captured.append((statement, params))
        return run(statement, params, many, context)

    with connection.execute_wrapper(wrapper):
        monitoring_tests_flag_overdue()
    assert captured, "the sweep executed no UPDATE on monitoring_monitoringtest"
    return captured


def measure_idle(calls: int) -> tuple[float, float, list[list[str]]]:
    from monitoring.services import monitoring_tests_flag_overdue

    for _ in range(5):  # warm-up: connection, ContentType cache, plan, buffers
        monitoring_tests_flag_overdue()
    timings: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        flagged = monitoring_tests_flag_overdue()
        timings.append((time.perf_counter() - started) * 1000)
        assert flagged == [], f"nothing should be due, yet {len(flagged)} alerts were raised"
    plans = [explain(statement, params) for statement, params in capture_sweep_statements()]
    assert "monitoringtest_deadline_idx" in "\n".join(plans[0]), "the collection probe does not use its index"
    for plan in plans:
        assert not any("Seq Scan" in line for line in plan), "an idle probe scans the table"
    return statistics.median(timings), percentile(timings, 95), plans


def reset(size: int, overdue: int) -> None:
    """Untimed: clear alerts, put `overdue` rows (spread over the heap) back to scheduled with a past deadline.

    Runs with session_replication_role = replica so the reset itself neither hits the delete protection
    nor writes audit events; it is restored before anything is timed. VACUUM and CHECKPOINT leave clean
    buffers, so the timed part pays only for its own writes.
    """
    step = size // overdue
    execute("SET session_replication_role = replica")
    try:
        execute("TRUNCATE alerts_alert_escalated_to, alerts_alert, alerts_alertevent RESTART IDENTITY CASCADE")
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
    execute("CHECKPOINT")  # the timed statement must not pay for writing out the reset's dirty pages
    due = scalar("SELECT count(*) FROM monitoring_monitoringtest WHERE status = 'scheduled' AND deadline <= now()")
    assert due == overdue, f"reset left {due} rows due, expected {overdue}"


def time_sweep(overdue: int, flag_runs: list[float], alert_counts: list[int]) -> float:
    """(b) end to end; appends (b1), the time of its flagging statements, to `flag_runs` and the number of
    alerts raised (one per draw: it depends on how the reset's rows fall on patients and due times) to
    `alert_counts`."""
    from django.db import connection

    from monitoring.services import monitoring_tests_flag_overdue

    flag_ms = 0.0

    def timed_flags(run: Callable[..., Any], statement: str, params: Params, many: bool, context: Any) -> Any:
        nonlocal flag_ms
        if "UPDATE monitoring_monitoringtest" not in statement:
            return run(statement, params, many, context)
        started = time.perf_counter()
        try:
            return run(statement, params, many, context)
        finally:
            flag_ms += (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with connection.execute_wrapper(timed_flags):
        alert_ids = monitoring_tests_flag_overdue()
    elapsed = (time.perf_counter() - started) * 1000
    flag_runs.append(flag_ms)
    # One alert per draw (a patient's tests due together), each test a member of exactly one.
    flagged = scalar("SELECT count(*) FROM monitoring_monitoringtest WHERE status = 'overdue'")
    members = scalar("SELECT count(*) FROM alerts_alert, unnest(members) WHERE kind = 'collection_overdue'")
    alerts = scalar("SELECT count(*) FROM alerts_alert WHERE kind = 'collection_overdue'")
    assert flagged == members == overdue, f"flagged {flagged}, members {members}, expected {overdue}"
    assert len(set(alert_ids)) == alerts <= overdue, f"sweep returned {len(alert_ids)} ids, {alerts} alerts"
    alert_counts.append(int(alerts))
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


def one_statement_sql() -> tuple[str, dict[str, Any]]:
    from django.contrib.contenttypes.models import ContentType

    from alerts.choices import AlertKind, AlertSeverity
    from alerts.models import Alert
    from monitoring.models import MonitoringTest

    columns, values, params = insert_columns(
        Alert,
        {
            "kind": "%(kind)s",
            "severity": "%(severity)s",
            "status": "'open'",
            "patient_id": "f.patient_id",
            "subject_type_id": "%(subject_type)s",
            "subject_id": "f.id",
            "summary": "f.name || ': collection overdue'",
            "raised_at": "now()",
            "updated_at": "now()",
            "notify_at": "now()",
            "last_occurred_at": "now()",
            "members": "ARRAY[f.id]",
            "outstanding": "ARRAY[f.id]",
        },
    )
    params |= {
        "kind": AlertKind.COLLECTION_OVERDUE.value,
        "severity": int(AlertSeverity.MODERATE),
        "subject_type": ContentType.objects.get_for_model(MonitoringTest).pk,  # cached after the first call
    }
    return FLAG_AND_ALERT_SQL.format(columns=columns, values=values), params


def time_one_statement(overdue: int) -> float:
    from django.db import connection

    statement, params = one_statement_sql()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    elapsed = (time.perf_counter() - started) * 1000
    assert len(rows) == overdue, f"one statement raised {len(rows)} alerts, expected {overdue}"
    return elapsed


def explain_flagging(size: int, overdue: int) -> None:
    """Plans (with trigger times) of the sweep's statements, the baseline and (d), each rolled back."""
    statements = capture_sweep_statements()
    reset(size, overdue)
    for number, (statement, params) in enumerate(statements, 1):
        print(f"\n#### Sweep flagging statement {number}/{len(statements)} (rolled back)\n\n```")
        print("\n".join(explain(statement, params)))
        print("```")
    print("\n#### (c) Baseline UPDATE ... RETURNING (rolled back)\n\n```")
    print("\n".join(explain(BASELINE_SQL)))
    print("```\n\n#### (d) Flag + alert in one statement, FK checks made immediate (rolled back)\n\n```")
    statement, params = one_statement_sql()
    print("\n".join(explain(statement, params, immediate=True)))
    print("```")


def run_size(size: int, overdue: int, repeat: int, idle_calls: int, show_plans: bool) -> SizeResult:
    overdue = min(overdue, size)
    print(f"[{size:,}] loading ...", file=sys.stderr, flush=True)
    load_s = load(size)
    table_mb = float(scalar("SELECT pg_total_relation_size('monitoring_monitoringtest')")) / 2**20
    print(f"[{size:,}] loaded in {load_s:.1f} s; idle sweep x{idle_calls} ...", file=sys.stderr, flush=True)
    idle_median, idle_p95, plan = measure_idle(idle_calls)
    sweep_runs: list[float] = []
    flag_runs: list[float] = []
    alert_counts: list[int] = []
    baseline_runs: list[float] = []
    one_statement_runs: list[float] = []
    steps: list[tuple[list[float], Callable[[int], float]]] = [
        (sweep_runs, lambda n: time_sweep(n, flag_runs, alert_counts)),
        (baseline_runs, time_baseline),
        (one_statement_runs, time_one_statement),
    ]
    for rep in range(repeat):  # interleaved so drift affects all three alike
        for runs, timed in steps:
            reset(size, overdue)
            runs.append(timed(overdue))
        print(
            f"[{size:,}] rep {rep + 1}/{repeat}: sweep {sweep_runs[-1]:.0f} ms (flagging {flag_runs[-1]:.0f} ms), "
            f"baseline {baseline_runs[-1]:.0f} ms, "
            f"one statement {one_statement_runs[-1]:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
    if show_plans:
        print(f"\n### Plans at {size:,} rows, {overdue:,} overdue")
        explain_flagging(size, overdue)
    return SizeResult(
        size,
        overdue,
        load_s,
        table_mb,
        idle_median,
        idle_p95,
        plan,
        sweep_runs,
        flag_runs,
        max(alert_counts),
        baseline_runs,
        one_statement_runs,
    )


def report(results: list[SizeResult], facts: dict[str, str], repeat: int, idle_calls: int) -> None:
    print_facts("Machine", facts)
    print(f"\n## Results (median of {repeat} runs; idle sweep median/p95 of {idle_calls} calls)\n")
    print(
        "| Rows | Nothing due: median | Nothing due: p95 | Newly overdue | Alerts raised | (b) Sweep (flag + alert) "
        "| (b1) of which flagging statements | (c) Baseline UPDATE…RETURNING | (b) / (c) | (b1) / (c) "
        "| (d) Hand-written flag + alert, 1 statement | (b) / (d) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.size:,} | {r.idle_median_ms:.2f} ms | {r.idle_p95_ms:.2f} ms | {r.overdue:,} | {r.alerts:,} "
            f"| {r.sweep_ms:.0f} ms | {r.flag_ms:.0f} ms | {r.baseline_ms:.0f} ms | {r.ratio:.2f}x "
            f"| {r.flag_ms / r.baseline_ms:.2f}x "
            f"| {r.one_statement_ms:.0f} ms | {r.sweep_ms / r.one_statement_ms:.2f}x |"
        )
    print("\n### Individual runs (ms)\n")
    for r in results:
        sweep = ", ".join(f"{v:.0f}" for v in r.sweep_runs_ms)
        flag = ", ".join(f"{v:.0f}" for v in r.flag_runs_ms)
        baseline = ", ".join(f"{v:.0f}" for v in r.baseline_runs_ms)
        one = ", ".join(f"{v:.0f}" for v in r.one_statement_runs_ms)
        paired = statistics.median(b / c for b, c in zip(r.sweep_runs_ms, r.baseline_runs_ms, strict=True))
        paired_flag = statistics.median(b / c for b, c in zip(r.flag_runs_ms, r.baseline_runs_ms, strict=True))
        print(
            f"- {r.size:,} rows (table + indexes {r.table_mb:.0f} MB, loaded in {r.load_s:.1f} s): "
            f"(b) [{sweep}]; (b1) [{flag}]; (c) [{baseline}]; (d) [{one}]; median of paired (b)/(c) ratios "
            f"{paired:.2f}x, of paired (b1)/(c) ratios {paired_flag:.2f}x"
        )
    for r in results:
        for number, plan in enumerate(r.idle_plans, 1):
            title = f"Nothing due, {r.size:,} rows: sweep statement {number}/{len(r.idle_plans)}"
            print(f"\n### {title}, EXPLAIN (ANALYZE, BUFFERS)\n\n```")
            print("\n".join(plan))
            print("```")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="table sizes (rows)")
    parser.add_argument("--overdue", type=int, default=10_000, help="tests made newly overdue per repetition")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the flagging measurements")
    parser.add_argument("--idle-calls", type=int, default=50, help="calls of the nothing-due sweep")
    parser.add_argument("--recreate-db", action="store_true", help="drop and recreate the benchmark database first")
    parser.add_argument("--explain", action="store_true", help="also print EXPLAIN ANALYZE of the flagging statements")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.overdue < 1 or args.idle_calls < 1 or min(args.sizes) < 1:
        parser.error("--sizes, --overdue, --repeat and --idle-calls must be positive")

    setup_database(recreate=args.recreate_db, statement_timeout="10min")

    load_at_start = os.getloadavg()
    results = [run_size(size, args.overdue, args.repeat, args.idle_calls, args.explain) for size in args.sizes]
    report(results, run_facts(load_at_start), args.repeat, args.idle_calls)


if __name__ == "__main__":
    main()
