"""Shared by the constant-query-count tests (tests/test_list_query_counts.py, tests/test_page_query_counts.py):
a probe that counts a request's queries, and builders that add whole rows (with everything a row shows) to a
ward, so that a list answering with more rows in more queries is an N+1."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from alerts.choices import AlertKind
from alerts.models import Alert
from alerts.services import alerts_escalate_unacknowledged
from monitoring.services import monitoring_tests_flag_overdue
from orders.models import MonitoringRule, Regimen
from orders.services.doses import dose_override
from orders.services.preparations import preparation_record, preparation_start
from patients.choices import CareTeamRole
from patients.models import CareTeam, CareTeamMembership, Patient
from results.services import ResultEntry, critical_call_record, results_enter, results_verify
from specimens.services import specimen_label_printed
from tests import factories
from tests.orders.cell_helpers import PEMBRO, base_time, cleared_preparation, pembro_components, pembro_released
from tests.orders.helpers import first_dose, start_course
from tests.results.helpers import analyte, collected_specimen


@dataclass
class Measured:
    queries: list[str]
    response: Any


def measure(fetch: Callable[[], Any]) -> Measured:
    with CaptureQueriesContext(connection) as captured:
        response = fetch()
    assert response.status_code == 200, response.content[:2000]
    return Measured([q["sql"] for q in captured.captured_queries], response)


def assert_same_cost(few: Measured, many: Measured, rows: Callable[[Any], int]) -> None:
    """`many` shows more rows than `few`, in exactly as many queries."""
    shown_few, shown_many = rows(few.response), rows(many.response)
    assert 0 < shown_few < shown_many, (shown_few, shown_many)
    assert len(many.queries) == len(few.queries), _grown(few.queries, many.queries)


def _grown(few: list[str], many: list[str]) -> str:
    """The statements run more often with more rows, literals blanked, for the failure message."""

    def blank(sql: str) -> str:
        return re.sub(r"\?(, \?)*", "?...", re.sub(r"'[^']*'|\d+", "?", sql))

    counts_few, counts_many = Counter(map(blank, few)), Counter(map(blank, many))
    grown = [(sql, n) for sql, n in counts_many.items() if n != counts_few[sql]]
    return "\n".join(f"{counts_few[sql]} -> {n}: {sql[:150]} ... {sql[-250:]}" for sql, n in grown)


def assert_flat(fetch: Callable[[], Any], grow: Callable[[int], object], rows: Callable[[Any], int]) -> None:
    """The same request after one unit of data and after four: the same number of queries, more rows."""
    grow(1)
    measure(fetch)  # warm-up: content types, permissions, sessions
    few = measure(fetch)
    grow(3)
    assert_same_cost(few, measure(fetch), rows)


_copies = itertools.count(1)


def copy_regimens(name: str, count: int) -> None:
    """`count` copies of the regimen `name`, each with copies of its monitoring rules."""
    for _ in range(count):
        regimen = Regimen.objects.get(name=name)
        rules = list(regimen.monitoring_rules.all())
        regimen.pk, regimen.name = None, f"{name} copy {next(_copies)}"
        regimen.save()
        for rule in rules:
            rule.pk, rule.regimen = None, regimen
        MonitoringRule.objects.bulk_create(rules)


@dataclass
class Ward:
    """One care team with its nurse, oncologist and charge nurse, and two lab technicians."""

    team: CareTeam
    nurse: User
    oncologist: User
    charge_nurse: User
    technicians: tuple[User, User]

    @classmethod
    def build(cls, team: CareTeam, nurse: User, technicians: tuple[User, User]) -> Ward:
        oncologist = factories.make_user(Role.ONCOLOGIST, team, f"onc.counts.{team.pk}")
        charge = factories.make_user(Role.NURSE, None, f"charge.counts.{team.pk}")
        CareTeamMembership.objects.create(care_team=team, user=charge, role=CareTeamRole.CHARGE_NURSE)
        return cls(team, nurse, oncologist, charge, technicians)

    def clinical(self, patients: int) -> list[Patient]:
        """Patients each with an overdue test (a collection alert), a test due soon, a labelled specimen and a
        verified critical potassium (a critical alert, escalated to the charge nurse, then phoned)."""
        made = []
        now = timezone.now()
        for _ in range(patients):
            patient = factories.make_patient(self.team)
            factories.make_test(patient, due_at=now - timedelta(hours=2), grace=timedelta(0))
            factories.make_test(patient, due_at=now + timedelta(minutes=30), name="CRP")
            specimen = collected_specimen(patient, self.nurse, "Potassium")
            specimen_label_printed(specimen=specimen, user=self.nurse, now=now)
            entry = ResultEntry(specimen, analyte("Potassium"), "6.9", "mmol/L")
            rows = results_enter(entries=[entry], user=self.technicians[0], now=now)
            results_verify(results=rows, user=self.technicians[1], now=now)
            made.append(patient)
        monitoring_tests_flag_overdue()
        alerts_escalate_unacknowledged(now=now + timedelta(minutes=20))
        for alert in Alert.objects.filter(kind=AlertKind.CRITICAL_RESULT, patient__in=made):
            critical_call_record(
                alert=alert, user=self.technicians[0], now=now, recipient="Nurse on duty", read_back_confirmed=True
            )
        return made

    def awaiting(self, patients: int) -> None:
        """Patients each with a verified potassium (the previous value) and a new specimen awaiting one."""
        for _ in range(patients):
            patient = factories.make_patient(self.team)
            earlier = collected_specimen(patient, self.nurse, "Potassium")
            rows = results_enter(entries=[ResultEntry(earlier, analyte("Potassium"), "4.3", "mmol/L")],
                                 user=self.technicians[0], now=timezone.now())  # fmt: skip
            results_verify(results=rows, user=self.technicians[1], now=timezone.now())
            collected_specimen(patient, self.nurse, "Potassium")

    def unverified(self, patients: int) -> None:
        """Patients each with a potassium entered by the first technician, not verified yet."""
        for _ in range(patients):
            specimen = collected_specimen(factories.make_patient(self.team), self.nurse, "Potassium")
            entry = ResultEntry(specimen, analyte("Potassium"), "4.1", "mmol/L")
            results_enter(entries=[entry], user=self.technicians[0], now=timezone.now())

    def orders(self, units: int) -> None:
        """Per unit, three patients with a dose on today's worklist: one released to the ward, one awaiting
        verification (prepared by the first technician), one pending its labs and overridden."""
        techs = self.technicians
        for _ in range(units):
            released = cleared_preparation(
                factories.make_patient(self.team), self.oncologist, self.nurse, techs, PEMBRO
            )
            pembro_released(released, techs, base_time())
            prep = cleared_preparation(factories.make_patient(self.team), self.oncologist, self.nurse, techs, PEMBRO)
            t0 = base_time()
            preparation_start(preparation=prep, user=techs[0], now=t0)
            preparation_record(
                preparation=prep, components=pembro_components(t0.date() + timedelta(days=365)),
                category="category_1", storage="room", user=techs[0], now=t0 + timedelta(hours=1),
            )  # fmt: skip
            course = start_course(
                factories.make_patient(self.team), self.oncologist, "Nivolumab 240 mg q2w", in_hours=8
            )
            dose_override(
                dose=first_dose(course), user=self.oncologist, now=timezone.now(), reason="Labs drawn outside"
            )
