"""Deadline -> alert on the nurse's screen, in a real browser, with the default settings.

Run from the project root:

    .venv/bin/python benchmarks/alert_latency.py [--n 20] [--window 60] [--seed 1] [--timeout 300]

It recreates a dedicated database (--database-url or BENCH_DATABASE_URL, default labflow_bench_web on 127.0.0.1;
its name must contain "bench"), starts gunicorn (2 workers), one Celery worker and exactly one Celery beat as
subprocesses with SWEEP_INTERVAL_SECONDS and INBOX_POLL_SECONDS left at their defaults (10 s and 2 s), logs a
nurse in with Playwright (Debian chromium), then schedules --n monitoring tests (grace 0) whose deadlines fall
at random offsets over --window seconds. A MutationObserver in the inbox page records the wall-clock time
(Date.now()) each `[data-testid=alert-row]` first appears in the DOM; latency = that time - the test's deadline.
The browser, the database and this script share one machine clock.

The helpers for environment, processes and signals are in benchmarks/_web.py (shared with inbox_poll.py).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = "bench-nurse-password-2026"  # noqa: S105 (a throw-away user in a throw-away database)

sys.path.insert(0, str(ROOT))

from benchmarks._common import percentile_linear  # noqa: E402
from benchmarks._web import Processes, add_server_arguments, run_and_report, start_run, wait_for  # noqa: E402

# --------------------------------------------------------------------------- figures


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "p95": percentile_linear(values, 0.95),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# --------------------------------------------------------------------------- the benchmark

OBSERVER_JS = """
() => {
  window.__seen = {};
  window.__sameDocument = true;
  const record = () => {
    const now = Date.now();
    for (const row of document.querySelectorAll('[data-testid=alert-row]')) {
      const id = row.dataset.alertId;
      if (!(id in window.__seen)) window.__seen[id] = now;
    }
  };
  record();
  new MutationObserver(record).observe(document.body, {childList: true, subtree: true});
}
"""


def make_people(run: str) -> tuple[Any, list[Any]]:
    """A care team with one nurse and five patients (tests/factories.py builders)."""
    from accounts.choices import Role
    from tests import factories

    team = factories.make_team(f"Bench team {run}", "Ward B")
    nurse = factories.make_user(Role.NURSE, team, f"bench.nurse.{run}")
    nurse.set_password(PASSWORD)
    nurse.save(update_fields=["password"])
    return nurse, [factories.make_patient(team) for _ in range(5)]


def schedule(patients: list[Any], n: int, window: float, lead: float, rng: random.Random) -> dict[int, datetime]:
    """n tests, grace 0, deadlines at now + lead + uniform(0, window); returns {test id: deadline}."""
    from django.utils import timezone

    from monitoring.models import LabTest
    from monitoring.services import monitoring_test_schedule

    lab_test = LabTest.objects.get(name="TSH")
    start = timezone.now() + timedelta(seconds=lead)
    deadlines: dict[int, datetime] = {}
    for i in range(n):
        test = monitoring_test_schedule(
            patient=patients[i % len(patients)],
            lab_test=lab_test,
            due_at=start + timedelta(seconds=rng.uniform(0, window)),
            grace_period=timedelta(0),
            user=None,
            now=timezone.now(),
        )
        deadlines[test.pk] = test.deadline
    return deadlines


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    hard_stop = started + args.timeout
    rng = random.Random(args.seed)
    os.environ["ALERT_PUSH"] = "true" if args.push == "on" else "false"  # off: the page's polling fallback
    # Overdue alerts are shown at once: the hold (ALERT_OVERDUE_HOLD, 30 min) is policy, not delivery.
    os.environ["ALERT_OVERDUE_HOLD_MINUTES"] = "0"
    tmp, env = start_run(args, prefix="labflow-bench-latency-")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # this process only: ORM calls next to Playwright's loop

    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType

    from alerts.models import Alert
    from monitoring.models import MonitoringTest, SweepHeartbeat

    if settings.INBOX_POLL_SECONDS != 2:
        raise SystemExit("this benchmark measures the defaults (INBOX_POLL_SECONDS=2, SWEEP_INTERVAL_SECONDS)")
    nurse, patients = make_people(uuid.uuid4().hex[:6])
    processes = Processes(env, tmp)
    access_log = tmp / "access.log"
    try:
        base = processes.web(access_log=access_log, asgi=True)  # the Procfile's server (push needs it)
        processes.celery()
        # The first beat tick is one interval after beat starts: the stack is live once a sweep has run.
        wait_for(lambda: SweepHeartbeat.objects.filter(name="overdue_sweep").exists(), 45, "first sweep")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context().new_page()
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", nurse.username)
                page.fill("#id_password", PASSWORD)
                page.click("button[type=submit]")
                expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()
                state = "live" if args.push == "on" else "checking every 2 s"
                expect(page.get_by_test_id("push-state")).to_have_text(state)
                page.evaluate(OBSERVER_JS)
                page_open = time.monotonic()

                deadlines = schedule(patients, args.n, args.window, args.lead, rng)
                last_deadline = max(deadlines.values()).timestamp()
                # Worst case is one sweep interval + one poll interval after the last deadline; allow 3 x that.
                give_up = min(hard_stop - 20, time.monotonic() + (last_deadline - time.time()) + 36)
                seen: dict[str, int] = {}
                while time.monotonic() < give_up:
                    processes.check_alive()
                    seen = page.evaluate("window.__seen")
                    if len(seen) >= args.n:
                        break
                    page.wait_for_timeout(500)
                same_document = page.evaluate("window.__sameDocument === true")
                page_seconds = time.monotonic() - page_open
            finally:
                browser.close()

        subject_type = ContentType.objects.get_for_model(MonitoringTest)
        alerts = Alert.objects.filter(subject_type=subject_type, subject_id__in=list(deadlines))
        rows: list[dict[str, Any]] = []
        for alert in alerts:
            deadline = deadlines[alert.subject_id].timestamp()
            shown = seen.get(str(alert.pk))
            rows.append(
                {
                    "alert": alert.pk,
                    "deadline": deadline,
                    "raised_after": alert.raised_at.timestamp() - deadline,
                    "latency": None if shown is None else shown / 1000 - deadline,
                }
            )
    finally:
        processes.stop()

    # Playwright reports a revalidated (304) response as the cached 200: count what the server sent.
    statuses: dict[str, int] = {}
    for line in access_log.read_text().splitlines():
        status, _, path = line.partition(" ")
        if path == "/alerts/inbox/":
            statuses[status] = statuses.get(status, 0) + 1
    ticks = sorted({round(r["deadline"] + r["raised_after"], 3) for r in rows})
    shutil.rmtree(tmp, ignore_errors=True)

    latencies = [r["latency"] for r in rows if r["latency"] is not None]
    shown_rows = [r for r in rows if r["latency"] is not None]
    return {
        "n_scheduled": args.n,
        "n_alerts": len(rows),
        "n_seen": len(latencies),
        "same_document": same_document,
        "window_s": args.window,
        "seed": args.seed,
        "sweep_interval_s": settings.SWEEP_INTERVAL_SECONDS,
        "push": args.push,
        "inbox_poll_s": settings.INBOX_POLL_SECONDS,
        "latency": summary(latencies) if latencies else None,
        "sweep_part": summary([r["raised_after"] for r in rows]) if rows else None,
        "delivery_part": summary([r["latency"] - r["raised_after"] for r in shown_rows]) if shown_rows else None,
        "over_10s": sum(1 for v in latencies if v > 10),
        "inbox_poll_statuses": statuses,
        "inbox_poll_every_s": page_seconds / max(sum(statuses.values()), 1),
        "sweep_ticks_with_alerts": len(ticks),
        "tick_spacing_s": [round(b - a, 2) for a, b in itertools.pairwise(ticks)],
        "rows": sorted(rows, key=lambda r: r["deadline"]),
        "wall_s": time.monotonic() - started,
    }


def print_report(result: dict[str, Any]) -> None:
    print(f"machine: {result['machine']}")
    print(
        f"settings: sweep every {result['sweep_interval_s']:g} s, push {result['push']}, "
        f"fallback poll every {result['inbox_poll_s']} s; "
        f"{result['n_scheduled']} tests over {result['window_s']:g} s (seed {result['seed']})"
    )
    print(f"alerts raised {result['n_alerts']}, seen in the browser {result['n_seen']}, "
          f"page never reloaded: {result['same_document']}")  # fmt: skip
    print(f"/alerts/inbox/ responses sent by the server (status: count): {result['inbox_poll_statuses']}, "
          f"one every {result['inbox_poll_every_s']:.2f} s")  # fmt: skip
    print(f"sweep ticks that raised alerts: {result['sweep_ticks_with_alerts']}, "
          f"spacing (s): {result['tick_spacing_s']}")  # fmt: skip
    print(f"{'seconds':<36}{'n':>4}{'min':>8}{'median':>8}{'p95':>8}{'max':>8}")
    for label, key in (
        ("deadline -> on screen", "latency"),
        ("  deadline -> alert raised (sweep)", "sweep_part"),
        ("  raised -> on screen (push/poll)", "delivery_part"),
    ):
        s = result[key]
        if s:
            print(f"{label:<36}{s['n']:>4}{s['min']:>8.2f}{s['median']:>8.2f}{s['p95']:>8.2f}{s['max']:>8.2f}")
    print(f"alerts later than 10 s: {result['over_10s']} of {result['n_seen']}")
    if result["latency"]:
        met = result["latency"]["p95"] <= 2 and result["n_seen"] == result["n_scheduled"]
        print(f"target p95 <= 2 s (docs/architecture.md §6): {'met' if met else 'NOT met'}")
    print(f"wall time {result['wall_s']:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="monitoring tests to schedule (default 20)")
    parser.add_argument("--window", type=float, default=60.0, help="deadlines spread over this many seconds")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds before the first possible deadline")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--push", choices=["on", "off"], default="on", help="off: measure the polling fallback")
    parser.add_argument("--timeout", type=float, default=300.0, help="hard limit for the whole run, seconds")
    add_server_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the full result (every alert) to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 500 or not 0 < args.window <= 180:
        parser.error("--n must be 1..500 and --window 0..180 s")
    if args.window + args.lead + 90 > args.timeout:
        parser.error("--timeout too short for --window (needs window + lead + 90 s)")
    result = run_and_report(lambda: run(args), print_report, args.json, args.timeout + 30)
    return 0 if result["n_seen"] == result["n_scheduled"] else 1


if __name__ == "__main__":
    sys.exit(main())
