"""Server time of the worklist pages with 1,000 patients (docs/architecture.md §6: p95 <= 150 ms).

Run from the project root:

    .venv/bin/python benchmarks/worklists.py [--patients 1000] [--requests 40] [--profile] [--reuse]

Database: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/labflow_bench_worklists; its name must
contain "bench"; created if missing and DROPped and re-created when it holds data of an earlier run, unless
--reuse finds a complete build made today with the same --patients). Redis: redis://127.0.0.1:6379/8.
Settings: labflow.settings_test (production settings, DEBUG off, cached template loader, MD5 hasher).

Build (untimed, reported), entirely through the services:
  * 2 care teams (Ward 4A, Ward 7B); two lab technicians (one enters, the other verifies and views the
    verification queue), and an oncologist and a nurse per team;
  * --patients patients, alternately in the two teams, each with one course started by `course_start`
    (about 60 % "Ipilimumab 3 mg/kg q3w x4", 40 % "Nivolumab 240 mg q2w") whose first dose falls in the
    48 h from today 00:00 (evenly spread, in random patient order), so every patient has a dose on the worklist;
  * first-dose pre-dose labs: ~40 % of patients collected, entered and verified by `collect_and_result_pre_dose`
    (normal values; 1 in 10 of them with ALT 320 U/L, 1 in 20 with platelets 15: held by a hold rule and
    alerted), ~10 % collected and entered with `results_enter` but left preliminary (the verification queue),
    the rest not collected (on the ward's collection list);
  * one run of the overdue sweep (`monitoring_tests_flag_overdue`): pre-dose tests past their deadline are
    flagged and alerted (the nurses' inboxes); then ANALYZE.

Measured in-process with Django's test Client (force_login; the client keeps one database connection):
each page gets 3 warm-up requests, then --requests timed requests (wall time around `client.get`, i.e. the whole
middleware stack, view, queries and template rendering; no network, no WSGI server). SQL statements per
request are counted on one more request with CaptureQueriesContext; SQL time is summed with an execute wrapper.
Also reported per page: Python CPU time of the process, and the requests during which Python's cyclic
garbage collector ran a full (generation-2) collection, with the longest pause, and the Django model instances
one more request builds (Model.__init__ calls).
--profile runs --profile-requests more requests of each page under cProfile (time by area, LabFlow functions,
hottest functions) and logs the slowest SQL statements. --gc-freeze is an experiment: gc.freeze() before
measuring, to see how much of the tail is garbage collection; --gunicorn-gc runs what the web workers run after
start-up (gunicorn.conf.py's post_worker_init: warm-up, gc.freeze(), a larger generation-0 threshold).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_bench_worklists"

sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    admin_connect,
    configure_django,
    cpu_model,
    database_fact,
    database_name,
    ensure_database,
    execute,
    load_facts,
    make_user,
    migrate,
    percentile,
    print_facts,
    refresh_heartbeat,
    server_settings,
    software_facts,
)

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")  # an existing REDIS_URL is respected
configure_django(DEFAULT_DATABASE_URL)

import django  # noqa: E402
import psycopg  # noqa: E402

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.test import Client

    from patients.models import CareTeam, Patient

TARGET_MS = 150.0  # docs/architecture.md §6: worklists with 1,000 patients, server time p95
WARMUP = 3
SEED = 20261122
TEAMS = (("Immunotherapy Day Unit", "Ward 4A"), ("Cellular Therapy Unit", "Ward 7B"))
REGIMENS = (("Ipilimumab 3 mg/kg q3w x4", 0.6), ("Nivolumab 240 mg q2w", 0.4))
SHARE_VERIFIED = 0.40  # pre-dose labs collected, entered and verified (cleared, or held by a hold rule)
SHARE_PRELIMINARY = 0.10  # collected and entered, not verified (the verification queue; gate pending)
HELD_ALT = {"ALT": ("320", "U/L")}  # > 5 x ULN: hold rule, CTCAE grade 3 (oncologists' alert)
HELD_PLATELETS = {"Platelets": ("15", "10*3/uL")}  # < 50: hold rule; <= 20: critical (care team alert)
FAMILY = ("Smith", "Nguyen", "Garcia", "Kowalski", "Novak", "Silva", "Jensen", "Murphy", "Ivanova", "Tanaka",
          "Okafor", "Larsen", "Moreau", "Chen", "Rossi", "Haddad", "Schmidt", "Dubois", "Kim", "Haddou")  # fmt: skip
GIVEN = ("Anna", "Omar", "Lena", "Tom", "Mia", "Yusuf", "Grace", "Luca", "Sara", "Noah", "Ines", "Piotr")
BUILD_MARKER_TABLE = "bench_worklists_build"
PASSWORD = "bench-worklists-2026"  # noqa: S105 (throw-away users in a throw-away database)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ database


REFUSAL = "refusing to run: the benchmark drops and re-creates its database, and {name!r} is not *bench*"


def existing_build(url: str) -> tuple[date, int] | None:
    """(day, patients) of the build already in the database, or None (empty or incomplete)."""
    name = database_name(url, REFUSAL)
    with admin_connect(url) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    with psycopg.connect(url, connect_timeout=10) as conn:
        found = conn.execute("SELECT to_regclass(%s)", [BUILD_MARKER_TABLE]).fetchone()
        if not found or found[0] is None:
            table = conn.execute("SELECT to_regclass('patients_patient')").fetchone()
            migrated = bool(table and table[0] is not None)
            if migrated and conn.execute("SELECT EXISTS (SELECT 1 FROM patients_patient)").fetchone() == (True,):
                return (date.min, -1)  # data without a finished build: recreate
            return None
        row = conn.execute(f"SELECT built_on, patients FROM {BUILD_MARKER_TABLE}").fetchone()
    return (row[0], int(row[1])) if row else (date.min, -1)


# ------------------------------------------------------------------------------------------------ build


@dataclass
class Actors:
    entering_tech: User
    verifying_tech: User
    teams: list[CareTeam]
    nurses: list[User]
    oncologists: list[User]


@dataclass
class BuildStats:
    seconds: float = 0.0
    courses: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    overdue_alerts: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def make_actors() -> Actors:

    from accounts.choices import Role
    from patients.models import CareTeam as CareTeamModel

    def user(username: str, role: Role, team: CareTeam | None) -> User:
        first, last = username.split(".")[0].title(), username.split(".")[-1].title()
        return make_user(username, role, password=PASSWORD, first_name=first, last_name=last, team=team)

    teams = [CareTeamModel.objects.create(name=name, ward=ward) for name, ward in TEAMS]
    return Actors(
        entering_tech=user("tech.enter", Role.LAB_TECHNICIAN, None),
        verifying_tech=user("tech.verify", Role.LAB_TECHNICIAN, None),
        teams=teams,
        nurses=[user(f"nurse.team{i + 1}", Role.NURSE, team) for i, team in enumerate(teams)],
        oncologists=[user(f"onc.team{i + 1}", Role.ONCOLOGIST, team) for i, team in enumerate(teams)],
    )


def make_patients(actors: Actors, count: int, rng: random.Random) -> list[Patient]:
    from patients.choices import Sex
    from patients.models import Patient as PatientModel

    rows = [
        PatientModel(
            mrn=f"WL{100001 + n}",
            family_name=f"{FAMILY[n % len(FAMILY)]}{n // len(FAMILY)}",
            given_name=GIVEN[(n * 7) % len(GIVEN)],
            birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365)),
            sex=Sex.FEMALE if n % 2 else Sex.MALE,
            weight_kg=Decimal(rng.randrange(450, 1100)) / 10,
            height_cm=Decimal(rng.randrange(1500, 1950)) / 10,
            care_team=actors.teams[n % len(actors.teams)],
        )
        for n in range(count)
    ]
    return PatientModel.objects.bulk_create(rows, batch_size=500)


def window_start() -> datetime:
    """The worklist's window starts today 00:00 (local time), as `orders.views.worklist_page` computes it."""
    from django.utils import timezone

    return timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time()))


def build(count: int) -> BuildStats:
    from django.db import transaction
    from django.utils import timezone

    from labflow.demo import collect_and_result_pre_dose
    from monitoring.services import monitoring_tests_flag_overdue, sweep_heartbeat_record
    from orders.models import Regimen
    from orders.services.courses import course_start

    rng = random.Random(SEED)
    stats = BuildStats()
    started = time.perf_counter()
    with transaction.atomic():
        actors = make_actors()
        patients = make_patients(actors, count, rng)
    regimens = {name: Regimen.objects.select_related("drug").get(name=name) for name, _ in REGIMENS}
    start = window_start()
    slots = list(range(count))
    rng.shuffle(slots)  # planned times in random patient order: wards and states mix over the 48 h
    span = timedelta(hours=48).total_seconds()
    for index, patient in enumerate(patients):
        team = index % len(actors.teams)
        name = rng.choices([n for n, _ in REGIMENS], weights=[w for _, w in REGIMENS])[0]
        planned = start + timedelta(seconds=int((slots[index] + 0.5) * span / count) // 60 * 60)
        now = timezone.now()
        course = course_start(
            patient=patient, regimen=regimens[name], starts_at=planned, user=actors.oncologists[team], now=now
        )
        stats.courses[name] = stats.courses.get(name, 0) + 1
        first = course.doses.select_related("course__patient").get(number=1)
        roll = rng.random()
        if roll < SHARE_VERIFIED:
            values: dict[str, tuple[str, str]] = {}
            state = "verified, normal"
            if roll < SHARE_VERIFIED * 0.05:
                values, state = HELD_PLATELETS, "verified, platelets 15 (held, critical)"
            elif roll < SHARE_VERIFIED * 0.15:
                values, state = HELD_ALT, "verified, ALT 320 (held, grade 3)"
            collect_and_result_pre_dose(
                first, collector=actors.nurses[team], enterer=actors.entering_tech,
                verifier=actors.verifying_tech, values=values,
            )  # fmt: skip
        elif roll < SHARE_VERIFIED + SHARE_PRELIMINARY:
            collect_and_result_pre_dose(
                first, collector=actors.nurses[team], enterer=actors.entering_tech, verifier=None
            )
            state = "entered, preliminary"
        else:
            state = "not collected"
        stats.states[state] = stats.states.get(state, 0) + 1
        if (index + 1) % 100 == 0:
            log(f"  {index + 1:,}/{count:,} patients ({time.perf_counter() - started:.0f} s)")
    alert_ids = monitoring_tests_flag_overdue(now=timezone.now())
    sweep_heartbeat_record(name="overdue_sweep", flagged=len(alert_ids))
    stats.overdue_alerts = len(alert_ids)
    stats.seconds = time.perf_counter() - started
    execute(f"CREATE TABLE {BUILD_MARKER_TABLE} (built_on date NOT NULL, patients integer NOT NULL)")
    execute(f"INSERT INTO {BUILD_MARKER_TABLE} VALUES (%s, %s)", [timezone.localdate(), count])
    return stats


def table_rows() -> dict[str, int]:
    from alerts.models import Alert
    from monitoring.models import MonitoringTest
    from orders.models import Dose, Preparation, TreatmentCourse
    from patients.models import Patient
    from results.models import Result
    from specimens.models import Specimen

    models: tuple[Any, ...] = (Patient, TreatmentCourse, Dose, Preparation, MonitoringTest, Specimen, Result, Alert)
    return {model._meta.db_table: model.objects.count() for model in models}


# ------------------------------------------------------------------------------------------------ measurement


@dataclass
class Page:
    name: str
    url: str
    user: User
    rows: Callable[[bytes], str]  # what the page shows, from its body
    settings: dict[str, object] = field(default_factory=dict)  # overridden while this page is measured


@dataclass
class Measurement:
    page: Page
    times_ms: list[float]
    cpu_ms: list[float]
    sql_ms: list[float]
    gc_ms: list[float]
    full_gc_requests: int
    queries: int
    queries_warmup: list[int]
    instances: int
    rows: str
    size_kb: float
    cpu_pressure: tuple[str, str]

    def pct(self, q: float) -> float:
        return percentile(self.times_ms, q)


def cpu_pressure() -> str:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), e.g. '5.3 %'."""
    try:
        with open("/proc/pressure/cpu", encoding="utf-8") as psi:
            first = psi.readline().split()
        return f"{float(first[1].split('=')[1]):.0f} %"
    except (OSError, IndexError, ValueError):
        return "n/a"


class GcWatch:
    """Pauses of Python's cyclic garbage collector (gc.callbacks) during one request."""

    def __init__(self) -> None:
        self.pause = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self.full += info["generation"] == 2
        else:
            self.pause += time.perf_counter() - self._started


class SqlTimer:
    """An execute wrapper summing the time spent in the database driver."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute: Callable[..., Any], statement: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def count(marker: str) -> Callable[[bytes], str]:
    needle = marker.encode()
    return lambda body: f"{body.count(needle):,}"


def collection_rows(body: bytes) -> str:
    draws, tubes = body.count(b'data-testid="draw"'), body.count(b'data-testid="tube"')
    return f"{draws:,} patients, {tubes:,} tubes"


def api_rows(body: bytes) -> str:
    import json

    data = json.loads(body)
    return f"{len(data['results']):,} of {data['count']:,}"


def pages(actors: Actors) -> list[Page]:
    start = window_start()
    window = urlencode(
        {"planned_at_after": start.isoformat(), "planned_at_before": (start + timedelta(hours=48)).isoformat()}
    )
    ward = actors.teams[0].ward
    return [
        Page("Preparation worklist `/orders/worklist/`", "/orders/worklist/", actors.verifying_tech,
             count('data-testid="worklist-row"')),
        Page(f"Collection list `/specimens/collection/?ward={ward}` (default 2 h window)",
             "/specimens/collection/?" + urlencode({"ward": ward}), actors.nurses[0], collection_rows),
        Page("Collection list, whole ward over 48 h (`SPECIMEN_COLLECTION_WINDOW_HOURS=48`)",
             "/specimens/collection/?" + urlencode({"ward": ward}), actors.nurses[0], collection_rows,
             {"SPECIMEN_COLLECTION_WINDOW_HOURS": 48.0}),
        Page("Results to review `/results/review/`", "/results/review/", actors.oncologists[0],
             count('data-testid="review-row"')),
        Page("Results to verify `/results/verify/`", "/results/verify/", actors.verifying_tech,
             count('data-testid="verify-row"')),
        Page("Alert inbox `/alerts/`", "/alerts/", actors.nurses[0], count('data-testid="alert-row"')),
        Page("Doses API `/api/doses/?planned_at_after=…&planned_at_before=…`", "/api/doses/?" + window,
             actors.verifying_tech, api_rows),
    ]  # fmt: skip


def load_actors() -> Actors:
    from django.contrib.auth.models import User as UserModel

    from patients.models import CareTeam as CareTeamModel

    users = {u.username: u for u in UserModel.objects.all()}
    teams = list(CareTeamModel.objects.order_by("id"))
    return Actors(
        entering_tech=users["tech.enter"],
        verifying_tech=users["tech.verify"],
        teams=teams,
        nurses=[users[f"nurse.team{i + 1}"] for i in range(len(teams))],
        oncologists=[users[f"onc.team{i + 1}"] for i in range(len(teams))],
    )


def client_for(user: User) -> Client:
    from django.test import Client as TestClient

    client = TestClient(HTTP_HOST="localhost")  # a host in ALLOWED_HOSTS, as a browser on the machine would send
    client.force_login(user)
    return client


def get(client: Client, url: str) -> bytes:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: HTTP {response.status_code}")
    return bytes(response.content)


def count_instances(request: Callable[[], object]) -> int:
    """Django model instances built during one request (every Model.__init__, whichever model)."""
    from django.db.models import Model

    built = 0
    original = Model.__init__

    def counting(self: Model, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        original(self, *args, **kwargs)

    Model.__init__ = counting  # type: ignore[method-assign]
    try:
        request()
    finally:
        Model.__init__ = original  # type: ignore[method-assign]
    return built


def measure(page: Page, requests: int) -> Measurement:
    from django.test.utils import override_settings

    with override_settings(**page.settings):
        return _measure(page, requests)


def _measure(page: Page, requests: int) -> Measurement:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(page.user)
    refresh_heartbeat()
    pressure_before = cpu_pressure()
    warm_queries = []
    for _ in range(WARMUP):
        with CaptureQueriesContext(connection) as captured:
            body = get(client, page.url)
        warm_queries.append(len(captured.captured_queries))
    times, cpu_times, sql_times, gc_pauses, full_gcs = [], [], [], [], 0
    for _ in range(requests):
        timer, watch = SqlTimer(), GcWatch()
        gc.callbacks.append(watch)
        try:
            with connection.execute_wrapper(timer):
                started, cpu_started = time.perf_counter(), time.process_time()
                body = get(client, page.url)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        finally:
            gc.callbacks.remove(watch)
        times.append(elapsed * 1000)
        cpu_times.append(cpu * 1000)
        sql_times.append(timer.seconds * 1000)
        gc_pauses.append(watch.pause * 1000)
        full_gcs += watch.full > 0
    pressure_after = cpu_pressure()
    instances = count_instances(lambda: get(client, page.url))
    with CaptureQueriesContext(connection) as captured:
        body = get(client, page.url)
    return Measurement(
        page=page,
        times_ms=times,
        cpu_ms=cpu_times,
        sql_ms=sql_times,
        gc_ms=gc_pauses,
        full_gc_requests=full_gcs,
        queries=len(captured.captured_queries),
        instances=instances,
        queries_warmup=warm_queries,
        rows=page.rows(body),
        size_kb=len(body) / 1024,
        cpu_pressure=(pressure_before, pressure_after),
    )


# Where a profiled function lives, by the first matching fragment of its file name (checked in this order).
BUCKETS = (
    ("/psycopg", "psycopg (driver, waiting for PostgreSQL)"),
    ("/django/db/", "Django ORM (queries, model instances)"),
    ("/django/template", "Django templates"),
    ("/django/utils/", "Django utils (escaping, date and number formats, translation)"),
    ("/rest_framework/", "Django REST framework"),
    ("/django/", "Django other (middleware, sessions, auth, URLs)"),
    ("/.venv/", "other libraries"),
    (str(ROOT), "LabFlow code (selectors, services, views)"),
)


def bucket(filename: str) -> str:
    for fragment, name in BUCKETS:
        if fragment in filename and not (name.startswith("LabFlow") and filename.endswith("worklists.py")):
            return name
    return "Python builtins and standard library"


class SqlLog:
    """An execute wrapper recording time per statement shape (IN lists collapsed)."""

    def __init__(self) -> None:
        self.shapes: dict[str, list[float]] = {}

    def __call__(self, execute: Callable[..., Any], statement: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            shape = re.sub(r"IN \((?:%s, )*%s\)", "IN (…)", statement)
            self.shapes.setdefault(shape, []).append(time.perf_counter() - started)


def profile(page: Page, requests: int, top: int) -> str:
    """cProfile over `requests` requests: time by area, LabFlow functions by cumulative time, hottest functions,
    and (separately, unprofiled) the slowest SQL statements."""
    from django.test.utils import override_settings

    with override_settings(**page.settings):
        return _profile(page, requests, top)


def _profile(page: Page, requests: int, top: int) -> str:
    from django.db import connection

    client = client_for(page.user)
    refresh_heartbeat()
    get(client, page.url)
    sql_log = SqlLog()
    with connection.execute_wrapper(sql_log):
        for _ in range(requests):
            get(client, page.url)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        get(client, page.url)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values())
    areas: dict[str, float] = {}
    for (filename, _, _), (_, _, tt, _, _) in raw.items():
        areas[bucket(filename)] = areas.get(bucket(filename), 0.0) + tt
    text = io.StringIO()
    text.write(f"\n### {page.name}\n\n")
    text.write(f"Own time by area (cProfile, {requests} requests, {total / requests * 1000:.0f} ms per request "
               "under the profiler):\n\n| Area | ms / request | Share |\n|---|---:|---:|\n")  # fmt: skip
    for name, seconds in sorted(areas.items(), key=lambda item: -item[1]):
        text.write(f"| {name} | {seconds / requests * 1000:.1f} | {seconds / total:.0%} |\n")
    ours = [
        (ct, nc, f"{Path(filename).relative_to(ROOT)}:{line}({func})")
        for (filename, line, func), (_, nc, _, ct, _) in raw.items()
        if filename.startswith(str(ROOT)) and "/.venv/" not in filename and not filename.endswith("worklists.py")
    ]
    text.write("\nLabFlow functions by cumulative time (ms per request, calls per request):\n\n```\n")
    for ct, nc, where in sorted(ours, reverse=True)[:top]:
        text.write(f"{ct / requests * 1000:9.1f} ms {nc / requests:9.0f}  {where}\n")
    text.write("```\n\nHottest functions by own time:\n\n```\n")
    stats.stream = text  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    text.write("```\n\nSQL statements by total time (unprofiled requests; ms per request, count per request):\n\n")
    text.write("| Statement | ms / request | count / request |\n|---|---:|---:|\n")
    for shape, times in sorted(sql_log.shapes.items(), key=lambda item: -sum(item[1]))[:8]:
        short = " ".join(shape.split())
        short = short if len(short) <= 200 else short[:197] + "..."
        text.write(f"| `{short}` | {sum(times) / requests * 1000:.1f} | {len(times) / requests:.0f} |\n")
    return text.getvalue()


# ------------------------------------------------------------------------------------------------ report


def machine_facts(load_at_start: tuple[float, float, float]) -> dict[str, str]:
    return {
        "CPUs (nproc)": str(len(os.sched_getaffinity(0))),
        "CPU": cpu_model(),
        **software_facts(),
        **database_fact(),
        **server_settings("shared_buffers", "work_mem", "jit"),
        **load_facts(load_at_start),
    }


def report(
    results: Sequence[Measurement], facts: Mapping[str, str], data: Mapping[str, str], requests: int, patients: int
) -> None:
    print_facts("Machine", facts)
    print_facts("Data", data)
    print(f"\n## Server time ({patients:,} patients; {WARMUP} warm-up then {requests} timed requests per page)\n")
    print(
        "| Page | User | p50 | p95 | max | Python CPU p50 / p95 | SQL time p50 | GC: requests with a full GC, "
        "max pause | SQL statements / request | Model instances / request | Rows on the page | Body "
        "| CPU pressure before / after "
        f"| Target p95 ≤ {TARGET_MS:.0f} ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|")
    for m in results:
        verdict = "met" if m.pct(95) <= TARGET_MS else "**not met**"
        queries = str(m.queries)
        if set(m.queries_warmup) != {m.queries}:
            queries += f" (warm-up {m.queries_warmup})"
        print(
            f"| {m.page.name} | {m.page.user.username} | {m.pct(50):.0f} ms | {m.pct(95):.0f} ms "
            f"| {max(m.times_ms):.0f} ms | {percentile(m.cpu_ms, 50):.0f} / {percentile(m.cpu_ms, 95):.0f} ms "
            f"| {percentile(m.sql_ms, 50):.0f} ms | {m.full_gc_requests}/{len(m.times_ms)}, {max(m.gc_ms):.0f} ms "
            f"| {queries} | {m.instances:,} | {m.rows} | {m.size_kb:,.0f} KiB "
            f"| {m.cpu_pressure[0]} / {m.cpu_pressure[1]} | {verdict} |"
        )
    print(
        "\nWall time around `client.get` (the target's measure); Python CPU = CPU time of this process in that "
        "interval (insensitive to other processes' load); SQL time = wall time inside the database driver; "
        "GC = Python's cyclic garbage collector (a full, generation-2, collection pauses the request). "
        "CPU pressure = Linux PSI `some avg10` (share of time a runnable task waited for a CPU)."
    )


@contextmanager
def timed(what: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log(f"{what}: {time.perf_counter() - started:.1f} s")


# ------------------------------------------------------------------------------------------------ main


def gunicorn_worker_start() -> None:
    """What each web worker does once it has loaded the application (gunicorn.conf.py's post_worker_init)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    if spec is None or spec.loader is None:
        raise SystemExit("gunicorn.conf.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.warm_up()
    module.tune_gc()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (after 3 warm-up)")
    parser.add_argument("--reuse", action="store_true", help="keep a complete build made today with --patients")
    parser.add_argument("--profile", action="store_true", help="also profile every page with cProfile")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.collect() and gc.freeze() before measuring, as a gunicorn post_fork hook could",
    )
    parser.add_argument(
        "--gunicorn-gc",
        action="store_true",
        help="run gunicorn.conf.py's worker start-up (warm-up, gc.freeze(), generation-0 threshold) before measuring",
    )
    parser.add_argument("--profile-requests", type=int, default=10)
    parser.add_argument("--profile-top", type=int, default=25)
    args = parser.parse_args(argv)
    if not 2 <= args.patients <= 20_000:
        parser.error("--patients must be between 2 and 20,000")
    if not 1 <= args.requests <= 10_000:
        parser.error("--requests must be between 1 and 10,000")
    if not (1 <= args.profile_requests <= 1_000 and 1 <= args.profile_top <= 500):
        parser.error("--profile-requests must be 1..1,000 and --profile-top 1..500")

    url = os.environ["DATABASE_URL"]
    load_at_start = os.getloadavg()
    django.setup()  # opens no connection: the database may still be dropped below
    from django.conf import settings

    # As in production (settings.py: CONN_MAX_AGE for gunicorn, a pool under ASGI), the web keeps its
    # connection between requests; the test settings close it after each one.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    from django.utils import timezone

    found = existing_build(url)
    reuse = args.reuse and found == (timezone.localdate(), args.patients)
    if args.reuse and not reuse:
        log("--reuse: no complete build from today with this --patients; building anew")
    ensure_database(url, recreate=found is not None and not reuse, log=log, refusal=REFUSAL)
    with timed("migrate"):
        migrate()
    build_seconds = "reused (built earlier today)"
    stats: BuildStats | None = None
    if not reuse:
        log(f"building {args.patients:,} patients ...")
        stats = build(args.patients)
        build_seconds = f"{stats.seconds:.0f} s"
        log(f"built in {stats.seconds:.0f} s")
        with timed("ANALYZE"):
            execute("ANALYZE")
    rows = table_rows()
    data = {
        "patients": f"{args.patients:,} in {len(TEAMS)} care teams ({', '.join(w for _, w in TEAMS)})",
        "first doses": f"{window_start():%Y-%m-%d %H:%M} + 48 h (worklist window), one per patient",
        "build (untimed)": build_seconds,
        "rows": ", ".join(f"{table} {n:,}" for table, n in rows.items()),
    }
    if stats is not None:
        data["courses"] = ", ".join(f"{name} {n:,}" for name, n in stats.courses.items())
        data["first-dose pre-dose labs"] = ", ".join(f"{state} {n:,}" for state, n in sorted(stats.states.items()))
        data["overdue alerts raised by the one sweep"] = f"{stats.overdue_alerts:,}"

    actors = load_actors()
    if args.gunicorn_gc:
        gunicorn_worker_start()
    elif args.gc_freeze:
        gc.collect()
        gc.freeze()
    tuned = "gunicorn.conf.py post_worker_init" if args.gunicorn_gc else "default"
    data["Python garbage collector"] = f"{tuned}, thresholds {gc.get_threshold()}"
    if args.gc_freeze or args.gunicorn_gc:
        data["Python garbage collector"] += f"; gc.freeze() of {gc.get_freeze_count():,} objects before measuring"
    results = []
    for page in pages(actors):
        measurement = measure(page, args.requests)
        log(
            f"{page.name}: p50 {measurement.pct(50):.1f} ms, p95 {measurement.pct(95):.1f} ms, "
            f"CPU p50 {percentile(measurement.cpu_ms, 50):.1f} ms, {measurement.queries} queries, "
            f"rows {measurement.rows}, CPU pressure {measurement.cpu_pressure}"
        )
        results.append(measurement)
    report(results, machine_facts(load_at_start), data, args.requests, args.patients)
    if args.profile:
        print(f"\n## Profiles ({args.profile_requests} requests per page; cProfile inflates Python time)")
        for page in pages(actors):
            print(profile(page, args.profile_requests, args.profile_top))


if __name__ == "__main__":
    main()
