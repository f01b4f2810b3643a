"""Outages: how soon alerts flow again after Redis returns, and what users see while PostgreSQL restarts.

Run from the project root:

    .venv/bin/python benchmarks/outages.py [--outages 60 240] [--repeat 1] [--restarts 5] [--clients 4]

Redis: a private redis-server (its own port and temporary directory, no persistence, so it comes back empty:
queues and bindings gone) is the broker of one Celery worker and exactly one beat, with the default settings
(SWEEP_INTERVAL_SECONDS 10). For each outage length the script waits until the sweep runs, stops Redis,
schedules a monitoring test (grace 0) that falls due 5 s into the outage, starts Redis again on the same port
after the outage, and reports the delay from Redis answering again to the alert's `raised_at` (both on this
machine's clock), when the worker reconnected, and what beat logged meanwhile (target, docs/architecture.md §6:
alerts flow again <= 5 s after Redis returns; beat: one line per failed send, no traceback).

PostgreSQL: a private cluster (pgserver's binaries; as the `postgres` OS user when run as root) holding a clone
of the benchmark database, behind gunicorn (2 workers, persistent connections as in production). --clients
logged-in nurse sessions poll the inbox page, the header count and the alerts API back to back while the
cluster is restarted (`pg_ctl restart -m fast`) --restarts times, 4 s apart. Reported: every status code users
got, the 503s' Retry-After, and how long each restart showed 503s (target: 503s only, never a 500).

The benchmark database (--database-url or BENCH_DATABASE_URL, default labflow_bench_outages on 127.0.0.1; its
name must contain "bench") is re-created. The machine's own Redis and PostgreSQL are never stopped. The servers
are started by tests/faults/servers.py (shared with the fault tests).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import migrate, recreate_database  # noqa: E402
from benchmarks._web import Processes, bench_env, run_and_report  # noqa: E402
from tests.faults.servers import PrivatePostgres, PrivateRedis, login  # noqa: E402
from tests.polling import wait_for  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_bench_outages"
PASSWORD = "bench-nurse-password-2026"  # noqa: S105 (a throw-away user in a throw-away database)
PATHS = ("/alerts/", "/alerts/badge/", "/api/alerts/")
PLAIN_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) ")

# --------------------------------------------------------------------------- logs


def log_records(path: Path) -> list[tuple[float, str]]:
    """(wall-clock time, message) of each record in a log written by LOGGING (json or plain format)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        stamp = message = None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            stamp, message = record.get("time"), str(record.get("message", ""))
        elif match := PLAIN_TIME.match(line):
            stamp, message = match.group(1), line[match.end() :]
        if stamp and message is not None:
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone()  # the servers log local time
            records.append((moment.timestamp(), message))
    return records


# --------------------------------------------------------------------------- Redis outage


def make_nurse(run: str) -> tuple[Any, Any]:
    from accounts.choices import Role
    from tests import factories

    team = factories.make_team(f"Outage team {run}", "Ward O")
    nurse = factories.make_user(Role.NURSE, team, f"outage.nurse.{run}")
    nurse.set_password(PASSWORD)
    nurse.save(update_fields=["password"])
    return nurse, factories.make_patient(team)


def sweep_ran_since(moment: float) -> bool:
    from monitoring.models import SweepHeartbeat

    beat = SweepHeartbeat.objects.filter(name="overdue_sweep").values_list("last_run_at", flat=True).first()
    return beat is not None and beat.timestamp() > moment


def redis_outage(env: dict[str, str], log_dir: Path, server: PrivateRedis, seconds: float, run: str) -> dict[str, Any]:
    from django.utils import timezone

    from alerts.models import Alert
    from tests import factories

    log_dir.mkdir(parents=True)
    processes = Processes(env, log_dir)
    processes.celery()
    try:
        started = time.time()
        wait_for(lambda: sweep_ran_since(started), 60, "the sweep running")
        _, patient = make_nurse(run)
        server.stop()
        stopped = time.time()
        test = factories.make_test(patient, due_at=timezone.now() + timedelta(seconds=5), grace=timedelta(0))
        while time.time() < stopped + seconds:
            processes.check_alive()
            time.sleep(0.5)
        assert not Alert.objects.filter(subject_id=test.pk).exists(), "an alert was raised while Redis was down"
        server.start()
        back = server.ready_at
        alert = wait_for(lambda: Alert.objects.filter(subject_id=test.pk).first(), 120, "the alert", interval=0.05)
        raised = alert.raised_at.timestamp()  # type: ignore[attr-defined]
        time.sleep(1)  # let the logs reach their files
    finally:
        processes.stop()
    beat = log_records(log_dir / "beat.log")
    worker = log_records(log_dir / "worker.log")
    beat_text = (log_dir / "beat.log").read_text(errors="replace")
    failed_sends = [t for t, message in beat if "not sent, broker unreachable" in message]
    reconnected = [t for t, message in worker if message.startswith("Connected to") and t >= back - 0.5]
    first_send = [t for t, message in beat if message.startswith("Scheduler: Sent due task") and t >= back - 0.5]
    outage_lines = [line for t, line in beat if stopped <= t <= back]
    return {
        "outage_s": round(back - stopped, 1),
        "alert_after_redis_back_s": round(raised - back, 2),
        "worker_reconnected_after_s": round(reconnected[0] - back, 2) if reconnected else None,
        "beat_first_send_after_s": round(first_send[0] - back, 2) if first_send else None,
        "beat_failed_sends": len(failed_sends),
        "beat_log_records_during_outage": len(outage_lines),
        "beat_log_has_traceback": "Traceback" in beat_text,
        "worker_retry_lines": sum(1 for _, message in worker if "Cannot connect to" in message),
    }


# --------------------------------------------------------------------------- PostgreSQL restarts


def postgres_restarts(env: dict[str, str], log_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection

    from tests import factories

    nurse, patient = make_nurse("pg")
    factories.make_test(patient)
    connection.close()
    log_dir.mkdir(parents=True)
    cluster = PrivatePostgres()
    processes: Processes | None = None
    seen: list[tuple[float, int, str | None]] = []
    errors: list[str] = []
    restarts: list[tuple[float, float]] = []
    try:
        cluster.init()
        source = env["DATABASE_URL"]
        cluster.clone(source, "labflow_bench_clone")
        processes = Processes({**env, "DATABASE_URL": cluster.url("labflow_bench_clone")}, log_dir)
        base = processes.web(workers=2)
        sessions = [login(base, nurse.username, PASSWORD) for _ in range(args.clients)]
        done = threading.Event()

        def poll(session: Any) -> None:
            while not done.is_set():
                for path in PATHS:
                    try:
                        response = session.get(f"{base}{path}", timeout=10)
                    except Exception as error:  # a refused or reset connection: count it, keep polling
                        errors.append(type(error).__name__)
                        continue
                    seen.append((time.time(), response.status_code, response.headers.get("Retry-After")))

        pollers = [threading.Thread(target=poll, args=(session,)) for session in sessions]
        for poller in pollers:
            poller.start()
        try:
            for _ in range(args.restarts):
                time.sleep(4)
                begun = time.time()
                cluster.restart()
                restarts.append((begun, time.time()))
            time.sleep(4)
        finally:
            done.set()
            for poller in pollers:
                poller.join(timeout=30)
    finally:
        if processes is not None:
            processes.stop()
        cluster.destroy()

    statuses = collections.Counter(status for _, status, _ in seen)
    windows = []
    for i, (begun, _) in enumerate(restarts):
        until = restarts[i + 1][0] if i + 1 < len(restarts) else float("inf")
        unavailable = [t for t, status, _ in seen if status == 503 and begun - 0.5 <= t < until - 0.5]
        windows.append(round(max(unavailable) - min(unavailable), 2) if unavailable else 0.0)
    return {
        "restarts": len(restarts),
        "pg_ctl_restart_s": [round(ended - begun, 2) for begun, ended in restarts],
        "requests": len(seen),
        "statuses": dict(sorted(statuses.items())),
        "retry_after_values": sorted({retry for _, status, retry in seen if status == 503 and retry is not None}),
        "503_without_retry_after": sum(1 for _, status, retry in seen if status == 503 and not retry),
        "503_window_s": windows,
        "client_errors": dict(collections.Counter(errors)),
    }


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="labflow-bench-outages-"))
    redis_server = PrivateRedis(tmp)
    redis_server.start()
    try:
        env = bench_env(tmp, database_url=args.database_url, redis_url=redis_server.url)
        env["LOG_LEVEL"] = "INFO"  # the worker's "Connected to" and beat's sends are INFO records
        recreate_database(args.database_url)
        os.environ.update(env)
        import django

        django.setup()
        migrate()
        from django.conf import settings

        outages = []
        for seconds in args.outages:
            for i in range(args.repeat):
                name = f"redis-{seconds:g}s-{i}"
                outages.append(redis_outage(env, tmp / name, redis_server, seconds, name))
        restarts = postgres_restarts(env, tmp / "postgres", args) if args.restarts else None
        return {
            "sweep_interval_s": settings.SWEEP_INTERVAL_SECONDS,
            "broker_transport_options": {
                key: value
                for key, value in settings.CELERY_BROKER_TRANSPORT_OPTIONS.items()
                if key.startswith("interval")
            },
            "redis_outages": outages,
            "postgres": restarts,
            "wall_s": round(time.monotonic() - started),
        }
    finally:
        redis_server.stop()
        if args.keep:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_report(result: dict[str, Any]) -> None:
    print(f"machine: {result['machine']}")
    print(f"sweep every {result['sweep_interval_s']:g} s; reconnect intervals {result['broker_transport_options']}")
    print("\nRedis outage (s)  alert after Redis back  worker reconnected  beat first send  "
          "beat failed sends / records  traceback")  # fmt: skip
    for row in result["redis_outages"]:
        print(
            f"{row['outage_s']:>16.1f}  {row['alert_after_redis_back_s']:>22.2f}  "
            f"{row['worker_reconnected_after_s']!s:>18}  {row['beat_first_send_after_s']!s:>15}  "
            f"{row['beat_failed_sends']:>15} / {row['beat_log_records_during_outage']:<9}  "
            f"{row['beat_log_has_traceback']}"
        )
    delays = [row["alert_after_redis_back_s"] for row in result["redis_outages"]]
    if delays:
        met = max(delays) <= 5 and not any(row["beat_log_has_traceback"] for row in result["redis_outages"])
        print(f"alert delay after Redis returns: max {max(delays):.2f} s, median {statistics.median(delays):.2f} s; "
              f"target <= 5 s, no beat traceback: {'met' if met else 'NOT met'}")  # fmt: skip
    pg = result["postgres"]
    if pg:
        print(f"\nPostgreSQL: {pg['restarts']} restarts (pg_ctl restart -m fast: {pg['pg_ctl_restart_s']} s), "
              f"{pg['requests']} requests")  # fmt: skip
        print(f"statuses: {pg['statuses']}; Retry-After on 503: {pg['retry_after_values']} "
              f"(missing on {pg['503_without_retry_after']}); client errors: {pg['client_errors']}")  # fmt: skip
        print(f"503 shown per restart (first to last 503, s): {pg['503_window_s']}")
        met = set(pg["statuses"]) <= {200, 503} and not pg["503_without_retry_after"] and not pg["client_errors"]
        print(f"target 503s only, never a 500: {'met' if met else 'NOT met'}")
    print(f"wall time {result['wall_s']} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outages", type=float, nargs="*", default=[60.0, 240.0], help="Redis outages, seconds")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each outage (default 1)")
    parser.add_argument("--restarts", type=int, default=5, help="PostgreSQL restarts (0: skip)")
    parser.add_argument("--clients", type=int, default=4, help="nurse sessions polling during the restarts")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs (their directory is printed)")
    args = parser.parse_args(argv)
    if any(not 1 <= s <= 900 for s in args.outages) or not 1 <= args.repeat <= 10:
        parser.error("--outages must be 1..900 s and --repeat 1..10")
    budget = sum(args.outages) * args.repeat + 90 * len(args.outages) * args.repeat + 10 * args.restarts + 300
    result = run_and_report(lambda: run(args), print_report, args.json, budget)
    delays = [row["alert_after_redis_back_s"] for row in result["redis_outages"]]
    return 0 if all(delay <= 5 for delay in delays) else 1


if __name__ == "__main__":
    sys.exit(main())
