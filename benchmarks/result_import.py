"""Benchmark of result import: 10,000 results stored, flagged and CTCAE-graded through `import_results`.

Run from the project root:

    .venv/bin/python benchmarks/result_import.py [--patients 1000] [--results 10000] [--repeat 3] [--profile]

It loads --patients patients in 2 care teams. Each patient has, collected by a nurse through the services
(`monitoring_test_schedule`, `specimens_collect`), one gold-top specimen (Comprehensive metabolic panel + TSH,
9 analytes) and one lavender-top specimen (CBC with differential, 4 analytes), plus two earlier draws with
verified results for all 13 analytes (21 and 3 days ago: a CTCAE baseline and a previous value inside the
7-day delta window).

It then writes --results results for those specimens twice, with the same content: (a) an HL7 v2 file of
ORU^R01 messages (one message per specimen, one OBR group per order, several OBX each; about half the
patients come from an "SI" analyser sending creatinine and bilirubin in umol/L, glucose in mmol/L,
haemoglobin in g/L, counts in 10^9/L) and (b) a CSV file (accession,mrn,loinc,value,unit,observed_at).
Values are mostly normal, ~15 % abnormal and ~2 % critical.

Timed, end to end, per repetition and format: `call_command("import_results", file, "--no-progress")`.
Afterwards it checks that exactly --results new Result rows exist, all flagged, every one with a CTCAE term
graded, and that the HL7 and CSV imports stored the same values, flags, grades and delta flags.

Between timed runs the imported results (and their audit events) are removed with
`session_replication_role = replica` (results are append-only and protected by triggers); that mode is never
on while timing. The database is TRUNCATEd at start: it must be a dedicated one whose name contains "bench"
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/labflow_bench_results; created if missing).

--profile runs one more, untimed, import of each file under cProfile and prints the top functions (with
--keep-files DIR the .prof files are written there too, next to the HL7 and CSV files).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_bench_results"

sys.path.insert(0, str(ROOT))

from benchmarks._common import configure_django, execute, print_facts, run_facts, scalar, setup_database  # noqa: E402

configure_django(DEFAULT_DATABASE_URL, "redis://127.0.0.1:6379/7")

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from patients.models import Patient


TARGET_SECONDS = 5.0  # docs/architecture.md §6: 10,000 results stored, flagged and graded in ≤ 5 s
CARE_TEAMS = 2
SEED = 20261122
STATEMENT_TIMEOUT = "10min"  # bounds every statement, the load included

# Apps whose tables the benchmark empties at start; the catalogue tables below are kept.
APPS_TO_EMPTY = ("patients", "monitoring", "specimens", "results", "alerts")
CATALOGUE_TABLE_PREFIXES = (
    "monitoring_labtest",
    "specimens_container",
    "specimens_testspecimenrequirement",
    "results_resultspec",
    "results_referencerange",
)


# ------------------------------------------------------------------------------------------------ the analytes


@dataclass(frozen=True)
class Analyte:
    """How the benchmark draws values: ranges in the catalogue unit; `si` = (unit, factor, decimals) or None."""

    name: str
    loinc: str
    unit: str
    decimals: int
    normal: tuple[float, float]
    abnormal: tuple[tuple[float, float], ...] = ()
    critical: tuple[tuple[float, float], ...] = ()
    si: tuple[str, float, int] | None = None
    alias: str = ""  # another spelling of the catalogue unit that some analysers send


CMP = (
    Analyte("ALT", "1742-6", "U/L", 0, (10, 50), ((60, 250),), ((300, 1200),)),
    Analyte("AST", "1920-8", "U/L", 0, (12, 38), ((45, 200),), ((250, 900),)),
    Analyte("ALP", "6768-6", "U/L", 0, (50, 140), ((160, 400),), ((500, 2000),), alias="IU/L"),
    Analyte("Total bilirubin", "1975-2", "mg/dL", 1, (0.2, 1.1), ((1.3, 3.5),), ((10, 15),), ("umol/L", 17.1, 0)),
    Analyte("Creatinine", "2160-0", "mg/dL", 2, (0.6, 1.0), ((1.2, 3.0),), ((6.0, 8.0),), ("umol/L", 88.42, 0)),
    Analyte("Glucose", "2345-7", "mg/dL", 0, (72, 98), ((45, 65), (110, 250)), ((30, 39), (500, 600)),
            ("mmol/L", 1 / 18.016, 1)),
    Analyte("Sodium", "2951-2", "mmol/L", 0, (136, 144), ((125, 134), (146, 155)), ((115, 119), (160, 165)),
            alias="mEq/L"),
    Analyte("Potassium", "2823-3", "mmol/L", 1, (3.6, 5.0), ((3.0, 3.4), (5.2, 6.0)), ((2.4, 2.7), (6.2, 7.0))),
)  # fmt: skip
TSH = Analyte("TSH", "3016-3", "m[IU]/L", 2, (0.5, 4.2), ((0.05, 0.35), (5, 25)), alias="uIU/mL")
CBC = (
    Analyte("WBC", "6690-2", "10*3/uL", 1, (4.5, 10.5), ((2.0, 3.9), (11.5, 20)), ((0.5, 1.0), (25, 40)),
            ("10*9/L", 1, 1), alias="K/uL"),
    Analyte("Neutrophils (ANC)", "751-8", "10*3/uL", 2, (2.0, 7.0), ((1.0, 1.7), (0.6, 0.9)), ((0.2, 0.5),),
            ("x10E9/L", 1, 2)),
    Analyte("Platelets", "777-3", "10*3/uL", 0, (160, 390), ((60, 140), (30, 49), (420, 600)), ((10, 20),),
            ("10^9/L", 1, 0)),
    Analyte("Haemoglobin", "718-7", "g/dL", 1, (13.6, 15.4), ((8.0, 11.9), (17.6, 19.0)), ((5.5, 6.9),),
            ("g/L", 10, 0)),
)  # fmt: skip
ANALYTES = (*CMP, TSH, *CBC)

# One HL7 order (OBR group) per panel; a specimen holds one or more orders.
ORDERS: dict[str, tuple[tuple[str, str, tuple[Analyte, ...]], ...]] = {
    "GOLD_SST": (("24323-8", "Comprehensive metabolic panel", CMP), ("3016-3", "TSH", (TSH,))),
    "LAV_EDTA": (("57021-8", "CBC with differential", CBC),),
}
SPECIMEN_TYPE = {"GOLD_SST": ("SER", "Serum"), "LAV_EDTA": ("BLD", "Whole blood")}
CONTAINER_ORDER = ("GOLD_SST", "LAV_EDTA")
MONITORING_PANELS = ("Comprehensive metabolic panel", "TSH", "CBC with differential")


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def draw_value(analyte: Analyte, rng: random.Random) -> float:
    """A value in the catalogue unit: ~2 % critical, ~15 % abnormal, the rest normal."""
    roll = rng.random()
    if roll < 0.02 and analyte.critical:
        low, high = rng.choice(analyte.critical)
    elif roll < 0.17 and analyte.abnormal:
        low, high = rng.choice(analyte.abnormal)
    else:
        low, high = analyte.normal
    return round(rng.uniform(low, high), analyte.decimals)


def as_sent(analyte: Analyte, value: float, *, si_lab: bool, rng: random.Random) -> tuple[str, str]:
    """(value, unit) as an analyser sends them: SI units from the SI analyser, sometimes a unit alias."""
    if si_lab and analyte.si is not None:
        unit, factor, decimals = analyte.si
        converted = value * factor
        return _fmt(max(converted, 10**-decimals), decimals), unit
    if analyte.alias and rng.random() < 0.3:
        return _fmt(value, analyte.decimals), analyte.alias
    return _fmt(value, analyte.decimals), analyte.unit


# ------------------------------------------------------------------------------------------------ generated data


@dataclass(frozen=True)
class PatientRow:
    mrn: str
    family: str
    given: str
    birth_date: date
    sex: str


@dataclass(frozen=True)
class Observation:
    loinc: str
    name: str
    value: str
    unit: str
    reference_range: str


@dataclass
class Order:
    code: str
    name: str
    observations: list[Observation] = field(default_factory=list)


@dataclass
class SpecimenMessage:
    """One ORU^R01: one specimen, its orders and their observations."""

    control_id: str
    patient: PatientRow
    accession: str
    container: str
    collected_at: datetime
    observed_at: datetime
    orders: list[Order] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(order.observations) for order in self.orders)


@dataclass
class Dataset:
    patients: int
    specimens: dict[str, dict[str, str]]  # mrn -> container code -> accession
    patient_rows: list[PatientRow]
    collected_at: datetime


Ranges = Mapping[str, tuple[Decimal | None, Decimal | None]]


def reference_text(analyte: Analyte, ranges: Ranges) -> str:
    low, high = ranges.get(analyte.loinc, (None, None))
    if low is None or high is None:
        return ""
    return f"{low.normalize():f}-{high.normalize():f}"


def build_messages(dataset: Dataset, results: int, ranges: Ranges) -> list[SpecimenMessage]:
    """`results` observations: every patient's gold-top specimen first, then lavender tops, until the count."""
    rng = random.Random(SEED)
    messages: list[SpecimenMessage] = []
    remaining = results
    observed_at = dataset.collected_at + timedelta(minutes=45)
    for container in CONTAINER_ORDER:
        for index, patient in enumerate(dataset.patient_rows):
            if remaining <= 0:
                break
            si_lab = index % 2 == 1
            message = SpecimenMessage(
                control_id=f"BENCH{len(messages) + 1:08d}",
                patient=patient,
                accession=dataset.specimens[patient.mrn][container],
                container=container,
                collected_at=dataset.collected_at,
                observed_at=observed_at,
            )
            for code, name, analytes in ORDERS[container]:
                order = Order(code, name)
                for analyte in analytes:
                    if remaining <= 0:
                        break
                    value, unit = as_sent(analyte, draw_value(analyte, rng), si_lab=si_lab, rng=rng)
                    order.observations.append(
                        Observation(analyte.loinc, analyte.name, value, unit, reference_text(analyte, ranges))
                    )
                    remaining -= 1
                if order.observations:
                    message.orders.append(order)
            messages.append(message)
    if remaining > 0:
        raise SystemExit(f"--results is larger than the {results - remaining} analytes the specimens hold")
    return messages


def _hl7_ts(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S%z")


def render_hl7(messages: Sequence[SpecimenMessage], now: datetime) -> str:
    """A batch file: FHS/BHS, the messages (\\r between segments), BTS/FTS; one message per line group."""
    from results.hl7.encoding import escape  # "10^9/L" must travel as 10\\S\\9/L: ^ separates components

    out = [f"FHS|^~\\&|ANALYZER|CORE LAB|LABFLOW|ONCOLOGY|{_hl7_ts(now)}", "BHS|^~\\&|ANALYZER|CORE LAB"]
    for message in messages:
        patient = message.patient
        specimen_type, specimen_name = SPECIMEN_TYPE[message.container]
        segments = [
            f"MSH|^~\\&|ANALYZER|CORE LAB|LABFLOW|ONCOLOGY|{_hl7_ts(now)}||ORU^R01^ORU_R01|{message.control_id}"
            "|P|2.5.1",
            f"PID|1||{patient.mrn}^^^HOSP^MR||{patient.family}^{patient.given}||{patient.birth_date:%Y%m%d}"
            f"|{patient.sex}",
        ]
        set_id = 0
        for number, order in enumerate(message.orders, start=1):
            segments.append(f"ORC|RE|PL{message.accession}{number}|{message.accession}")
            segments.append(
                f"OBR|{number}|PL{message.accession}{number}|{message.accession}|{order.code}^{order.name}^LN"
                f"|||{_hl7_ts(message.collected_at)}"
            )
            for obs in order.observations:
                set_id += 1
                segments.append(
                    f"OBX|{set_id}|NM|{obs.loinc}^{obs.name}^LN||{obs.value}|{escape(obs.unit)}|{obs.reference_range}"
                    f"||||F|||{_hl7_ts(message.observed_at)}"
                )
            segments.append(
                f"SPM|1|{message.accession}||{specimen_type}^{specimen_name}^HL70487"
                f"|||||||||||||{_hl7_ts(message.collected_at)}"
            )
        out.append("\r".join(segments) + "\r")
    out += [f"BTS|{len(messages)}", "FTS|1"]
    return "\n".join(out) + "\n"


def render_csv(messages: Sequence[SpecimenMessage]) -> str:
    lines = ["accession,mrn,loinc,value,unit,observed_at"]
    for message in messages:
        for order in message.orders:
            for obs in order.observations:
                lines.append(
                    f"{message.accession},{message.patient.mrn},{obs.loinc},{obs.value},{obs.unit},"
                    f"{message.observed_at.isoformat()}"
                )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ database helpers


@contextmanager
def replica_mode() -> Iterator[None]:
    """Triggers (audit, delete protection) and FK checks off: only for untimed resets."""
    execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        execute("SET session_replication_role = origin")


def tables_to_empty() -> list[str]:
    from django.apps import apps

    tables: set[str] = set()
    for label in APPS_TO_EMPTY:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            table = model._meta.db_table
            if not table.startswith(CATALOGUE_TABLE_PREFIXES):
                tables.add(table)
    return sorted(tables | {"pghistory_context"})


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ load


@dataclass
class Actors:
    nurse: User
    tech: User
    interface: User


def make_actors() -> Actors:
    from django.contrib.auth.models import Group, User

    from accounts.choices import Role
    from results.importing import interface_user

    def user(username: str, role: Role) -> User:
        account, created = User.objects.get_or_create(username=username)
        if created:
            account.set_unusable_password()
            account.save(update_fields=["password"])
        account.groups.add(Group.objects.get(name=role.label))
        return account

    return Actors(user("bench.nurse", Role.NURSE), user("bench.tech", Role.LAB_TECHNICIAN), interface_user())


def accessions(count: int) -> list[str]:
    """Accession numbers as `accession_number_next` makes them (sequence + Damm check digit), in one query."""
    from django.db import connection
    from stdnum import damm

    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('specimens_accession_seq') FROM generate_series(1, %s)", [count])
        values = [row[0] for row in cursor.fetchall()]
    return [f"{v:09d}" + damm.calc_check_digit(f"{v:09d}") for v in values]


def load(patients: int, actors: Actors, now: datetime) -> Dataset:
    """Empty the tables; patients, collected specimens (services) and two verified earlier draws each."""
    from monitoring.models import LabTest
    from monitoring.services import monitoring_test_schedule
    from patients.choices import CareTeamRole, Sex
    from patients.models import CareTeam, CareTeamMembership, Patient
    from results.models import ResultSpec
    from specimens.services import specimens_collect

    execute(f"TRUNCATE {', '.join(tables_to_empty())} RESTART IDENTITY CASCADE")
    assert ResultSpec.objects.count() >= len(ANALYTES), "the result catalogue is missing (migrations?)"
    teams = [CareTeam.objects.create(name=f"Bench team {n}", ward=f"Ward B{n}") for n in range(1, CARE_TEAMS + 1)]
    for team in teams:
        CareTeamMembership.objects.create(care_team=team, user=actors.nurse, role=CareTeamRole.NURSE)
    rng = random.Random(SEED + 1)
    rows = [
        PatientRow(
            mrn=f"BR{n:06d}",
            family=f"Family{n}",
            given=rng.choice(["Ada", "Ben", "Chloe", "Dev", "Emil", "Fay"]),
            birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(0, 50 * 365)),
            sex=Sex.FEMALE if n % 2 else Sex.MALE,
        )
        for n in range(1, patients + 1)
    ]
    Patient.objects.bulk_create(
        [
            Patient(
                mrn=r.mrn,
                family_name=r.family,
                given_name=r.given,
                birth_date=r.birth_date,
                sex=r.sex,
                weight_kg=Decimal("72.0"),
                height_cm=Decimal("171.0"),
                care_team=teams[n % CARE_TEAMS],
            )
            for n, r in enumerate(rows)
        ],
        batch_size=1000,
    )
    by_mrn = {p.mrn: p for p in Patient.objects.all()}
    panels = {t.name: t for t in LabTest.objects.filter(name__in=MONITORING_PANELS)}
    collected_at = now - timedelta(hours=2)
    specimens: dict[str, dict[str, str]] = {}
    started = time.perf_counter()
    for n, row in enumerate(rows, start=1):
        patient = by_mrn[row.mrn]
        due = [
            monitoring_test_schedule(
                patient=patient,
                lab_test=panels[name],
                due_at=collected_at - timedelta(minutes=10),
                grace_period=timedelta(minutes=30),
                user=None,
                now=collected_at - timedelta(days=1),
            )
            for name in MONITORING_PANELS
        ]
        drawn = specimens_collect(
            patient=patient, wristband=row.mrn, monitoring_tests=due, user=actors.nurse, now=collected_at
        )
        specimens[row.mrn] = {s.container.code: s.accession for s in drawn}
        assert set(specimens[row.mrn]) == set(CONTAINER_ORDER), f"unexpected containers {specimens[row.mrn]}"
        if n % 250 == 0:
            log(f"  collected for {n}/{patients} patients ({time.perf_counter() - started:.0f} s)")
    load_history(rows, by_mrn, actors, now)
    for table in ("patients_patient", "specimens_specimen", "results_result", "results_resultevent"):
        execute(f"VACUUM ANALYZE {table}")
    return Dataset(patients, specimens, rows, collected_at)


def load_history(rows: Sequence[PatientRow], by_mrn: Mapping[str, Patient], actors: Actors, now: datetime) -> None:
    """Two earlier draws per patient (21 and 3 days ago), every analyte verified by another technician."""
    from monitoring.models import LabTest
    from results.choices import ResultFlag, ResultSource, ResultStatus
    from results.models import Result
    from specimens.choices import SpecimenStatus
    from specimens.models import Container, Specimen

    tests = {t.loinc_code: t for t in LabTest.objects.filter(loinc_code__in=[a.loinc for a in ANALYTES])}
    containers = {c.code: c for c in Container.objects.filter(code__in=CONTAINER_ORDER)}
    rng = random.Random(SEED + 2)
    draws = (now - timedelta(days=21), now - timedelta(days=3))
    numbers = iter(accessions(len(rows) * len(draws) * len(CONTAINER_ORDER)))
    specimens = []
    for row in rows:
        for drawn_at in draws:
            for code in CONTAINER_ORDER:
                specimens.append(
                    Specimen(
                        accession=next(numbers),
                        patient=by_mrn[row.mrn],
                        container=containers[code],
                        specimen_type=containers[code].specimen_type,
                        status=SpecimenStatus.RECEIVED,
                        collected_at=drawn_at,
                        collected_by=actors.nurse,
                        received_at=drawn_at + timedelta(minutes=40),
                        received_by=actors.tech,
                        condition="ROOM",
                    )
                )
    created = Specimen.objects.bulk_create(specimens, batch_size=2000)
    results = []
    for specimen in created:
        for _code, _name, analytes in ORDERS[specimen.container.code]:
            for analyte in analytes:
                low, high = analyte.normal
                results.append(
                    Result(
                        patient_id=specimen.patient_id,
                        specimen=specimen,
                        lab_test=tests[analyte.loinc],
                        value_numeric=Decimal(_fmt(rng.uniform(low, high), analyte.decimals)),
                        unit=analyte.unit,
                        received_value="",
                        observed_at=specimen.collected_at + timedelta(hours=1),
                        flag=ResultFlag.NORMAL,
                        status=ResultStatus.FINAL,
                        source=ResultSource.HL7,
                        message_control_id=f"HIST{specimen.pk}",
                        entered_at=specimen.collected_at + timedelta(hours=1),
                        entered_by=actors.interface,
                        verified_at=specimen.collected_at + timedelta(hours=2),
                        verified_by=actors.tech,
                    )
                )
    Result.objects.bulk_create(results, batch_size=2000)


# ------------------------------------------------------------------------------------------------ timing


_IN_LIST = re.compile(r"\((?:%s, )*%s\)")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')
_VALUES = re.compile(r"\bVALUES\b.*", re.S)


def statement_shape(statement: str) -> str:
    """The statement with IN lists, VALUES rows and savepoint names collapsed, for grouping."""
    shape = _VALUES.sub("VALUES ...", _SAVEPOINT.sub("sp", _IN_LIST.sub("(...)", statement)))
    return " ".join(shape.split())


@dataclass
class QueryStats:
    """Statements sent by Django during a run (server-side trigger work is inside its statement), their wall
    time, and the wall time of the commits (one per message or specimen)."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    by_shape: dict[str, list[float]] = field(default_factory=dict)  # shape -> [count, seconds]
    commits: int = 0
    commit_seconds: float = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            self.counts[sql.lstrip().split(None, 1)[0].upper()] += 1
            entry = self.by_shape.setdefault(statement_shape(sql), [0, 0.0])
            entry[0] += 1
            entry[1] += elapsed

    @contextmanager
    def timing_commits(self, connection: Any) -> Iterator[None]:
        """Time DatabaseWrapper._commit (instance attribute, removed afterwards): the benchmark's own hook."""
        original = connection._commit

        def timed() -> None:
            started = time.perf_counter()
            try:
                original()
            finally:
                self.commits += 1
                self.commit_seconds += time.perf_counter() - started

        connection._commit = timed
        try:
            yield
        finally:
            del connection._commit

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def top(self, count: int) -> list[tuple[str, int, float]]:
        ranked = sorted(self.by_shape.items(), key=lambda item: -item[1][1])[:count]
        return [(shape, int(n), seconds) for shape, (n, seconds) in ranked]


@dataclass
class Run:
    fmt: str
    seconds: float
    stored: int
    queries: QueryStats
    fingerprint: list[tuple[Any, ...]]
    flags: Counter[str]
    grades: Counter[str]
    deltas: int
    other_unit: int
    rescaled: int
    cpu_seconds: float = 0.0  # of this Python process (the import's own work, not PostgreSQL's)
    load_at_start: float = 0.0  # 1-minute load average when the run started


@dataclass
class Watermark:
    result_id: int
    event_id: int
    results: int


def watermark() -> Watermark:
    return Watermark(
        result_id=int(scalar("SELECT COALESCE(max(id), 0) FROM results_result")),
        event_id=int(scalar("SELECT COALESCE(max(pgh_id), 0) FROM results_resultevent")),
        results=int(scalar("SELECT count(*) FROM results_result")),
    )


def reset(mark: Watermark) -> None:
    """Untimed: remove what an import added (results, their audit events and contexts)."""
    with replica_mode():
        execute("DELETE FROM results_result WHERE id > %s", [mark.result_id])
        execute("DELETE FROM results_resultevent WHERE pgh_id > %s", [mark.event_id])
        execute("DELETE FROM pghistory_context WHERE metadata ? 'import_file'")
        execute("DELETE FROM results_inboundmessage")  # else the next run's messages are duplicates
    execute("VACUUM ANALYZE results_result")
    execute("VACUUM ANALYZE results_resultevent")
    execute("CHECKPOINT")  # the timed run must not pay for writing out the reset's dirty pages
    remaining = int(scalar("SELECT count(*) FROM results_result"))
    assert remaining == mark.results, f"reset left {remaining} results, expected {mark.results}"


def import_file(path: Path) -> tuple[str, str]:
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("import_results", str(path), "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def time_import(fmt: str, path: Path, expected: int, mark: Watermark) -> Run:
    from django.db import connection

    reset(mark)
    stats = QueryStats()
    load = os.getloadavg()[0]
    with connection.execute_wrapper(stats), stats.timing_commits(connection):
        started, cpu_started = time.perf_counter(), time.process_time()
        out, err = import_file(path)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if f"Stored {expected} results; refused 0" not in out or err:
        raise SystemExit(f"{fmt} import did not store everything:\n{out}\n{err[:2000]}")
    run = verify(fmt, seconds, expected, mark, stats)
    run.cpu_seconds, run.load_at_start = cpu, load
    return run


def verify(fmt: str, seconds: float, expected: int, mark: Watermark, stats: QueryStats) -> Run:
    """Exactly `expected` new rows, from this format, all flagged, every CTCAE term graded."""
    from django.db.models import F

    from results.choices import ResultSource
    from results.models import Result, ResultSpec

    new = Result.objects.filter(id__gt=mark.result_id)
    stored = new.count()
    assert stored == expected, f"{fmt}: {stored} new results, expected {expected}"
    source = ResultSource.HL7 if fmt == "HL7" else ResultSource.CSV
    assert new.exclude(source=source).count() == 0, f"{fmt}: results with another source"
    assert new.filter(flag="").count() == 0, f"{fmt}: results without a flag"
    assert new.filter(value_numeric=None).count() == 0, f"{fmt}: results without a numeric value"
    termed = {
        s.lab_test_id for s in ResultSpec.objects.exclude(ctcae_term_low="", ctcae_term_high="").only("lab_test_id")
    }
    assert new.filter(lab_test_id__in=termed, ctcae_term="").count() == 0, f"{fmt}: a CTCAE term was not applied"
    ungraded = new.exclude(ctcae_term="").filter(ctcae_grade=None).count()
    assert ungraded == 0, f"{fmt}: {ungraded} results with a CTCAE term but no grade"
    assert new.exclude(lab_test_id__in=termed).exclude(ctcae_term="").count() == 0, f"{fmt}: unexpected CTCAE term"
    other_unit = new.exclude(received_unit=F("unit")).count()
    rescaled = int(
        scalar(
            "SELECT count(*) FROM results_result WHERE id > %s AND received_value::numeric <> value_numeric",
            [mark.result_id],
        )
    )
    creatinine = new.filter(lab_test__loinc_code="2160-0", received_unit="umol/L").values_list(
        "received_value", "value_numeric"
    )
    for received, stored_value in creatinine[:200]:
        assert stored_value is not None
        assert abs(Decimal(received) / Decimal("88.42") - stored_value) <= Decimal("0.006"), (received, stored_value)
    rows = list(
        new.order_by("specimen_id", "lab_test_id").values_list(
            "specimen_id", "lab_test_id", "value_numeric", "unit", "flag", "ctcae_term", "ctcae_grade", "delta_flag"
        )
    )
    return Run(
        fmt=fmt,
        seconds=seconds,
        stored=stored,
        queries=stats,
        fingerprint=rows,
        flags=Counter(row[4] for row in rows),
        grades=Counter("-" if row[6] is None else str(row[6]) for row in rows),
        deltas=sum(1 for row in rows if row[7]),
        other_unit=other_unit,
        rescaled=rescaled,
    )


def profile_import(fmt: str, path: Path, mark: Watermark, top: int, dump: Path | None) -> str:
    reset(mark)
    profiler = cProfile.Profile()
    profiler.enable()
    import_file(path)
    profiler.disable()
    if dump is not None:
        profiler.dump_stats(dump)
    text = io.StringIO()
    for order in ("cumulative", "tottime"):
        text.write(f"\n#### {fmt}: top {top} by {order}\n\n```\n")
        stats = pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order)
        stats.print_stats(top)
        text.write("```\n")
    return text.getvalue()


# ------------------------------------------------------------------------------------------------ report


def report(runs: Sequence[Run], facts: Mapping[str, str], setup: Mapping[str, str], repeat: int, results: int) -> None:
    print_facts("Machine", facts)
    print_facts("Data", setup)
    print(f"\n## Results ({results:,} results per run, {repeat} runs per format)\n")
    print(
        "| Format | Median | Min | Max | Results/s (median) | Python CPU (median) | SQL statements / run "
        f"| SQL wall time (median) | Commits: n, wall time (median) | Target ≤ {TARGET_SECONDS:.0f} s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for fmt in ("HL7", "CSV"):
        mine = [r for r in runs if r.fmt == fmt]
        times = [r.seconds for r in mine]
        median = statistics.median(times)
        cpu = statistics.median(r.cpu_seconds for r in mine)
        queries = statistics.median(r.queries.total for r in mine)
        db = statistics.median(r.queries.seconds for r in mine)
        commits = statistics.median(r.queries.commits for r in mine)
        commit_s = statistics.median(r.queries.commit_seconds for r in mine)
        verdict = "met" if median <= TARGET_SECONDS else "**not met**"
        print(
            f"| {fmt} | {median:.2f} s | {min(times):.2f} s | {max(times):.2f} s | {results / median:,.0f} "
            f"| {cpu:.2f} s | {queries:,.0f} | {db:.2f} s ({db / median:.0%}) | {commits:,.0f}, {commit_s:.2f} s "
            f"| {verdict} |"
        )
    print("\n### Individual runs\n")
    for r in runs:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in r.queries.counts.most_common())
        print(
            f"- {r.fmt}: {r.seconds:.2f} s (Python CPU {r.cpu_seconds:.2f} s, load average {r.load_at_start:.2f} "
            f"at start), {r.queries.total:,} statements ({kinds}), SQL {r.queries.seconds:.2f} s, "
            f"{r.queries.commits:,} commits {r.queries.commit_seconds:.2f} s"
        )
    for fmt in ("HL7", "CSV"):
        mine = [r for r in runs if r.fmt == fmt]
        fastest = min(mine, key=lambda r: r.seconds)
        print(f"\n### {fmt}: statements by total wall time (fastest run, {fastest.seconds:.2f} s)\n")
        print("| Statement (IN lists and VALUES collapsed) | Count | Total | Mean |")
        print("|---|---:|---:|---:|")
        for shape, count, seconds in fastest.queries.top(8):
            text = shape if len(shape) <= 160 else shape[:157] + "..."
            print(f"| `{text}` | {count:,} | {seconds:.2f} s | {seconds / count * 1000:.2f} ms |")
    last = runs[-1]
    print("\n### What was stored (last run; identical for HL7 and CSV)\n")
    print(f"- flags: {', '.join(f'{k or chr(8709)} {v:,}' for k, v in sorted(last.flags.items()))}")
    print(f"- CTCAE grades: {', '.join(f'{k} {v:,}' for k, v in sorted(last.grades.items()))} ('-' = no CTCAE term)")
    print(f"- delta-check failures: {last.deltas:,}")
    print(f"- received in another unit or spelling than the catalogue's: {last.other_unit:,}")
    print(f"- of which converted to another value (umol/L, mmol/L glucose, g/L): {last.rescaled:,}")


# ------------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000)
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one import of each file (cProfile)")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--keep-files", type=Path, help="write the HL7 and CSV files into this directory")
    args = parser.parse_args(argv)
    if min(args.patients, args.results, args.repeat, args.profile_top) < 1:
        parser.error("--patients, --results, --repeat and --profile-top must be positive")
    if args.repeat > 50:
        parser.error("--repeat is at most 50")

    setup_database(statement_timeout=STATEMENT_TIMEOUT)
    from django.utils import timezone

    from results.models import ReferenceRange

    load_at_start = os.getloadavg()

    now = timezone.now().replace(microsecond=0)
    log(f"loading {args.patients:,} patients ...")
    started = time.perf_counter()
    actors = make_actors()
    dataset = load(args.patients, actors, now)
    load_seconds = time.perf_counter() - started
    mark = watermark()
    log(f"loaded in {load_seconds:.0f} s ({mark.results:,} earlier results)")

    ranges: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for rng in ReferenceRange.objects.select_related("lab_test").order_by("sex", "id"):  # "any sex" rows first
        ranges.setdefault(rng.lab_test.loinc_code, (rng.low, rng.high))
    messages = build_messages(dataset, args.results, ranges)
    workdir = Path(tempfile.mkdtemp(prefix="labflow-bench-results-"))
    if args.keep_files:
        args.keep_files.mkdir(parents=True, exist_ok=True)
        workdir = args.keep_files
    hl7_path, csv_path = workdir / "results.hl7", workdir / "results.csv"
    hl7_path.write_text(render_hl7(messages, now), encoding="utf-8")
    csv_path.write_text(render_csv(messages), encoding="utf-8")
    setup = {
        "patients": f"{args.patients:,} in {CARE_TEAMS} care teams",
        "specimens imported": f"{len(messages):,} ({len(messages):,} ORU^R01 messages, "
        f"{sum(len(m.orders) for m in messages):,} OBR groups)",
        "earlier verified results": f"{mark.results:,} (2 draws x 13 analytes per patient)",
        "HL7 file": f"{hl7_path.stat().st_size / 2**20:.1f} MiB",
        "CSV file": f"{csv_path.stat().st_size / 2**20:.1f} MiB",
        "load (untimed)": f"{load_seconds:.0f} s",
    }

    runs: list[Run] = []
    for rep in range(args.repeat):
        for fmt, path in (("HL7", hl7_path), ("CSV", csv_path)):
            run = time_import(fmt, path, args.results, mark)
            if runs:
                assert run.fingerprint == runs[0].fingerprint, f"{fmt} stored different results from {runs[0].fmt}"
            runs.append(run)
            log(f"rep {rep + 1}/{args.repeat} {fmt}: {run.seconds:.2f} s, {run.queries.total:,} statements")
    report(runs, run_facts(load_at_start), setup, args.repeat, args.results)
    if args.profile:
        print("\n## Profile (cProfile, one untimed import each; cProfile inflates Python-heavy code)")
        for fmt, path in (("HL7", hl7_path), ("CSV", csv_path)):
            dump = args.keep_files / f"profile-{fmt.lower()}.prof" if args.keep_files else None
            print(profile_import(fmt, path, mark, args.profile_top, dump))
    reset(mark)
    if not args.keep_files:
        hl7_path.unlink()
        csv_path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
