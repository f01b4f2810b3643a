"""Alert burden of a simulated ward week, under the alert rules as built and re-counted under the old rules
(the issue "Alerts that matter"; figures in docs/benchmarks.md, "Alert burden").

Run from the project root:

    .venv/bin/python benchmarks/alert_burden.py [--seed 20261201] [--json PATH]

Database: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/labflow_burden_bench; its name must contain
"bench"): DROPped, re-created and migrated on every run. Redis: redis://127.0.0.1:6379/6 (cache only). Settings:
labflow.settings_test with ALERT_OVERDUE_HOLD set back to the production default, 30 min. Exit status 1 when an
actionable alert was lost or a target was missed. One run takes about 3 minutes on 2 cores (40-70 s of it is
`migrate`; most of the rest is the services themselves, above all the dose-gate hook of `results_verify`).

The ward, built through LabFlow's services (`course_start`, `specimens_collect`, `specimen_record_custody`,
`specimen_receive`, `specimen_reject`, `results_enter`, `results_verify`, `critical_call_record`,
`results_review`, `alert_acknowledge`); users, teams and patients with the ORM (no service
exists for them):

  * Team A, checkpoint-inhibitor unit: 3 nurses, 2 oncologists, a charge nurse, a covering oncologist and an
    attending; 40 patients on the catalogue's checkpoint regimens (REGIMENS below: q2w to q6w; pre-dose CBC + CMP
    24 h before each dose, TSH as the plan says, the baseline panel 72 h before dose 1). 10 % start their course
    in the simulated period; the others have had 1-4 doses (the monitoring tests of those earlier doses are
    "history": drawn on time, normal values, verified and reviewed, so CTCAE has a baseline).
  * Team B, cellular-therapy unit, the same roster; 6 patients on axicabtagene ciloleucel, infused 7 days
    before the week to 18 h before it, 30 h apart (so all are in days 0-14 all week): pre-dose CBC + CMP, then
    daily CBC, CMP, CRP, ferritin, PT, INR, aPTT, fibrinogen, LDH, uric acid, phosphate, magnesium (the
    catalogue's plan, grace 12 h).
  * Two lab technicians: one enters a batch, the other verifies it.

The measured week is 2026-12-07 00:00 to 12-14 00:00 (UTC, the ward's clock). The clock starts 2 days earlier
(warm-up: the week starts with pending results and unreviewed findings, as a real one does). Draws due before
that are history, played through the same services without the clock: collected on time, no late or rejected
tubes, the lab on time (team A: normal values; team B: the values below). From the clock's start, every 5 min:
`monitoring_tests_flag_overdue(now=t)`, `alerts_reroute_due(now=t)` (to know when an alert reached the care
team) and `alerts_escalate_unacknowledged(now=t)`. Everything else is an event at its own minute, from a heap,
with one random.Random(seed) (a second one, seed + 1, for the old-rule re-count).

Behaviour (all times in minutes unless said; U(a, b) uniform; "night" for response times is 22:00-07:00):

  * Collection of a draw (a patient's tests due at the same time): 55 % within +-10 of due, 40 % 10-45 late,
    5 % missed: nobody draws it until a nurse acknowledges its collection-overdue alert (then U(10, 40) later),
    or, if no alert ever comes, at the next day's round (deadline + 12 h).
  * Tubes dispatched (in transit) U(5, 30) after collection, received U(10, 40) later (4 %: U(60, 150));
    1.5 % of tubes rejected at receipt (haemolysed gold top, clotted lavender or blue top): the nurse redraws
    U(10, 40) after acknowledging the rejection alert; the redraw resolves it.
  * Lab benches from receipt to entry: haematology U(10, 35), coagulation U(20, 45), chemistry U(30, 80),
    immunoassay (TSH, free T4, ferritin) U(45, 150), high-sensitivity troponin U(15, 35), batch (HbA1c,
    cortisol) U(120, 600); 8 % of batches late by another U(60, 240). Verified by the other technician
    U(5, 20) after entry (night U(10, 40)). Critical values phoned (`critical_call_record`) U(3, 10) after
    verification (night U(5, 15)).
  * Values: team A mostly normal; per patient, immune hepatitis CTCAE grade 1/2/3/4 with 8/3.5/3/0.5 %, kidney
    grade 1/2/3 with 7/2.5/0.5 %, hypothyroid 7 %, hyperthyroid 4 %, hyperglycaemia 10 %, hyponatraemia 4 %;
    per draw 0.2 % critical glucose, 0.3 % critical potassium. Team B after lymphodepletion: WBC 0.05-0.9 and
    ANC 20-55 % of it (critical, grade 4) until a recovery day U(9, 17), platelets falling from U(90, 190) to a
    nadir U(15, 80), haemoglobin drifting from U(9, 11) by 0.1/day, CRS in 85 % (onset day U(1, 4), U(3, 6)
    days: CRP, ferritin x U(1.5, 4), LDH up), coagulopathy 15 %, kidney injury 15 %, hyponatraemia 20 %.
    The catalogue flags and grades them (critical limits, CTCAE v5 with the baseline).
  * Acknowledgement of an open alert by a member of its audience (lab-queue alerts: nobody), minutes from when
    it opened, log-normal (sigma 0.7, 1-120): nurse median 8 (night 15), oncologist 12 (night 30); of an
    escalation by its rung: charge nurse 6 (10), covering oncologist 10 (20), attending 15 (30).
  * Review (`results_review`, which resolves finding alerts): batches with a critical value or a grade >= 3
    U(30, 180) after verification by day (07:00-22:00), else at 07:30 + U(0, 90); other batches at the next
    08:00 + U(0, 240) round.

"After": `alerts.burden.alert_burden` per team for the week (alerts first shown in it; one resolved while held
was never shown), plus who the escalations reached and the alerts' day/night split (shift 07:00-19:00).
Per nurse-shift = alerts to the team's nurses / 14; per oncologist-day = alerts to the team's oncologists / 7
(every nurse and oncologist of a team sees all of the team's alerts for their role); the ladder's people get only
escalations.

"Before": the same events re-counted under the old rules: one alert per overdue test per stage (collection,
result) to the whole care team (nurses and oncologists), no hold; one alert per critical result (care team) and
one per result with CTCAE grade >= 3 (oncologists), no folding; one per rejected tube (care team); lab-pattern
alerts as now. Each is acknowledged after a delay drawn as above (a critical one at the latest when phoned) and
resolved when its condition ended (collection, verified result, review); every alert still open 15 min after it
was raised escalated to all of the team's oncologists (moderate ones promoted to high).

Actionable alerts (each must reach someone in time, else it is "lost"): a draw still uncollected when the hold of
its collection-overdue alert ended (a nurse must see the alert by deadline + hold + 2 ticks); a rejected tube (a
nurse within 5 min); each critical value (a member of an open alert a nurse of the team sees within 5 min of
verification, or, when it only repeats a finding already signed off and is counted on that alert, phoned with
read-back within 15 min); each new CTCAE grade >= 3 (higher than any grade of the analyte verified in the
ALERT_FOLD_WINDOW, 72 h, before) must raise, worsen or re-notify an alert the team's oncologists see within 5 min.

Targets (the issue): cellular-therapy nurse <= 2 alerts per shift (the charge nurse's escalations as well), every
oncologist (the covering one and the attending with their escalations) <= 6 per day, 0 actionable alerts lost.

Also printed, as an estimate and not a measurement: a replay of the week's verified results under "a repeat of a
finding seen less than ALERT_FOLD_WINDOW ago, at the same or a lower grade, is no news even after the sign-off"
(what 641f535 built; before it, the cellular-therapy targets were missed).
"""

# ruff: noqa: E402  -- Django is set up before the project's modules are imported

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/labflow_burden_bench"

sys.path.insert(0, str(ROOT))

from benchmarks._common import configure_django, git_revision, make_user, migrate, recreate_database

configure_django(DEFAULT_DATABASE_URL, "redis://127.0.0.1:6379/6")

import django

django.setup()  # opens no connection: the database is re-created below before the first query

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from accounts.choices import Role
from alerts.burden import AlertBurden, alert_burden, shown_between
from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus
from alerts.findings import AUDIENCE_ROLES
from alerts.models import Alert, AlertEscalation
from alerts.selectors import alert_list
from alerts.services import alert_acknowledge, alerts_escalate_unacknowledged, alerts_reroute_due
from labflow.demo import NORMAL_RESULTS
from monitoring.choices import AWAITING_COLLECTION, MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from orders.models import Regimen
from orders.services.courses import course_start
from patients.choices import CareTeamRole, Sex
from patients.models import CareTeam, CareTeamMembership, Patient
from results.interpretation import CRITICAL_FLAGS
from results.models import Result
from results.selectors import Catalogue
from results.services import (
    ResultConflict,
    ResultEntry,
    critical_call_record,
    results_enter,
    results_review,
    results_verify,
)
from specimens.choices import CustodyEventKind, RejectionReason, SpecimenCondition
from specimens.models import Specimen
from specimens.services import specimen_receive, specimen_record_custody, specimen_reject, specimens_collect

# ------------------------------------------------------------------------------------------------ parameters

SEED = 20261201
WEEK_START = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday, 00:00 (settings.TIME_ZONE is UTC: the ward's clock)
WEEK = timedelta(days=7)
WARM_UP = timedelta(days=2)  # the clock (sweep, escalation, people answering alerts) starts this much earlier
TICK = timedelta(minutes=5)
HOLD = timedelta(minutes=30)  # ALERT_OVERDUE_HOLD in production (the test settings make it 0)
SHIFT = timedelta(hours=12)
DAY_SHIFT = (7, 19)  # 07:00-19:00; the night shift is 19:00-07:00
SLOW_HOURS = (22, 7)  # responses are slower from 22:00 to 07:00

TARGET_NURSE_PER_SHIFT = 2.0
TARGET_ONCOLOGIST_PER_DAY = 6.0
TARGET_FINDING = timedelta(minutes=5)  # critical value, new grade >= 3, rejected tube
TARGET_MISSED = HOLD + 2 * TICK  # missed collection, from its deadline
TARGET_CALL = timedelta(minutes=15)  # a critical value folded into a signed-off alert: the lab's call
REPEAT_OF_REVIEWED = "repeat folded into a signed-off alert"
OLD_ESCALATE_AFTER = timedelta(minutes=15)

TEAMS = {"A": ("Checkpoint inhibitor unit", "Ward 4A"), "B": ("Cellular therapy unit", "Ward 7B")}
ROSTER = (
    (CareTeamRole.NURSE, Role.NURSE, 3),
    (CareTeamRole.ONCOLOGIST, Role.ONCOLOGIST, 2),
    (CareTeamRole.CHARGE_NURSE, Role.NURSE, 1),
    (CareTeamRole.COVERING_ONCOLOGIST, Role.ONCOLOGIST, 1),
    (CareTeamRole.ATTENDING, Role.ONCOLOGIST, 1),
)
CHECKPOINT_PATIENTS = 40
CAR_T_PATIENTS = 6
REGIMENS = (
    ("Pembrolizumab 200 mg q3w", 0.30), ("Nivolumab 240 mg q2w", 0.20), ("Nivolumab 480 mg q4w", 0.15),
    ("Ipilimumab 3 mg/kg q3w x4", 0.10), ("Atezolizumab 1200 mg q3w", 0.10), ("Durvalumab 1500 mg q4w", 0.05),
    ("Cemiplimab 350 mg q3w", 0.05), ("Pembrolizumab 400 mg q6w", 0.05),
)  # fmt: skip
NEW_COURSE_SHARE = 0.10
MAX_EARLIER_DOSES = 4
CAR_T_REGIMEN = "Axicabtagene ciloleucel single infusion"
CAR_T_FIRST_INFUSION = WEEK_START - timedelta(days=7)
CAR_T_SPACING = timedelta(hours=30)

P_MISSED, P_ON_TIME = 0.05, 0.55
ON_TIME, LATE = (-10, 10), (10, 45)
REDRAW_AFTER_ACK = (10, 40)
MISSED_FALLBACK = timedelta(hours=12)  # next day's round, if no alert ever prompted the draw
DISPATCH, TRANSIT, SLOW_TRANSIT, P_SLOW_TRANSIT = (5, 30), (10, 40), (60, 150), 0.04
P_REJECT = 0.015
# The lab bench of each test (everything else: chemistry).
BENCH = {
    "CBC with differential": "haematology", "PT": "coagulation", "INR": "coagulation", "aPTT": "coagulation",
    "Fibrinogen": "coagulation", "TSH": "immunoassay", "Free T4": "immunoassay", "Ferritin": "immunoassay",
    "Troponin I (high-sensitivity)": "stat", "HbA1c": "batch", "Cortisol": "batch",
}  # fmt: skip
BENCH_MINUTES = {"haematology": (10, 35), "coagulation": (20, 45), "chemistry": (30, 80),
                 "immunoassay": (45, 150), "stat": (15, 35), "batch": (120, 600)}  # fmt: skip
P_LAB_LATE, LAB_LATE = 0.08, (60, 240)
VERIFY_DAY, VERIFY_NIGHT = (5, 20), (10, 40)
CALL_DAY, CALL_NIGHT = (3, 10), (5, 15)
REVIEW_FINDINGS = (30, 180)
ACK_MEDIAN = {  # minutes, (day, night)
    CareTeamRole.NURSE: (8, 15), CareTeamRole.ONCOLOGIST: (12, 30), CareTeamRole.CHARGE_NURSE: (6, 10),
    CareTeamRole.COVERING_ONCOLOGIST: (10, 20), CareTeamRole.ATTENDING: (15, 30),
}  # fmt: skip
ACK_SIGMA, ACK_RANGE = 0.7, (1.0, 120.0)

SURNAMES = "Abara Bianchi Castro Dahl Eriksen Fischer Gomez Horvat Ito Jovanovic Kaur Lindqvist Mensah Nakamura"
FORENAMES = "Ada Ben Clara Dev Elif Femi Greta Hugo Iris Jonas Kemal Lotte Marek Nadia Olu Priya"

PASSWORD = "bench-alert-burden-2026"  # noqa: S105 (throw-away users in a throw-away database)
NURSE_AUDIENCES = sorted(a.value for a, roles in AUDIENCE_ROLES.items() if CareTeamRole.NURSE in roles)


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the script started."""
    print(f"[{time.perf_counter() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=round(value))


def is_slow(at: datetime) -> bool:
    hour = timezone.localtime(at).hour
    return hour >= SLOW_HOURS[0] or hour < SLOW_HOURS[1]


def is_day_shift(at: datetime) -> bool:
    return DAY_SHIFT[0] <= timezone.localtime(at).hour < DAY_SHIFT[1]


def at_clock(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def ack_delay(rng: random.Random, role: str, at: datetime) -> timedelta:
    median = ACK_MEDIAN[CareTeamRole(role)][1 if is_slow(at) else 0]
    value = math.exp(rng.gauss(math.log(median), ACK_SIGMA))
    return minutes(min(max(value, ACK_RANGE[0]), ACK_RANGE[1]))


# ------------------------------------------------------------------------------------------------ values


@dataclass
class Profile:
    """What a patient's results look like in the simulated period (drawn once per patient)."""

    sex: str
    car_t: bool
    infusion_at: datetime | None = None
    liver: int = 0
    kidney: int = 0
    thyroid: str = "normal"
    hyperglycaemia: bool = False
    hyponatraemia: bool = False
    recovery_day: float = 0.0
    platelets: tuple[float, float] = (0.0, 0.0)
    haemoglobin: float = 0.0
    crs: tuple[float, float, float] | None = None  # onset day, days, severity
    ferritin: tuple[float, float] = (0.0, 0.0)
    fibrinogen: float = 0.0
    creatinine: float = 0.0
    coagulopathy: bool = False
    kidney_injury: bool = False


def pick(rng: random.Random, weights: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weights], weights=[w for _, w in weights])[0]


def checkpoint_profile(rng: random.Random, sex: str) -> Profile:
    return Profile(
        sex=sex,
        car_t=False,
        liver=pick(rng, ((0, 0.85), (1, 0.08), (2, 0.035), (3, 0.03), (4, 0.005))),
        kidney=pick(rng, ((0, 0.90), (1, 0.07), (2, 0.025), (3, 0.005))),
        thyroid=pick(rng, (("normal", 0.89), ("hypo", 0.07), ("hyper", 0.04))),
        hyperglycaemia=rng.random() < 0.10,
        hyponatraemia=rng.random() < 0.04,
    )


def car_t_profile(rng: random.Random, sex: str, infusion_at: datetime) -> Profile:
    return Profile(
        sex=sex,
        car_t=True,
        infusion_at=infusion_at,
        recovery_day=rng.uniform(9, 17),
        platelets=(rng.uniform(90, 190), rng.uniform(15, 80)),
        haemoglobin=rng.uniform(9.0, 11.0),
        crs=(rng.uniform(1, 4), rng.uniform(3, 6), rng.uniform(0.4, 1.0)) if rng.random() < 0.85 else None,
        ferritin=(rng.uniform(300, 1200), rng.uniform(1.5, 4.0)),
        fibrinogen=rng.uniform(280, 420),
        creatinine=rng.uniform(0.6, 1.0),
        coagulopathy=rng.random() < 0.15,
        kidney_injury=rng.random() < 0.15,
        hyponatraemia=rng.random() < 0.20,
    )


# Immune hepatitis by CTCAE grade: ALT and AST ranges, U/L.
LIVER = {0: ((12, 50), (14, 38)), 1: ((60, 160), (45, 115)), 2: ((175, 270), (125, 195)),
         3: ((290, 900), (210, 700)), 4: ((1150, 1800), (850, 1400))}  # fmt: skip
KIDNEY = {0: (0.55, 0.95), 1: (1.05, 1.45), 2: (1.6, 2.8), 3: (3.2, 5.0)}  # x ULN


def crs_level(profile: Profile, day: float) -> float:
    """0 outside cytokine release syndrome, up to its severity at the peak, fading over two days after it."""
    if profile.crs is None:
        return 0.0
    onset, days, severity = profile.crs
    if day < onset:
        return 0.0
    if day < onset + days:
        return severity * (1 - 0.6 * abs((day - onset) / days * 2 - 1))
    return severity * 0.4 * math.exp(-(day - onset - days) / 2)


def checkpoint_values(p: Profile, names: Sequence[str], rng: random.Random, *, history: bool) -> dict[str, float]:
    """Mostly normal; immune-related abnormalities of the simulated period (none in the history draws)."""
    u = rng.uniform
    uln = 1.35 if p.sex == Sex.MALE else 1.04
    out: dict[str, float] = {}
    for name in names:
        if name in ("ALT", "AST"):
            alt, ast = LIVER[0 if history else p.liver]
            out[name] = u(*(alt if name == "ALT" else ast))
        elif name == "TSH":
            thyroid = "normal" if history else p.thyroid
            out[name] = {"normal": u(0.6, 4.0), "hypo": u(6, 40), "hyper": u(0.02, 0.3)}[thyroid]
        elif name == "Creatinine":
            out[name] = uln * u(*KIDNEY[0 if history else p.kidney])
        elif name == "Glucose":
            critical = not history and rng.random() < 0.002
            high = p.hyperglycaemia and not history
            out[name] = u(505, 560) if critical else u(110, 260) if high else u(75, 115)
        elif name == "Potassium":
            out[name] = u(6.3, 6.8) if not history and rng.random() < 0.003 else u(3.6, 4.9)
        elif name == "Sodium":
            out[name] = u(128, 134) if p.hyponatraemia and not history else u(136, 143)
        elif name == "WBC":
            out[name] = u(4.2, 9.5)
        elif name == "Neutrophils (ANC)":
            out[name] = u(2.0, 6.5)
        elif name == "Platelets":
            out[name] = u(160, 350)
        elif name == "Haemoglobin":
            out[name] = u(12.8, 15.5) if p.sex == Sex.MALE else u(11.6, 14.2)
        else:
            out[name] = float(NORMAL_RESULTS[name][0]) * u(0.95, 1.05)
    return out


def car_t_values(p: Profile, names: Sequence[str], day: float, rng: random.Random) -> dict[str, float]:
    """Days -1 to 14 after axicabtagene ciloleucel, after fludarabine/cyclophosphamide lymphodepletion."""
    u = rng.uniform
    crs = crs_level(p, day)
    out: dict[str, float] = {}
    wbc = u(0.6, 2.0) if day < 0 else u(0.05, 0.9) if day < p.recovery_day else None
    if wbc is None:
        wbc = min(1.0 + 0.5 * (day - p.recovery_day) + u(-0.2, 0.3), 6.0)
    recovered = day >= p.recovery_day
    inr = u(0.95, 1.15) + (0.45 * crs if p.coagulopathy else 0.0)
    plt_base, plt_nadir = p.platelets
    ferritin_base, ferritin_peak = p.ferritin
    for name in names:
        if name == "WBC":
            out[name] = wbc
        elif name == "Neutrophils (ANC)":
            out[name] = wbc * (u(0.45, 0.7) if recovered or day < 0 else u(0.2, 0.55))
        elif name == "Platelets":
            out[name] = max(3.0, plt_base - (plt_base - plt_nadir) * min(max((day + 1) / 8, 0), 1) + rng.gauss(0, 6))
        elif name == "Haemoglobin":
            out[name] = max(6.8, p.haemoglobin - 0.1 * max(day, 0) + rng.gauss(0, 0.3))
        elif name == "CRP":
            out[name] = 40 + 200 * crs + u(-10, 10) if crs > 0.05 else u(3, 20)
        elif name == "Ferritin":
            out[name] = ferritin_base * (1 + (ferritin_peak - 1) * crs) * u(0.92, 1.08)
        elif name == "Fibrinogen":
            drop = 0.55 * crs if p.coagulopathy else -0.1 * crs
            out[name] = p.fibrinogen * (1 - drop) * u(0.95, 1.05)
        elif name == "INR":
            out[name] = inr
        elif name == "PT":
            out[name] = 12.0 * inr + u(-0.4, 0.4)
        elif name == "aPTT":
            out[name] = u(27, 36) + (6 * crs if p.coagulopathy else 0.0)
        elif name == "LDH":
            out[name] = u(200, 350) * (1 + 0.5 * crs)
        elif name == "Creatinine":
            out[name] = p.creatinine * (1 + (1.2 * crs if p.kidney_injury else 0.0)) * u(0.95, 1.05)
        elif name == "Sodium":
            out[name] = u(127, 133) if p.hyponatraemia and crs > 0.3 else u(134, 141)
        else:
            out[name] = u(*CAR_T_RANGES[name]) if name in CAR_T_RANGES else float(NORMAL_RESULTS[name][0])
    return out


CAR_T_RANGES = {
    "ALT": (15, 70), "AST": (15, 60), "ALP": (50, 140), "Total bilirubin": (0.3, 1.1), "Glucose": (85, 170),
    "Potassium": (3.3, 4.6), "Calcium": (8.2, 9.4), "Albumin": (2.8, 3.8), "Total protein": (5.4, 6.8),
    "Bicarbonate (CO2)": (21, 28), "Chloride": (98, 107), "BUN": (8, 24), "Uric acid": (2.5, 6.0),
    "Phosphate": (2.0, 3.8), "Magnesium": (1.6, 2.2),
}  # fmt: skip


def as_entered(name: str, value: float) -> tuple[str, str]:
    """The value as the technician types it: the catalogue unit, as many decimals as labflow.demo uses."""
    sample, unit = NORMAL_RESULTS[name]
    places = len(sample.split(".")[1]) if "." in sample else 0
    return f"{max(value, 10**-places):.{places}f}", unit


# ------------------------------------------------------------------------------------------------ the ward


@dataclass
class TeamSetup:
    key: str
    team: CareTeam
    members: dict[str, list[User]]

    def first(self, role: str) -> User:
        return self.members[role][0]


@dataclass
class Ward:
    teams: dict[str, TeamSetup]
    techs: list[User]
    patients: dict[int, Patient]
    team_of: dict[int, str]  # patient id -> team key
    profiles: dict[int, Profile]
    courses: Counter[str] = field(default_factory=Counter)


def make_staff() -> tuple[dict[str, TeamSetup], list[User]]:
    def user(username: str, role: Role) -> User:
        title, _, desk = username.partition(".")
        return make_user(
            username, role, password=PASSWORD, first_name=title.replace("_", " ").title(), last_name=desk.upper()
        )

    teams: dict[str, TeamSetup] = {}
    for key, (name, ward) in TEAMS.items():
        team = CareTeam.objects.create(name=name, ward=ward)
        members: dict[str, list[User]] = {}
        for team_role, group_role, count in ROSTER:
            members[team_role] = []
            for n in range(1, count + 1):
                account = user(f"{team_role.value}.{key.lower()}{n}", group_role)
                CareTeamMembership.objects.create(care_team=team, user=account, role=team_role)
                members[team_role].append(account)
        teams[key] = TeamSetup(key, team, members)
    techs = [user(f"tech.lab{n}", Role.LAB_TECHNICIAN) for n in (1, 2)]
    return teams, techs


def make_patient(number: int, team: CareTeam, rng: random.Random) -> Patient:
    """An adult of 20-80 with a BMI of 19-31 (there is no service for registering patients)."""
    height = Decimal(rng.randint(152, 192))
    bmi = Decimal(str(round(rng.uniform(19, 31), 1)))
    return Patient.objects.create(
        care_team=team,
        mrn=f"AB{100001 + number}",
        sex=(Sex.MALE, Sex.FEMALE)[number % 2],
        given_name=FORENAMES.split()[(number * 5) % 16],
        family_name=SURNAMES.split()[number % 14],
        birth_date=date(1946, 6, 1) + timedelta(days=rng.randrange(60 * 365)),
        height_cm=height,
        weight_kg=(bmi * height * height / 10000).quantize(Decimal("0.1")),
    )


def clinic_time(day: datetime, rng: random.Random) -> datetime:
    """A weekday between 08:00 and 14:00 (doses are given in the day unit; a weekend one moves to Monday)."""
    moment = at_clock(day.date(), rng.randrange(8, 14), rng.choice((0, 15, 30, 45)))
    while moment.weekday() >= 5:
        moment += timedelta(days=1)
    return moment


def build_ward(rng: random.Random, sim_start: datetime) -> Ward:
    """Staff, patients and their courses (each course schedules its monitoring tests)."""
    teams, techs = make_staff()
    ward = Ward(teams=teams, techs=techs, patients={}, team_of={}, profiles={})
    regimens = {r.name: r for r in Regimen.objects.select_related("drug")}
    for n in range(CHECKPOINT_PATIENTS):
        patient = make_patient(n, teams["A"].team, rng)
        name = pick(rng, REGIMENS)
        regimen = regimens[name]
        next_dose = clinic_time(sim_start + timedelta(days=rng.uniform(0, regimen.cycle_days)), rng)
        most = min(MAX_EARLIER_DOSES, regimen.number_of_doses - 1)
        earlier = 0 if rng.random() < NEW_COURSE_SHARE else rng.randint(1, most)
        starts_at = next_dose - timedelta(days=earlier * regimen.cycle_days)
        course_start(
            patient=patient, regimen=regimen, starts_at=starts_at, user=teams["A"].first(CareTeamRole.ONCOLOGIST),
            now=starts_at - timedelta(days=4),
        )  # fmt: skip
        ward.courses[name] += 1
        ward.patients[patient.pk], ward.team_of[patient.pk] = patient, "A"
        ward.profiles[patient.pk] = checkpoint_profile(rng, patient.sex)
    car_t = regimens[CAR_T_REGIMEN]
    for k in range(CAR_T_PATIENTS):
        patient = make_patient(CHECKPOINT_PATIENTS + k, teams["B"].team, rng)
        infusion = CAR_T_FIRST_INFUSION + k * CAR_T_SPACING
        infusion = at_clock(infusion.date(), rng.randrange(10, 14), rng.choice((0, 30)))
        course_start(
            patient=patient, regimen=car_t, starts_at=infusion, user=teams["B"].first(CareTeamRole.ONCOLOGIST),
            now=infusion - timedelta(days=3), chain_of_identity=f"COI-BENCH-{k + 1:04d}",
        )  # fmt: skip
        ward.courses[CAR_T_REGIMEN] += 1
        ward.patients[patient.pk], ward.team_of[patient.pk] = patient, "B"
        ward.profiles[patient.pk] = car_t_profile(rng, patient.sex, infusion)
    return ward


# ------------------------------------------------------------------------------------------------ the simulation


@dataclass
class Draw:
    """A patient's tests due at the same time: one collection."""

    id: int
    patient_id: int
    due_at: datetime
    deadline: datetime
    test_ids: list[int]
    history: bool
    missed: bool = False
    collected_at: datetime | None = None
    redraw_scheduled: bool = False


@dataclass
class Verified:
    """A verified result, as the old rules would have alerted on it."""

    result_id: int
    patient_id: int
    team: str
    analyte: str
    critical: bool
    grade: int
    verified_at: datetime
    called_at: datetime | None = None


@dataclass
class Actionable:
    category: str
    team: str
    patient_id: int
    at: datetime
    reached: bool
    how: str
    detail: str
    result: Verified | None = None

    def settle(self) -> None:
        """A critical value that only repeats a signed-off finding reached the nurses if the lab phoned it in time."""
        if self.how == REPEAT_OF_REVIEWED and self.category == "critical value" and self.result is not None:
            called = self.result.called_at
            self.reached = called is not None and called - self.result.verified_at <= TARGET_CALL
            self.how += ", phoned" if self.reached else ", not phoned in time"


@dataclass
class SimLog:
    verified: list[Verified] = field(default_factory=list)
    actionable: list[Actionable] = field(default_factory=list)
    rejected: list[tuple[str, int, datetime]] = field(default_factory=list)  # team, specimen, when
    satisfied_at: dict[int, datetime] = field(default_factory=dict)  # monitoring test -> result stage ended
    recollected_at: dict[int, datetime] = field(default_factory=dict)  # test whose tube was rejected -> when
    rerouted_at: dict[int, datetime] = field(default_factory=dict)  # alert -> reached the care team
    calls: int = 0
    calls_without_alert: int = 0
    events: Counter[str] = field(default_factory=Counter)
    behaviour: list[tuple[str, datetime]] = field(default_factory=list)  # what happened when (not history)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))


Event = tuple[datetime, int, Callable[..., None], tuple[Any, ...]]
# The events after which an alert may have opened or come into view (raised, worsened, re-notified, rerouted,
# its hold over): the people who answer alerts look then.
OPENS_ALERTS = frozenset({"tick", "verify", "receive"})


class Simulation:
    def __init__(self, ward: Ward, rng: random.Random, start: datetime, end: datetime) -> None:
        self.ward, self.rng, self.start, self.end = ward, rng, start, end
        self.queue: list[Event] = []
        self.seq = itertools.count()
        self.now = start
        self.log = SimLog()
        self.draws: dict[int, Draw] = {}
        self.draw_of_test: dict[int, int] = {}
        self.recollection_of_specimen: dict[int, int] = {}
        self.pending_ack: set[int] = set()
        self.grades: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)  # verified grades
        tests = LabTest.objects.prefetch_related("components")
        self.components = {t.pk: list(t.components.all()) or [t] for t in tests}
        self.catalogue = Catalogue()  # specs and ranges, loaded once (as an import loads them once per file)

    # --- the queue

    def at(self, when: datetime, action: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.queue, (when.replace(second=0, microsecond=0), next(self.seq), action, args))

    def run(self) -> None:
        self.at(self.start, self.tick)
        processed = 0
        while self.queue:
            when, _, action, args = heapq.heappop(self.queue)
            if when >= self.end:
                break
            self.now = when
            began = time.perf_counter()
            action(*args)
            if when >= self.start and action.__name__ in OPENS_ALERTS:
                self.poll_acknowledgements()
            self.log.events[action.__name__] += 1
            self.log.seconds[action.__name__] += time.perf_counter() - began
            processed += 1
            if processed % 5000 == 0:
                progress(f"  {processed:,} events, simulated up to {when:%Y-%m-%d %H:%M}")

    # --- helpers

    def team(self, patient_id: int) -> TeamSetup:
        return self.ward.teams[self.ward.team_of[patient_id]]

    def member(self, patient_id: int, role: str) -> User:
        return self.rng.choice(self.team(patient_id).members[role])

    def uniform(self, bounds: tuple[float, float]) -> timedelta:
        return minutes(self.rng.uniform(*bounds))

    # --- draws

    def add_draws(self) -> None:
        """Every test due before the end, grouped into draws, with when (or whether) it is collected."""
        tests = (
            MonitoringTest.objects.filter(due_at__lt=self.end, status=MonitoringTestStatus.SCHEDULED)
            .order_by("due_at", "patient_id", "pk")
            .values_list("pk", "patient_id", "due_at", "deadline")
        )
        by_draw: dict[tuple[int, datetime], list[tuple[int, datetime]]] = defaultdict(list)
        for pk, patient_id, due_at, deadline in tests:
            by_draw[(patient_id, due_at)].append((pk, deadline))
        for (patient_id, due_at), rows in by_draw.items():
            draw = self.new_draw(patient_id, due_at, max(d for _, d in rows), [pk for pk, _ in rows])
            if draw.history:
                self.at(due_at + minutes(self.rng.uniform(0, 20)), self.collect, draw.id)
                continue
            roll = self.rng.random()
            self.log.behaviour.append(("draws due", due_at))
            if roll < P_MISSED:
                draw.missed = True
                self.log.behaviour.append(("draws missed", due_at))
                self.at(draw.deadline + MISSED_FALLBACK, self.collect, draw.id)
            else:
                self.at(due_at + self.uniform(ON_TIME if roll < P_MISSED + P_ON_TIME else LATE), self.collect, draw.id)

    def new_draw(self, patient_id: int, due_at: datetime, deadline: datetime, test_ids: list[int]) -> Draw:
        draw = Draw(len(self.draws) + 1, patient_id, due_at, deadline, test_ids, history=due_at < self.start)
        self.draws[draw.id] = draw
        for pk in test_ids:
            self.draw_of_test[pk] = draw.id
        return draw

    def collect(self, draw_id: int) -> None:
        draw = self.draws[draw_id]
        tests = list(MonitoringTest.objects.filter(pk__in=draw.test_ids, status__in=AWAITING_COLLECTION))
        if not tests:
            return
        patient = self.ward.patients[draw.patient_id]
        nurse = self.member(patient.pk, CareTeamRole.NURSE)
        specimens = specimens_collect(
            patient=patient, wristband=patient.mrn, monitoring_tests=tests, user=nurse, now=self.now,
            location=self.team(patient.pk).team.ward,
        )  # fmt: skip
        draw.collected_at = self.now
        self.at(self.now + self.uniform(DISPATCH), self.dispatch, [s.pk for s in specimens], nurse, draw.history)

    def dispatch(self, specimen_ids: list[int], nurse: User, history: bool) -> None:
        slow = not history and self.rng.random() < P_SLOW_TRANSIT
        if slow:
            self.log.behaviour.append(("slow transits", self.now))
        arrival = self.now + self.uniform(SLOW_TRANSIT if slow else TRANSIT)
        for specimen in Specimen.objects.filter(pk__in=specimen_ids).order_by("pk"):
            specimen_record_custody(specimen=specimen, kind=CustodyEventKind.IN_TRANSIT, user=nurse, now=self.now)
            self.at(arrival, self.receive, specimen.pk, history)

    def receive(self, specimen_id: int, history: bool) -> None:
        specimen = Specimen.objects.select_related("container").get(pk=specimen_id)
        tech = self.rng.choice(self.ward.techs)
        if not history and self.rng.random() < P_REJECT:
            self.reject(specimen, tech)
            return
        specimen_receive(accession=specimen.accession, condition=SpecimenCondition.ROOM, user=tech, now=self.now)
        benches: dict[str, list[MonitoringTest]] = defaultdict(list)
        for test in specimen.monitoring_tests.select_related("lab_test").order_by("pk"):
            benches[BENCH.get(test.lab_test.name, "chemistry")].append(test)
        for bench, tests in sorted(benches.items()):
            delay = self.uniform(BENCH_MINUTES[bench])
            if not history and self.rng.random() < P_LAB_LATE:
                delay += self.uniform(LAB_LATE)
                self.log.behaviour.append(("late lab batches", self.now))
            if not history:
                self.log.behaviour.append(("lab batches", self.now))
            self.at(self.now + delay, self.enter, specimen.pk, [t.pk for t in tests], history)

    def reject(self, specimen: Specimen, tech: User) -> None:
        reason = RejectionReason.RH if specimen.container.code == "GOLD_SST" else RejectionReason.RC
        carried = list(specimen.monitoring_tests.values_list("pk", flat=True))
        specimen_reject(specimen=specimen, reason=reason, comment="", user=tech, now=self.now)
        team = self.ward.team_of[specimen.patient_id]
        self.log.rejected.append((team, specimen.pk, self.now))
        self.log.behaviour.append(("tubes rejected", self.now))
        for pk in carried:
            self.log.recollected_at[pk] = self.now
        again = list(
            MonitoringTest.objects.filter(recollection_of__in=carried).order_by("pk").values_list("pk", "deadline")
        )
        if again:
            draw = self.new_draw(specimen.patient_id, self.now, max(d for _, d in again), [pk for pk, _ in again])
            draw.missed = True  # redrawn once a nurse has the alert; the redraw resolves the rejection alert
            self.recollection_of_specimen[specimen.pk] = draw.id
            self.at(self.now + timedelta(hours=3), self.collect, draw.id)
        nurse = self.team(specimen.patient_id).first(CareTeamRole.NURSE)
        seen = alert_list(user=nurse, now=self.now + TARGET_FINDING).filter(
            kind=AlertKind.SPECIMEN_REJECTED, subject_id=specimen.pk
        )
        if self.start <= self.now:
            self.log.actionable.append(
                Actionable("rejected tube", team, specimen.patient_id, self.now, seen.exists(), "raised",
                           f"{specimen.container.code} {reason}")
            )  # fmt: skip

    # --- the lab

    def enter(self, specimen_id: int, test_ids: list[int], history: bool) -> None:
        specimen = Specimen.objects.select_related("patient").get(pk=specimen_id)
        profile = self.ward.profiles[specimen.patient_id]
        entries = []
        for test in MonitoringTest.objects.filter(pk__in=test_ids).order_by("pk"):
            analytes = self.components[test.lab_test_id]
            names = [a.name for a in analytes]
            if profile.car_t:
                assert profile.infusion_at is not None
                day = (specimen.collected_at - profile.infusion_at) / timedelta(days=1)
                values = car_t_values(profile, names, day, self.rng)
            else:
                values = checkpoint_values(profile, names, self.rng, history=history)
            for analyte in analytes:
                value, unit = as_entered(analyte.name, values[analyte.name])
                entries.append(ResultEntry(specimen, analyte, value, unit, observed_at=specimen.collected_at))
        enterer = self.rng.choice(self.ward.techs)
        rows = results_enter(entries=entries, user=enterer, now=self.now, catalogue=self.catalogue)
        delay = self.uniform(VERIFY_NIGHT if is_slow(self.now) else VERIFY_DAY)
        self.at(self.now + delay, self.verify, [r.pk for r in rows], enterer)

    def verify(self, result_ids: list[int], enterer: User) -> None:
        verifier = next(t for t in self.ward.techs if t.pk != enterer.pk)
        outcome = results_verify(results=list(Result.objects.filter(pk__in=result_ids)), user=verifier, now=self.now)
        verified = outcome.verified
        specimen_ids = {r.specimen_id for r in verified}
        for pk in MonitoringTest.objects.filter(
            specimens__in=specimen_ids, status=MonitoringTestStatus.SATISFIED
        ).values_list("pk", flat=True):
            self.log.satisfied_at.setdefault(pk, self.now)
        findings = False
        critical_roots: dict[int, list[int]] = defaultdict(list)
        for r in verified:
            grade = r.ctcae_grade if r.ctcae_term and r.ctcae_grade else 0
            critical = r.flag in CRITICAL_FLAGS
            seen = self.grades[(r.patient_id, r.lab_test_id)]
            recent = [g for at, g in seen if at >= self.now - settings.ALERT_FOLD_WINDOW]
            new_grade = grade >= 3 and grade > max(recent, default=0)
            seen.append((self.now, grade))
            findings |= critical or grade >= 3
            team = self.ward.team_of[r.patient_id]
            item = Verified(r.pk, r.patient_id, team, r.lab_test.name, critical, grade, self.now)
            self.log.verified.append(item)
            if critical:
                critical_roots[r.patient_id].append(r.root_id or r.pk)
            if self.now >= self.start:
                if critical:
                    self.check_finding(item, "critical value", CareTeamRole.NURSE, r.root_id or r.pk)
                if new_grade:
                    self.check_finding(item, "new grade >= 3", CareTeamRole.ONCOLOGIST, r.root_id or r.pk)
        for patient_id, roots in critical_roots.items():
            delay = self.uniform(CALL_NIGHT if is_slow(self.now) else CALL_DAY)
            self.at(self.now + delay, self.call, patient_id, roots, verifier)
        if verified:
            self.at(self.review_time(findings), self.review, [r.pk for r in verified], verified[0].patient_id)

    def check_finding(self, item: Verified, category: str, role: str, root: int) -> None:
        """Right after the verification: is the result in an alert the team's `role` sees within the target,
        and (for a new grade) did it raise, worsen or re-notify that alert?"""
        user = self.team(item.patient_id).first(role)
        alert = (
            alert_list(user=user, now=self.now + TARGET_FINDING)
            .filter(patient_id=item.patient_id, members__contains=[root])
            .order_by("-id")
            .first()
        )
        how = "no alert"
        if alert is not None:
            if alert.resolved_at is not None and alert.resolved_at < self.now:
                how = REPEAT_OF_REVIEWED  # counted on the alert someone already dealt with: nobody woken
            elif alert.raised_at == self.now:
                how = "raised"
            elif alert.worsened_at == self.now:
                how = "worsened"
            elif alert.notify_at == self.now:
                how = "re-notified"
            else:
                how = "folded into an open alert"
        news = how in ("raised", "worsened", "re-notified")
        # A critical value in an open alert is in front of the nurses; a repeat of one the oncologist already
        # signed off reaches them by the lab's read-back call (judged when the simulation is over).
        reached = alert is not None and (news or (category == "critical value" and how != REPEAT_OF_REVIEWED))
        detail = f"{item.analyte}{' critical' if item.critical else ''} grade {item.grade}"
        self.log.actionable.append(
            Actionable(category, item.team, item.patient_id, self.now, reached, how, detail, item)
        )

    def review_time(self, findings: bool) -> datetime:
        local = timezone.localtime(self.now)
        if findings:
            if 7 <= local.hour < 22:
                return self.now + self.uniform(REVIEW_FINDINGS)
            day = local.date() + timedelta(days=1 if local.hour >= 22 else 0)
            return at_clock(day, 7, 30) + self.uniform((0, 90))
        day = local.date() + timedelta(days=0 if local.hour < 8 else 1)
        return at_clock(day, 8) + self.uniform((0, 240))

    def call(self, patient_id: int, roots: list[int], tech: User) -> None:
        alert = (
            Alert.objects.filter(patient_id=patient_id, kind=AlertKind.CRITICAL_RESULT, members__overlap=roots)
            .order_by("-id")
            .first()
        )
        for item in self.log.verified[::-1]:
            if item.patient_id == patient_id and item.critical and item.called_at is None:
                item.called_at = self.now
            if item.verified_at < self.now - timedelta(hours=1):
                break
        if alert is None:
            self.log.calls_without_alert += 1
            return
        nurse = self.member(patient_id, CareTeamRole.NURSE)
        critical_call_record(
            alert=alert, user=tech, now=self.now, recipient=nurse.get_full_name(), read_back_confirmed=True
        )
        self.log.calls += 1

    def review(self, result_ids: list[int], patient_id: int) -> None:
        oncologist = self.member(patient_id, CareTeamRole.ONCOLOGIST)
        with contextlib.suppress(ResultConflict):  # nothing left to review
            results_review(results=list(Result.objects.filter(pk__in=result_ids)), user=oncologist, now=self.now)

    # --- the clock and the people who answer alerts

    def tick(self) -> None:
        monitoring_tests_flag_overdue(now=self.now)
        for pk in alerts_reroute_due(now=self.now):
            self.log.rerouted_at[pk] = self.now
        escalated = alerts_escalate_unacknowledged(now=self.now)
        if escalated:
            steps = AlertEscalation.objects.filter(alert_id__in=escalated, escalated_at=self.now).values_list(
                "alert_id", "role", "alert__patient_id"
            )
            for alert_id, role, patient_id in steps:
                user = self.member(patient_id, role)
                self.at(self.now + ack_delay(self.rng, role, self.now), self.acknowledge, alert_id, user, False)
        if self.now + TICK < self.end:
            self.at(self.now + TICK, self.tick)

    def poll_acknowledgements(self) -> None:
        """Open alerts someone sees and nobody is about to answer: a member of the audience will."""
        rows = (
            Alert.objects.filter(status=AlertStatus.OPEN, notify_at__lte=self.now)
            .exclude(audience=AlertAudience.LAB)
            .exclude(pk__in=self.pending_ack)
            .values_list("pk", "audience", "patient_id")
        )
        for pk, audience, patient_id in rows:
            role = CareTeamRole.ONCOLOGIST if audience == AlertAudience.ONCOLOGISTS else CareTeamRole.NURSE
            user = self.member(patient_id, role)
            self.pending_ack.add(pk)
            self.at(self.now + ack_delay(self.rng, role, self.now), self.acknowledge, pk, user, True)

    def acknowledge(self, alert_id: int, user: User, primary: bool) -> None:
        if primary:
            self.pending_ack.discard(alert_id)
        alert = Alert.objects.get(pk=alert_id)
        if alert.status != AlertStatus.OPEN:
            return
        alert_acknowledge(alert=alert, user=user, now=self.now)
        redraws: set[int] = set()
        if alert.kind == AlertKind.COLLECTION_OVERDUE:
            redraws = {self.draw_of_test[pk] for pk in alert.outstanding if pk in self.draw_of_test}
        elif alert.kind == AlertKind.SPECIMEN_REJECTED and alert.subject_id in self.recollection_of_specimen:
            redraws = {self.recollection_of_specimen[alert.subject_id]}
        for draw_id in sorted(redraws):
            draw = self.draws[draw_id]
            if draw.collected_at is None and not draw.redraw_scheduled:
                draw.redraw_scheduled = True
                self.at(self.now + self.uniform(REDRAW_AFTER_ACK), self.collect, draw_id)


# ------------------------------------------------------------------------------------------------ the old rules


@dataclass
class OldAlert:
    team: str
    kind: str
    to_nurses: bool
    raised_at: datetime
    answered_at: datetime | None  # acknowledged or resolved, whichever first

    @property
    def escalated(self) -> bool:
        return self.answered_at is None or self.answered_at - self.raised_at > OLD_ESCALATE_AFTER


def first_of(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def old_rule_alerts(sim: Simulation, seed: int, start: datetime, end: datetime) -> list[OldAlert]:
    """The same week's events as the old rules alerted on them (docstring: "Before")."""
    rng = random.Random(seed + 1)
    team_of = sim.ward.team_of
    raw: list[tuple[datetime, str, int, bool, datetime | None, str]] = []  # raised, kind, patient, nurses, end, role
    tests = MonitoringTest.objects.filter(
        Q(flagged_at__gte=start, flagged_at__lt=end) | Q(result_flagged_at__gte=start, result_flagged_at__lt=end)
    ).values_list("pk", "patient_id", "flagged_at", "result_flagged_at", "collected_at", "cancelled_at")
    for pk, patient_id, flagged, result_flagged, collected, cancelled in tests.order_by("pk"):
        if flagged is not None and start <= flagged < end:
            raw.append((flagged, "collection overdue", patient_id, True, first_of(collected, cancelled), "nurse"))
        if result_flagged is not None and start <= result_flagged < end:
            ended = first_of(sim.log.satisfied_at.get(pk), sim.log.recollected_at.get(pk), cancelled)
            raw.append((result_flagged, "result overdue", patient_id, True, ended, "nurse"))
    reviewed = dict(
        Result.objects.filter(pk__in=[v.result_id for v in sim.log.verified]).values_list("pk", "reviewed_at")
    )
    for v in sim.log.verified:
        if not start <= v.verified_at < end:
            continue
        if v.critical:
            ended = first_of(v.called_at, reviewed.get(v.result_id))
            raw.append((v.verified_at, "critical value", v.patient_id, True, ended, "nurse"))
        if v.grade >= 3:
            raw.append((v.verified_at, "grade >= 3", v.patient_id, False, reviewed.get(v.result_id), "oncologist"))
    for _, specimen_id, at in sim.log.rejected:
        if start <= at < end:
            patient_id = Specimen.objects.values_list("patient_id", flat=True).get(pk=specimen_id)
            raw.append((at, "tube rejected", patient_id, True, None, "nurse"))
    patterns = Alert.objects.filter(kind=AlertKind.LAB_PATTERN, raised_at__gte=start, raised_at__lt=end)
    for raised, patient_id in patterns.values_list("raised_at", "patient_id").order_by("raised_at", "pk"):
        raw.append((raised, "lab pattern", patient_id, False, None, "oncologist"))
    out = []
    for raised, kind, patient_id, to_nurses, ended, role in sorted(raw, key=lambda r: (r[0], r[1], r[2])):
        acknowledged = raised + ack_delay(rng, role, raised)
        out.append(OldAlert(team_of[patient_id], kind, to_nurses, raised, first_of(acknowledged, ended)))
    return out


# ------------------------------------------------------------------------------------------------ figures


@dataclass
class TeamFigures:
    team: str
    nurses: int
    nurses_day: int
    nurses_night: int
    per_nurse_shift: float
    busiest_nurse_shift: int
    oncologists: int
    per_oncologist_day: float
    lab_only: int
    total_to_care_team: int
    escalated_alerts: int
    escalation_steps: int
    escalations_by_role: dict[str, int]
    per_charge_nurse_shift: float
    per_covering_oncologist_day: float
    per_attending_day: float
    by_kind: dict[str, int]


def shift_key(at: datetime) -> tuple[date, str]:
    local = timezone.localtime(at)
    if is_day_shift(local):
        return local.date(), "day"
    return (local.date() - timedelta(days=1) if local.hour < DAY_SHIFT[0] else local.date()), "night"


def before_figures(alerts: Sequence[OldAlert], team: str, oncologists: int) -> TeamFigures:
    mine = [a for a in alerts if a.team == team]
    to_nurses = [a for a in mine if a.to_nurses]
    escalated = [a for a in mine if a.escalated]
    shifts = Counter(shift_key(a.raised_at) for a in to_nurses)
    days = WEEK / timedelta(days=1)
    return TeamFigures(
        team=team,
        nurses=len(to_nurses),
        nurses_day=sum(1 for a in to_nurses if is_day_shift(a.raised_at)),
        nurses_night=sum(1 for a in to_nurses if not is_day_shift(a.raised_at)),
        per_nurse_shift=len(to_nurses) / (WEEK / SHIFT),
        busiest_nurse_shift=max(shifts.values(), default=0),
        oncologists=len(mine),
        per_oncologist_day=(len(mine) + len(escalated)) / days,
        lab_only=0,
        total_to_care_team=len(mine),
        escalated_alerts=len(escalated),
        escalation_steps=len(escalated) * oncologists,
        escalations_by_role={"oncologist (each)": len(escalated)},
        per_charge_nurse_shift=0.0,
        per_covering_oncologist_day=0.0,
        per_attending_day=0.0,
        by_kind=dict(sorted(Counter(a.kind for a in mine).items())),
    )


def after_figures(sim: Simulation, team: TeamSetup, start: datetime, end: datetime) -> tuple[TeamFigures, AlertBurden]:
    burden = alert_burden(care_team=team.team, start=start, end=end)
    shown = Alert.objects.filter(shown_between(start, end), patient__care_team_id=team.team.pk)
    to_nurses = list(shown.filter(audience__in=NURSE_AUDIENCES).values_list("pk", "notify_at"))
    reached = [sim.log.rerouted_at.get(pk, notify_at) for pk, notify_at in to_nurses]
    escalated = (
        AlertEscalation.objects.filter(alert__patient__care_team_id=team.team.pk, escalated_at__gte=start)
        .filter(escalated_at__lt=end)
        .values("alert_id")
        .distinct()
        .count()
    )
    by_role = burden.escalations_by_role
    days = (end - start) / timedelta(days=1)
    shifts = (end - start) / SHIFT
    figures = TeamFigures(
        team=team.key,
        nurses=burden.alerts_to_nurses,
        nurses_day=sum(1 for at in reached if is_day_shift(at)),
        nurses_night=sum(1 for at in reached if not is_day_shift(at)),
        per_nurse_shift=burden.per_nurse_shift,
        busiest_nurse_shift=max(Counter(shift_key(at) for at in reached).values(), default=0),
        oncologists=burden.alerts_to_oncologists,
        per_oncologist_day=burden.per_oncologist_day,
        lab_only=burden.alerts_to_lab,
        total_to_care_team=sum(k.count for k in burden.by_kind_severity) - burden.alerts_to_lab,
        escalated_alerts=escalated,
        escalation_steps=burden.escalations,
        escalations_by_role=dict(by_role),
        per_charge_nurse_shift=by_role.get(CareTeamRole.CHARGE_NURSE, 0) / shifts,
        per_covering_oncologist_day=by_role.get(CareTeamRole.COVERING_ONCOLOGIST, 0) / days,
        per_attending_day=by_role.get(CareTeamRole.ATTENDING, 0) / days,
        by_kind={
            f"{AlertKind(k.kind).label} ({AlertSeverity(k.severity).label.lower()})": k.count
            for k in burden.by_kind_severity
        },
    )
    return figures, burden


def missed_collections(sim: Simulation, start: datetime, end: datetime) -> list[Actionable]:
    """Draws flagged in the week and still uncollected when the hold ended: did a nurse see the alert in time?"""
    flagged: dict[int, datetime] = {}
    rows = MonitoringTest.objects.filter(flagged_at__gte=start, flagged_at__lt=end).values_list("pk", "flagged_at")
    for pk, at in rows:
        draw_id = sim.draw_of_test.get(pk)
        if draw_id is not None and at is not None:
            flagged[draw_id] = min(at, flagged.get(draw_id, at))
    out = []
    for draw_id, at in sorted(flagged.items()):
        draw = sim.draws[draw_id]
        if draw.collected_at is not None and draw.collected_at <= at + HOLD:
            continue  # collected during the hold: no redraw was needed, no alert was shown
        team = sim.ward.team_of[draw.patient_id]
        nurse = sim.ward.teams[team].first(CareTeamRole.NURSE)
        seen = alert_list(user=nurse, now=at + TARGET_MISSED).filter(
            kind=AlertKind.COLLECTION_OVERDUE, members__overlap=draw.test_ids
        )
        if draw.redraw_scheduled:
            how = "redrawn after the alert"
        else:
            how = "drawn without the alert" if draw.collected_at is not None else "the clock stopped first"
        out.append(Actionable("missed collection", team, draw.patient_id, at, seen.exists(), how,
                              f"{len(draw.test_ids)} tests due {draw.due_at:%a %H:%M}"))  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------------ report


def pct_change(before: float, after: float) -> str:
    return f"{(after - before) / before * 100:+.0f} %" if before else "n/a"


def report(data: dict[str, Any]) -> None:
    print("\n# Alert burden: a simulated ward week, old rules vs the rules as built\n")
    for key, value in data["facts"].items():
        print(f"- {key}: {value}")
    rows = (
        ("alerts to the care team", "total_to_care_team", "{:.0f}"),
        ("  to nurses", "nurses", "{:.0f}"),
        ("  per nurse-shift (12 h)", "per_nurse_shift", "{:.2f}"),
        ("    day / night shifts (total)", None, ""),
        ("    busiest single shift", "busiest_nurse_shift", "{:.0f}"),
        ("  to oncologists", "oncologists", "{:.0f}"),
        ("  per oncologist-day (+ escalations before)", "per_oncologist_day", "{:.2f}"),
        ("alerts to the lab only", "lab_only", "{:.0f}"),
        ("alerts escalated", "escalated_alerts", "{:.0f}"),
        ("escalation steps (people reached)", "escalation_steps", "{:.0f}"),
        ("charge nurse, per shift", "per_charge_nurse_shift", "{:.2f}"),
        ("covering oncologist, per day", "per_covering_oncologist_day", "{:.2f}"),
        ("attending, per day", "per_attending_day", "{:.2f}"),
    )
    header = "| | " + " | ".join(f"team {t} before | team {t} after" for t in TEAMS) + " |"
    print("\n" + header)
    print("|---" * (1 + 2 * len(TEAMS)) + "|")
    for label, key, fmt in rows:
        cells = []
        for team in TEAMS:
            for side in ("before", "after"):
                figures = data[side][team]
                if key is None:
                    cells.append(f"{figures['nurses_day']} / {figures['nurses_night']}")
                else:
                    cells.append(fmt.format(figures[key]))
        print(f"| {label} | " + " | ".join(cells) + " |")
    totals = data["totals"]
    print(
        f"\nBoth teams: {totals['before_alerts']} alerts -> {totals['after_alerts']} to the care team "
        f"({pct_change(totals['before_alerts'], totals['after_alerts'])}; plus {totals['after_lab_only']} in the "
        f"lab's queue only); escalated alerts {totals['before_escalated']} -> {totals['after_escalated']} "
        f"({pct_change(totals['before_escalated'], totals['after_escalated'])})."
    )
    for side in ("before", "after"):
        for team in TEAMS:
            kinds = ", ".join(f"{k} {n}" for k, n in data[side][team]["by_kind"].items())
            print(f"- {side}, team {team} by kind: {kinds or 'none'}")
    for team in TEAMS:
        extra = data["after_extra"][team]
        print(
            f"- after, team {team}: {extra['folded_repeats']} repeats folded, {extra['worsened']} alerts worsened, "
            f"{extra['acknowledged']} acknowledged (median {extra['median_minutes_to_acknowledge']} min), "
            f"{extra['resolved_without_action']} resolved without action "
            f"({extra['resolved_without_action_share'] * 100:.0f} %)"
        )
    print("\n## Actionable alerts\n")
    print("| category | team | count | reached in time | lost | how |")
    print("|---|---|---|---|---|---|")
    for row in data["actionable"]:
        print(
            f"| {row['category']} | {row['team']} | {row['count']} | {row['reached']} | {row['lost']} | {row['how']} |"
        )
    for item in data["lost"]:
        print(f"  LOST: {item}")
    print(f"\nactionable alerts lost: {data['lost_total']}")
    print("\n## Targets\n")
    for target in data["targets"]:
        print(f"- {target['what']}: {target['value']:.2f} (target <= {target['limit']:g}): "
              f"{'met' if target['met'] else 'NOT MET'}")  # fmt: skip


def actionable_rows(items: Iterable[Actionable]) -> tuple[list[dict[str, Any]], list[str]]:
    groups: dict[tuple[str, str], list[Actionable]] = defaultdict(list)
    for item in items:
        groups[(item.category, item.team)].append(item)
    rows, lost = [], []
    for (category, team), group in sorted(groups.items()):
        hows = Counter(i.how for i in group)
        rows.append({
            "category": category, "team": team, "count": len(group),
            "reached": sum(1 for i in group if i.reached), "lost": sum(1 for i in group if not i.reached),
            "how": ", ".join(f"{h} {n}" for h, n in sorted(hows.items())),
        })  # fmt: skip
        lost += [
            f"{i.category}, team {i.team}, patient {i.patient_id}, {i.at:%a %H:%M}: {i.detail} ({i.how})"
            for i in group
            if not i.reached
        ]
    return rows, lost


# ------------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    url = os.environ["DATABASE_URL"]
    recreate_database(url)
    progress("database re-created; migrating ...")
    migrate()
    settings.ALERT_OVERDUE_HOLD = HOLD  # the production default (labflow.settings_test makes it 0)
    migrated = time.perf_counter()

    rng = random.Random(args.seed)
    week_end = WEEK_START + WEEK
    sim_start = WEEK_START - WARM_UP
    progress("building the ward (courses schedule their monitoring tests) ...")
    ward = build_ward(rng, sim_start)
    sim = Simulation(ward, rng, sim_start, week_end)
    sim.add_draws()
    built = time.perf_counter()
    history = sum(1 for d in sim.draws.values() if d.history)
    progress(f"{len(sim.draws)} draws ({history} before the simulation: history); simulating ...")
    sim.run()
    simulated = time.perf_counter()

    old = old_rule_alerts(sim, args.seed, WEEK_START, week_end)
    data: dict[str, Any] = {"before": {}, "after": {}, "after_extra": {}}
    for key, setup in ward.teams.items():
        oncologists = len(setup.members[CareTeamRole.ONCOLOGIST])
        data["before"][key] = asdict(before_figures(old, key, oncologists))
        figures, burden = after_figures(sim, setup, WEEK_START, week_end)
        data["after"][key] = asdict(figures)
        data["after_extra"][key] = {
            name: getattr(burden, name)
            for name in ("folded_repeats", "worsened", "acknowledged", "median_minutes_to_acknowledge",
                         "p90_minutes_to_acknowledge", "resolved_without_action", "resolved_without_action_share")
        }  # fmt: skip
    actionable = [a for a in sim.log.actionable if WEEK_START <= a.at < week_end]
    for item in actionable:
        item.settle()
    actionable += missed_collections(sim, WEEK_START, week_end)
    rows, lost = actionable_rows(actionable)
    data["actionable"], data["lost"], data["lost_total"] = rows, lost, len(lost)
    data["totals"] = {
        "before_alerts": sum(data["before"][t]["total_to_care_team"] for t in TEAMS),
        "after_alerts": sum(data["after"][t]["total_to_care_team"] for t in TEAMS),
        "after_lab_only": sum(data["after"][t]["lab_only"] for t in TEAMS),
        "before_escalated": sum(data["before"][t]["escalated_alerts"] for t in TEAMS),
        "after_escalated": sum(data["after"][t]["escalated_alerts"] for t in TEAMS),
        "before_escalation_steps": sum(data["before"][t]["escalation_steps"] for t in TEAMS),
        "after_escalation_steps": sum(data["after"][t]["escalation_steps"] for t in TEAMS),
    }
    targets = []
    b = data["after"]["B"]
    targets.append(("team B nurse, alerts per shift", b["per_nurse_shift"], TARGET_NURSE_PER_SHIFT))
    targets.append(("team B charge nurse, escalations per shift", b["per_charge_nurse_shift"], TARGET_NURSE_PER_SHIFT))
    for team in TEAMS:
        a = data["after"][team]
        targets.append((f"team {team} oncologist, alerts per day", a["per_oncologist_day"], TARGET_ONCOLOGIST_PER_DAY))
        worst = max(a["per_covering_oncologist_day"], a["per_attending_day"])
        targets.append((f"team {team} covering oncologist / attending, escalations per day", worst,
                        TARGET_ONCOLOGIST_PER_DAY))  # fmt: skip
    data["targets"] = [{"what": w, "value": v, "limit": lim, "met": v <= lim} for w, v, lim in targets]
    finished = time.perf_counter()
    data["facts"] = {
        "command": "python benchmarks/alert_burden.py" + (f" --seed {args.seed}" if args.seed != SEED else ""),
        "seed": args.seed,
        "code": git_revision(),
        "week": f"{WEEK_START:%Y-%m-%d %H:%M} to {week_end:%Y-%m-%d %H:%M} UTC (clock from {sim_start:%Y-%m-%d %H:%M})",
        "patients": f"team A {CHECKPOINT_PATIENTS} on checkpoint inhibitors, team B {CAR_T_PATIENTS} CAR-T days 0-14",
        "courses": ", ".join(f"{name} {n}" for name, n in sorted(ward.courses.items())),
        "draws simulated": f"{len(sim.draws) - history} (+{history} history draws before the clock started)",
        "events (whole run: count, seconds)": ", ".join(
            f"{name} {n:,} {sim.log.seconds[name]:.0f} s" for name, n in sorted(sim.log.events.items())
        ),
        "in the week": ", ".join(
            f"{what} {n}"
            for what, n in Counter(w for w, at in sim.log.behaviour if WEEK_START <= at < week_end).items()
        ),
        "results verified (whole run)": f"{len(sim.log.verified):,}; critical calls {sim.log.calls} "
        f"({sim.log.calls_without_alert} found no critical alert)",
        "ALERT_OVERDUE_HOLD": str(settings.ALERT_OVERDUE_HOLD),
        "runtime": f"{finished - started:.0f} s (migrate {migrated - started:.0f} s, build {built - migrated:.0f} s, "
        f"simulation {simulated - built:.0f} s)",
    }
    report(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        progress(f"wrote {args.json}")
    failed = data["lost_total"] > 0 or not all(t["met"] for t in data["targets"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
