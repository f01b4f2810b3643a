"""Idle connected inboxes one web worker holds, what they cost, and how fast a change reaches all of them.

Run from the project root:

    .venv/bin/python benchmarks/push_connections.py [--connections 1000] [--idle 30] [--timeout 600]

It recreates a dedicated database (--database-url or BENCH_DATABASE_URL, default labflow_bench_web; its name must
contain "bench"), starts the Procfile's web server with ONE uvicorn worker (`gunicorn labflow.asgi:application
-k uvicorn_worker.UvicornWorker --workers 1`), and opens --connections server-sent-event streams
(GET /alerts/events/ with a nurse's session cookie, as the inbox's EventSource does) from asyncio sockets in this
process, 50 at a time, each until its `sync` event (the reconnect resync). Then, with all of them open and idle for
--idle seconds, it measures the worker's CPU (from /proc), its resident memory, and the transactions PostgreSQL
committed on the database (pg_stat_database; this script's own two reads excluded). Finally one overdue alert is
raised in the nurse's team (the real sweep, whose commit publishes) and it records, per stream, the time from the
start of that sweep call (scheduling the test, the sweep, its commit) to its `alerts` event: the fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import percentile_linear  # noqa: E402
from benchmarks._web import Processes, add_server_arguments, run_and_report, start_run  # noqa: E402
from benchmarks.inbox_poll import add_overdue, cpu_seconds, make_people, nurse_session  # noqa: E402

BATCH = 50


def committed() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def until(self, event: str) -> float:
        """Read until the event's line; returns when it arrived (monotonic)."""
        marker = f"event: {event}".encode()
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("stream closed")
            if line.strip() == marker:
                return time.monotonic()


async def open_stream(host: str, port: int, cookie: str) -> Stream:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"GET /alerts/events/ HTTP/1.1\r\nHost: {host}\r\nCookie: sessionid={cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream refused: {status!r}")
    stream = Stream(reader, writer)
    await stream.until("sync")
    return stream


async def hold(args: argparse.Namespace, port: int, cookie: str, worker: int, patients: list[Any]) -> dict[str, Any]:
    streams: list[Stream] = []
    opened = time.monotonic()
    while len(streams) < args.connections:
        batch = min(BATCH, args.connections - len(streams))
        streams += await asyncio.gather(*(open_stream("127.0.0.1", port, cookie) for _ in range(batch)))
    open_s = time.monotonic() - opened

    # Let the connect-time work settle and reach pg_stat_database (an idle backend reports after 10 s).
    await asyncio.sleep(12)
    cpu_before, xact_before, idle_start = cpu_seconds([worker])[worker], committed(), time.monotonic()
    await asyncio.sleep(args.idle)
    idle_s = time.monotonic() - idle_start
    cpu_idle = cpu_seconds([worker])[worker] - cpu_before
    xacts = committed() - xact_before - 1  # the second committed() read is itself one transaction
    rss = rss_mib(worker)

    waiting = [asyncio.create_task(s.until("alerts")) for s in streams]
    await asyncio.sleep(0.2)
    commit_at = await asyncio.to_thread(_raise_one, patients)
    arrivals = await asyncio.gather(*waiting)
    fanout = [max(0.0, t - commit_at) * 1000 for t in arrivals]
    for s in streams:
        s.writer.close()
    return {
        "connections": len(streams),
        "open_s": open_s,
        "idle_s": idle_s,
        "idle_worker_cpu_s": cpu_idle,
        "idle_worker_cpu_share": cpu_idle / idle_s,
        "idle_db_transactions": xacts,
        "idle_db_transactions_per_s": xacts / idle_s,
        "worker_rss_mib": rss,
        "fanout_ms": {
            "median": statistics.median(fanout),
            "p95": percentile_linear(fanout, 0.95),
            "max": max(fanout),
        },
    }


def _raise_one(patients: list[Any]) -> float:
    """Schedule a test due 40 min ago and run the sweep, whose commit publishes; returns when it started."""
    started = time.monotonic()
    add_overdue(patients[:1], 1, offset=5_000)
    return started


def run(args: argparse.Namespace) -> dict[str, Any]:
    import resource

    started = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections + 256)), hard))
    os.environ["ALERT_OVERDUE_HOLD_MINUTES"] = "0"  # the alert is shown (and so pushed) at once
    tmp, env = start_run(args, prefix="labflow-bench-push-")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # this process only: the ORM next to the client's loop
    nurse, patients, _ = make_people(uuid.uuid4().hex[:6])
    add_overdue(patients, 20, offset=0)
    cookie = nurse_session(nurse)
    processes = Processes(env, tmp)
    try:
        base = processes.web(workers=1, asgi=True)
        master = processes.running["gunicorn"][0].pid
        (worker,) = (int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split())
        port = int(base.rsplit(":", 1)[1])
        result = asyncio.run(hold(args, port, cookie, worker, patients))
        processes.check_alive()
    finally:
        processes.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return {**result, "wall_s": time.monotonic() - started}


def print_report(result: dict[str, Any]) -> None:
    print(f"machine: {result['machine']}")
    print(f"one uvicorn worker held {result['connections']} idle inbox streams (opened in {result['open_s']:.1f} s)")
    print(
        f"idle {result['idle_s']:.0f} s: worker CPU {result['idle_worker_cpu_s']:.2f} s "
        f"({100 * result['idle_worker_cpu_share']:.2f} % of one core), "
        f"PostgreSQL transactions {result['idle_db_transactions']} ({result['idle_db_transactions_per_s']:.2f}/s), "
        f"worker RSS {result['worker_rss_mib']:.0f} MiB"
    )
    f = result["fanout_ms"]
    fanout = f"median {f['median']:.0f}, p95 {f['p95']:.0f}, max {f['max']:.0f}"
    print(f"sweep start -> event on every stream (ms): {fanout}")
    print(f"wall time {result['wall_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds all streams stay idle")
    parser.add_argument("--timeout", type=float, default=600.0, help="hard limit for the whole run, seconds")
    add_server_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args(argv)
    run_and_report(lambda: run(args), print_report, args.json, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
