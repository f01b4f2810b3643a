"""The overdue sweep (docs/architecture.md §3): boundaries, exactly once, database time, cost when idle."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.choices import AlertKind, AlertStatus
from alerts.models import Alert
from alerts.services import alert_resolve
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_test_record_collection, monitoring_tests_flag_overdue
from tests import factories

pytestmark = pytest.mark.django_db


def _db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("offset", "flagged"),
    [(timedelta(seconds=-1), False), (timedelta(0), True), (timedelta(seconds=1), True)],
    ids=["one-second-before", "exactly-at-deadline", "one-second-after"],
)
def test_boundary_around_deadline(patient_a, offset, flagged):
    due = timezone.now().replace(microsecond=0) + timedelta(hours=2)
    test = factories.make_test(patient_a, due_at=due, grace=timedelta(minutes=30))
    deadline = due + timedelta(minutes=30)
    assert test.deadline == deadline

    with time_machine.travel(deadline + offset, tick=False):
        raised = monitoring_tests_flag_overdue(now=timezone.now())

    test.refresh_from_db()
    assert (len(raised) == 1) is flagged
    assert test.status == (MonitoringTestStatus.OVERDUE if flagged else MonitoringTestStatus.SCHEDULED)
    assert Alert.objects.filter(subject_id=test.pk, kind=AlertKind.COLLECTION_OVERDUE).count() == int(flagged)


def test_overdue_alert_names_patient_and_test(patient_a):
    test = factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    alert = Alert.objects.get(pk=alert_id)
    assert alert.patient == patient_a
    assert alert.subject == test
    assert alert.status == AlertStatus.OPEN
    assert alert.summary == "Collection overdue: TSH"


def test_sweep_uses_database_clock_not_worker_clock(patient_a):
    """A worker whose clock runs a day fast must not flag a test early (nor a slow one late)."""
    db_now = _db_now()
    not_yet = factories.make_test(patient_a, due_at=db_now + timedelta(hours=1), grace=timedelta(0))
    past = factories.make_test(patient_a, due_at=db_now - timedelta(seconds=1), grace=timedelta(0))
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        monitoring_tests_flag_overdue()
    with time_machine.travel(timezone.now() - timedelta(days=1)):
        monitoring_tests_flag_overdue()
    not_yet.refresh_from_db()
    past.refresh_from_db()
    assert not_yet.status == MonitoringTestStatus.SCHEDULED
    assert past.status == MonitoringTestStatus.OVERDUE


def test_sweep_is_level_triggered_and_idempotent(patient_a):
    """Tests that went overdue while no sweep ran are all flagged by the next one, once."""
    for hours in (1, 5, 48):
        factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=hours), grace=timedelta(0))
    assert len(monitoring_tests_flag_overdue()) == 3
    assert monitoring_tests_flag_overdue() == []
    assert Alert.objects.count() == 3


def test_sweep_works_through_more_than_one_batch(patient_a):
    for minutes in range(7):
        factories.make_test(patient_a, due_at=timezone.now() - timedelta(minutes=minutes + 1), grace=timedelta(0))
    assert len(monitoring_tests_flag_overdue(batch_size=3)) == 7
    assert not MonitoringTest.objects.filter(status=MonitoringTestStatus.SCHEDULED).exists()


def test_resolved_alert_is_never_raised_again(patient_a, nurse_a):
    test = factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    alert_resolve(alert=Alert.objects.get(pk=alert_id), user=nurse_a, now=timezone.now())
    # Even if the test is put back to scheduled (a bug, a manual fix, a replayed message) ...
    MonitoringTest.objects.filter(pk=test.pk).update(status=MonitoringTestStatus.SCHEDULED)
    assert monitoring_tests_flag_overdue() == []
    assert Alert.objects.filter(subject_id=test.pk).count() == 1
    assert Alert.objects.get(pk=alert_id).status == AlertStatus.RESOLVED


def test_satisfied_and_cancelled_tests_are_never_flagged(patient_a, nurse_a):
    test = factories.make_test(patient_a, due_at=timezone.now() + timedelta(minutes=5), grace=timedelta(0))
    monitoring_test_record_collection(monitoring_test=test, user=nurse_a, now=timezone.now())
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert monitoring_tests_flag_overdue(now=timezone.now()) == []


def test_nothing_due_sweep_runs_constant_queries(patient_a):
    """The same statements with 10 and 5,000 scheduled tests: one probe (plus its savepoint)."""

    def add_future_tests(count: int) -> None:
        future = timezone.now() + timedelta(days=1)
        MonitoringTest.objects.bulk_create(
            MonitoringTest(
                patient=patient_a,
                lab_test=factories.lab_test(),
                due_at=future + timedelta(minutes=i),
                grace_period=timedelta(minutes=30),
                deadline=future + timedelta(minutes=i + 30),
                created_at=timezone.now(),
            )
            for i in range(count)
        )

    def sweep_queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert monitoring_tests_flag_overdue() == []
        return [query["sql"] for query in captured.captured_queries]

    add_future_tests(10)
    small = sweep_queries()
    add_future_tests(4990)
    large = sweep_queries()
    assert len(small) == len(large) <= 6
    assert sum("monitoring_monitoringtest" in sql for sql in large) == 2  # one probe per stage


def test_nothing_due_sweep_is_one_probe_of_the_partial_index(patient_a):
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM monitoring_monitoringtest WHERE status = 'scheduled' "
            "AND deadline <= statement_timestamp() ORDER BY deadline LIMIT 10000"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "monitoringtest_deadline_idx" in plan


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_raise_one_alert_per_test(reference_db, team_a):
    patients = [factories.make_patient(team_a) for _ in range(5)]
    tests = [
        factories.make_test(patients[i % 5], due_at=timezone.now() - timedelta(minutes=i + 1), grace=timedelta(0))
        for i in range(300)
    ]
    barrier = threading.Barrier(2)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(monitoring_tests_flag_overdue(batch_size=50))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    raised = results[0] + results[1]
    assert len(raised) == len(set(raised)) == len(tests)
    assert Alert.objects.count() == len(tests)
    assert not MonitoringTest.objects.filter(status=MonitoringTestStatus.SCHEDULED).exists()
