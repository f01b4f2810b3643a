"""Throughput of the inbox poll endpoint against a bare Django JSON view, on one gunicorn, in one run.

Run from the project root:

    .venv/bin/python benchmarks/inbox_poll.py [--sizes 20 200] [--duration 5] [--repeat 3] [--client auto]

It recreates a dedicated database (--database-url or BENCH_DATABASE_URL, default labflow_bench_web on 127.0.0.1;
its name must contain "bench"), starts gunicorn with 2 workers (`--server asgi`, the default and the Procfile's:
uvicorn workers on labflow.asgi; `--server wsgi`: sync workers on labflow.wsgi) with benchmarks.bench_settings
(production settings + /bench/bare/, a JSON view without login or queries) and, for each number of unresolved
alerts visible to the nurse, measures requests/s of:

  bare          GET /bench/bare/ (no cookie): the baseline;
  bare+session  the same with the nurse's session cookie and X-LabFlow-Poll (auth + idle-timeout middleware);
  inbox 304     GET /alerts/inbox/ as the page polls it (session cookie, X-LabFlow-Poll: 1, HX-Request: true)
                with a matching If-None-Match: the steady state;
  inbox 200     the same without If-None-Match: the full render;
  badge         GET /alerts/badge/ as every page polls it (no validator: always a 200), for context.

Load: Debian's `wrk` (2 threads, 4 connections, --duration seconds a run, cases interleaved --repeat times after
a 2 s warm-up each; the median run is reported) or, with --client python or without wrk, 4 threads of
`requests.Session` sending --requests requests a case. Every response status is counted and checked.
Also counts the SQL queries per request in-process (Django test Client + CaptureQueriesContext).
No worker or beat runs; the sweep heartbeat is refreshed before each run so the inbox is in its normal state.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import refresh_heartbeat  # noqa: E402
from benchmarks._web import Processes, add_server_arguments, run_and_report, start_run  # noqa: E402

WRK_THREADS = 2
WRK_CONNECTIONS = 4
PYTHON_THREADS = 4
POLL_HEADERS = {"X-LabFlow-Poll": "1", "HX-Request": "true"}
OTHER_TEAM_ALERTS = 200  # another care team's unresolved alerts: in the table, never visible to the nurse
RESOLVED_ALERTS = 30  # the nurse's team's resolved alerts: visible patients, excluded from the inbox

# Counts every response status across wrk's threads and prints them after the run.
WRK_STATUS_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\\n", status, n)) end
end
"""


@dataclass
class Case:
    name: str
    path: str
    headers: dict[str, str]
    expect: int
    runs: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- data


def make_people(run: str) -> tuple[Any, list[Any], list[Any]]:
    from accounts.choices import Role
    from tests import factories

    team, other = factories.make_team(f"Poll team {run}", "Ward P"), factories.make_team(f"Other team {run}", "Ward O")
    nurse = factories.make_user(Role.NURSE, team, f"poll.nurse.{run}")
    factories.make_user(Role.NURSE, other, f"other.nurse.{run}")
    return nurse, [factories.make_patient(team) for _ in range(20)], [factories.make_patient(other) for _ in range(20)]


def add_overdue(patients: list[Any], count: int, offset: int) -> list[Any]:
    """`count` tests whose deadline passed, spread over the patients, flagged by the real sweep."""
    from django.utils import timezone

    from monitoring.models import LabTest
    from monitoring.services import monitoring_test_schedule, monitoring_tests_flag_overdue

    lab_tests = list(LabTest.objects.filter(active=True).order_by("pk"))
    now = timezone.now()
    tests = [
        monitoring_test_schedule(
            patient=patients[i % len(patients)],
            lab_test=lab_tests[i % len(lab_tests)],
            due_at=now - timedelta(hours=2) + timedelta(seconds=offset + i),
            grace_period=timedelta(0),
            user=None,
            now=now,
        )
        for i in range(count)
    ]
    monitoring_tests_flag_overdue()
    return tests


def resolve_some(tests: list[Any], user: Any) -> None:
    from django.utils import timezone

    from monitoring.services import monitoring_test_record_collection

    for test in tests:
        monitoring_test_record_collection(monitoring_test=test, user=user, now=timezone.now())


def nurse_session(nurse: Any) -> str:
    """A logged-in session, as django.contrib.auth.login leaves it, with the idle-timeout stamp set to now."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils import timezone

    from accounts.middleware import LAST_ACTIVITY_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(nurse.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = nurse.get_session_auth_hash()
    session[LAST_ACTIVITY_KEY] = timezone.now().timestamp()
    session.create()
    return str(session.session_key)


def analyze() -> None:
    """Fresh planner statistics after loading, as a long-running database would have."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --------------------------------------------------------------------------- measurements


def query_counts(cookie: str, etag: str) -> dict[str, dict[str, Any]]:
    """SQL queries per request, in-process, after one warm-up request per case."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    requests_ = {
        "bare": ("/bench/bare/", {}, False),
        "bare+session": ("/bench/bare/", POLL_HEADERS, True),
        "inbox 304": ("/alerts/inbox/", {**POLL_HEADERS, "If-None-Match": etag}, True),
        "inbox 200": ("/alerts/inbox/", POLL_HEADERS, True),
        "badge": ("/alerts/badge/", POLL_HEADERS, True),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (path, headers, with_cookie) in requests_.items():
        client.cookies.clear()
        if with_cookie:
            client.cookies[settings.SESSION_COOKIE_NAME] = cookie
        client.get(path, headers=headers)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, headers=headers)
        out[name] = {
            "status": response.status_code,
            "queries": len(captured.captured_queries),
            "sql": [" ".join(q["sql"].split())[:160] for q in captured.captured_queries],
            "bytes": len(response.content),
        }
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live process, from /proc (10 ms resolution)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def server_pids(master: int) -> dict[str, list[int]]:
    """The gunicorn workers and the PostgreSQL backends serving them (this process's own backend excluded)."""
    from django.db import connection

    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'labflow'"
            " AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return {"web": [int(pid) for pid in children], "db": backends}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_seconds() -> float:
    """CPU of this process (the python client) and of its waited-for children (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """CPU spent between start() and stop(): by the servers (gunicorn workers, their PostgreSQL backends),
    by the load generator, and by everything else on the machine ("other": a measure of interference)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.before: dict[str, dict[int, float]] = {}
        self.started = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self.before = {kind: cpu_seconds(pids) for kind, pids in server_pids(self.master).items()}
        self.started = (time.monotonic(), machine_busy_seconds(), own_seconds())

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for kind, pids in server_pids(self.master).items():
            after = cpu_seconds(pids)
            used[kind] = sum(t - self.before[kind].get(pid, 0.0) for pid, t in after.items())
        wall = time.monotonic() - self.started[0]
        client = own_seconds() - self.started[2]
        other = machine_busy_seconds() - self.started[1] - used["web"] - used["db"] - client
        used["other_share"] = max(other, 0.0) / (wall * (os.cpu_count() or 1))
        return used


def run_wrk(url: str, headers: dict[str, str], duration: float, lua: Path) -> dict[str, Any]:
    argv = ["wrk", "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{duration:g}s", "--latency",
            "-s", str(lua)]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if not rps or not total:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out)),
        "statuses": {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.MULTILINE)},
        "socket_errors": errors.group(0) if (errors := re.search(r"Socket errors:.*", out)) else "",
    }


def _ms(match: re.Match[str] | None) -> float | None:
    if not match:
        return None
    value = match.group(1)
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return None


def run_python(url: str, headers: dict[str, str], requests_total: int) -> dict[str, Any]:
    import requests

    def worker(count: int) -> tuple[Counter[int], list[float]]:
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        with requests.Session() as session:
            for _ in range(count):
                started = time.perf_counter()
                response = session.get(url, headers=headers, allow_redirects=False, timeout=10)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] += 1
        return statuses, latencies

    per_thread = requests_total // PYTHON_THREADS
    started = time.perf_counter()
    with ThreadPoolExecutor(PYTHON_THREADS) as pool:
        results = list(pool.map(worker, [per_thread] * PYTHON_THREADS))
    elapsed = time.perf_counter() - started
    statuses: Counter[int] = sum((r[0] for r in results), Counter())
    latencies = sorted(v for r in results for v in r[1])
    return {
        "rps": per_thread * PYTHON_THREADS / elapsed,
        "requests": per_thread * PYTHON_THREADS,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "statuses": dict(statuses),
        "socket_errors": "",
    }


def current_etag(base: str, cookie: str) -> tuple[str, int]:
    import requests

    response = requests.get(f"{base}/alerts/inbox/", headers=POLL_HEADERS, cookies={"sessionid": cookie}, timeout=10)
    if response.status_code != 200 or "ETag" not in response.headers:
        raise RuntimeError(f"inbox answered {response.status_code} without an ETag")
    return response.headers["ETag"], len(response.content)


def measure_size(args: argparse.Namespace, base: str, cookie: str, lua: Path, meter: CpuMeter) -> dict[str, Any]:
    from django.conf import settings

    etag, inbox_bytes = current_etag(base, cookie)
    again, _ = current_etag(base, cookie)
    if again != etag:
        raise RuntimeError("the inbox ETag is not stable between two identical requests")
    session = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    cases = [
        Case("bare", "/bench/bare/", {}, 200),
        Case("bare+session", "/bench/bare/", {**session, **POLL_HEADERS}, 200),
        Case("inbox 304", "/alerts/inbox/", {**session, **POLL_HEADERS, "If-None-Match": etag}, 304),
        Case("inbox 200", "/alerts/inbox/", {**session, **POLL_HEADERS}, 200),
        Case("badge", "/alerts/badge/", {**session, **POLL_HEADERS}, 200),
    ]

    def once(case: Case, duration: float, requests_total: int) -> dict[str, Any]:
        refresh_heartbeat()
        meter.start()
        if args.client == "wrk":
            result = run_wrk(base + case.path, case.headers, duration, lua)
        else:
            result = run_python(base + case.path, case.headers, requests_total)
        cpu = meter.stop()
        result["cpu_ms"] = {kind: 1000 * cpu[kind] / result["requests"] for kind in ("web", "db")}
        result["other_share"] = cpu["other_share"]
        return result

    for case in cases:  # warm-up: connections, template caches, plans
        once(case, 2, max(args.requests // 10, 200))
    for _ in range(args.repeat):  # interleaved, so drift on a shared machine hits every case alike
        for case in cases:
            case.runs.append(once(case, args.duration, args.requests))

    out: dict[str, Any] = {"etag": etag, "inbox_200_bytes": inbox_bytes, "cases": {}}
    for case in cases:
        rps = [r["rps"] for r in case.runs]
        statuses: Counter[int] = sum((Counter(r["statuses"]) for r in case.runs), Counter())
        median_run = sorted(case.runs, key=lambda r: r["rps"])[len(case.runs) // 2]
        out["cases"][case.name] = {
            "rps_median": statistics.median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_ms": median_run["p50_ms"],
            "p99_ms": median_run["p99_ms"],
            "requests": sum(r["requests"] for r in case.runs),
            # server CPU per request, all runs pooled: robust to other load on the machine
            "cpu_ms_web": statistics.median(r["cpu_ms"]["web"] for r in case.runs),
            "cpu_ms_db": statistics.median(r["cpu_ms"]["db"] for r in case.runs),
            "other_share_max": max(r["other_share"] for r in case.runs),
            "statuses": dict(statuses),
            "unexpected": sum(n for s, n in statuses.items() if s != case.expect),
            "socket_errors": [r["socket_errors"] for r in case.runs if r["socket_errors"]],
        }
    bare = out["cases"]["bare"]["rps_median"]
    for case in cases:
        out["cases"][case.name]["vs_bare"] = out["cases"][case.name]["rps_median"] / bare
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    loadavg_start = os.getloadavg()
    # Shown at once (moderate overdue alerts are otherwise held ALERT_OVERDUE_HOLD and not in the inbox yet).
    os.environ["ALERT_OVERDUE_HOLD_MINUTES"] = "0"
    tmp, env = start_run(args, prefix="labflow-bench-poll-")

    from django.contrib.auth.models import User

    from alerts.selectors import alert_inbox

    lua = tmp / "status.lua"
    lua.write_text(WRK_STATUS_LUA)
    nurse, patients, other_patients = make_people(uuid.uuid4().hex[:6])
    technician = User.objects.create_user(f"poll.tech.{uuid.uuid4().hex[:6]}")
    add_overdue(other_patients, OTHER_TEAM_ALERTS, offset=0)
    resolve_some(add_overdue(patients, RESOLVED_ALERTS, offset=1000), technician)
    cookie = nurse_session(nurse)

    processes = Processes(env, tmp)
    results: dict[str, Any] = {}
    visible = 0
    try:
        base = processes.web(workers=2, asgi=args.server == "asgi")
        meter = CpuMeter(processes.running["gunicorn"][0].pid)
        for size in sorted(args.sizes):
            add_overdue(patients, size - visible, offset=2000 + visible)
            visible = size
            if alert_inbox(user=nurse).count() != size:
                raise RuntimeError(f"expected {size} unresolved alerts in the nurse's inbox")
            analyze()
            refresh_heartbeat()
            etag, _ = current_etag(base, cookie)
            results[str(size)] = {"queries": query_counts(cookie, etag), **measure_size(args, base, cookie, lua, meter)}
            processes.check_alive()
    finally:
        processes.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "client": args.client,
        "server": args.server,
        "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "duration_s": args.duration}
        if args.client == "wrk"
        else None,
        "python": {"threads": PYTHON_THREADS, "requests": args.requests} if args.client == "python" else None,
        "repeat": args.repeat,
        "other_team_alerts": OTHER_TEAM_ALERTS,
        "resolved_alerts": RESOLVED_ALERTS,
        "sizes": results,
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
        "wall_s": time.monotonic() - started,
    }


def print_report(result: dict[str, Any]) -> None:
    load_avg = f"{result['loadavg_start'][0]:.2f} at the start, {result['loadavg_end'][0]:.2f} at the end"
    print(f"machine: {result['machine']}; 1-min load average {load_avg}")
    load = (
        f"wrk {result['wrk']['threads']} threads / {result['wrk']['connections']} connections, "
        f"{result['wrk']['duration_s']:g} s a run"
        if result["client"] == "wrk"
        else f"python requests, {result['python']['threads']} threads, {result['python']['requests']} requests a run"
    )
    worker = "uvicorn (labflow.asgi)" if result.get("server") == "asgi" else "sync (labflow.wsgi)"
    print(f"gunicorn --workers 2, {worker}; {load}; median of {result['repeat']} interleaved runs")
    print(f"{'alerts':>6} {'case':<13}{'req/s':>9}{'min':>9}{'max':>9}{'vs bare':>9}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'cpu web':>8}{'cpu db':>7}{'other':>6}{'queries':>8}{'bytes':>7}  statuses")  # fmt: skip
    verdicts = []
    for size, data in result["sizes"].items():
        for name, c in data["cases"].items():
            q = data["queries"][name]
            print(
                f"{size:>6} {name:<13}{c['rps_median']:>9.0f}{c['rps_min']:>9.0f}{c['rps_max']:>9.0f}"
                f"{c['vs_bare']:>8.0%} {c['p50_ms'] or 0:>7.1f}{c['p99_ms'] or 0:>8.1f}"
                f"{c['cpu_ms_web']:>8.2f}{c['cpu_ms_db']:>7.2f}{c['other_share_max']:>6.0%}{q['queries']:>8}"
                f"{q['bytes']:>7}  {c['statuses']}{'  UNEXPECTED' if c['unexpected'] else ''}"
            )
        verdicts.append((size, data["cases"]["inbox 304"]["vs_bare"]))
    print("cpu web / cpu db: server CPU ms per request (gunicorn workers / their PostgreSQL backends, median run);")
    print("other: highest share of the machine's CPU used by unrelated processes during a run (interference)")
    for size, ratio in verdicts:
        print(f"target inbox 304 >= 50 % of bare, {size} alerts: {ratio:.0%} -> {'met' if ratio >= 0.5 else 'NOT met'}")
    counts = {size: {n: q["queries"] for n, q in d["queries"].items()} for size, d in result["sizes"].items()}
    same = len({json.dumps(c, sort_keys=True) for c in counts.values()}) == 1
    print(f"queries per request by size: {counts} -> {'independent' if same else 'DEPENDS'} of the number of alerts")
    print(f"wall time {result['wall_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200], help="unresolved alerts the nurse sees")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--server", choices=["asgi", "wsgi"], default="asgi", help="gunicorn worker class")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (<= 10)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run with --client python")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per case")
    parser.add_argument("--timeout", type=float, default=600.0, help="hard limit for the whole run, seconds")
    add_server_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the full result (with the SQL) to this file")
    args = parser.parse_args(argv)
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    if not 0 < args.duration <= 10 or not 1 <= args.repeat <= 10 or not 100 <= args.requests <= 20_000:
        parser.error("--duration must be in (0, 10], --repeat 1..10, --requests 100..20000")
    if any(not 1 <= s <= 2000 for s in args.sizes):
        parser.error("--sizes must be 1..2000")
    result = run_and_report(lambda: run(args), print_report, args.json, args.timeout)
    unexpected = sum(c["unexpected"] for d in result["sizes"].values() for c in d["cases"].values())
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
