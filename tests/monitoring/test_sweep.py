"""The overdue sweep (docs/architecture.md §3): boundaries, exactly once, database time, cost when idle."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pghistory
import pghistory.models
import pytest
import time_machine
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.choices import AlertKind, AlertStatus
from alerts.models import Alert
from alerts.services import alert_resolve
from monitoring.choices import MonitoringTestStatus
from monitoring.models import SWEEP_FLAG_COLUMNS, SWEEP_UNCHANGED_COLUMNS, MonitoringTest
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


def test_the_deadline_is_the_grace_in_elapsed_time_across_a_clock_change(patient_a):
    """A test due at 00:30 in New York on the night the clocks go back (01:00-02:00 happens twice) with 2 h grace
    is overdue at 01:30 local standard time: 2 h elapsed, as the database's own check adds it."""
    new_york = ZoneInfo("America/New_York")
    due = datetime(2026, 11, 1, 0, 30, tzinfo=new_york)
    with time_machine.travel(due - timedelta(hours=1), tick=False):
        test = factories.make_test(patient_a, due_at=due, grace=timedelta(hours=2))
    test.refresh_from_db()  # the stored value (UTC): `-` between two New York times would be wall-clock
    assert test.deadline - due == timedelta(hours=2)
    assert test.deadline.astimezone(new_york).strftime("%H:%M %Z") == "01:30 EST"


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


def _add_future_tests(patient, count: int, *, every_second_collected: bool = False) -> None:
    """`count` tests falling due from tomorrow, a minute apart, none of them due yet; with
    `every_second_collected`, every second one is collected and waits for its result instead."""
    future = timezone.now() + timedelta(days=1)

    def collected(i: int) -> bool:
        return every_second_collected and i % 2 == 1

    MonitoringTest.objects.bulk_create(
        MonitoringTest(
            patient=patient,
            lab_test=factories.lab_test(),
            due_at=future + timedelta(minutes=i),
            grace_period=timedelta(minutes=30),
            deadline=future + timedelta(minutes=i + 30),
            created_at=timezone.now(),
            status=MonitoringTestStatus.COLLECTED if collected(i) else MonitoringTestStatus.SCHEDULED,
            collected_at=timezone.now() if collected(i) else None,
            result_deadline=future + timedelta(minutes=i + 30) if collected(i) else None,
        )
        for i in range(count)
    )


def test_nothing_due_sweep_runs_constant_queries(patient_a):
    """The same statements with 10 and 5,000 scheduled tests: one probe (plus its savepoint)."""

    def sweep_queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert monitoring_tests_flag_overdue() == []
        return [query["sql"] for query in captured.captured_queries]

    _add_future_tests(patient_a, 10)
    small = sweep_queries()
    _add_future_tests(patient_a, 4990)
    large = sweep_queries()
    assert len(small) == len(large) <= 6
    assert sum("monitoring_monitoringtest" in sql for sql in large) == 2  # one probe per stage


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


# --- The real flagging statements (issue 13): each assertion below fails when LIMIT, ORDER BY, the row lock,
# the stage's own flagged-at column or the database clock is taken out of the SQL the sweep executes.

STAGES = {
    # stage: (deadline column, flagged-at column, the other stage's flagged-at column, partial index)
    "collection": ("deadline", "flagged_at", "result_flagged_at", "monitoringtest_deadline_idx"),
    "result": ("result_deadline", "result_flagged_at", "flagged_at", "monitoringtest_result_due_idx"),
}


@dataclass
class Executed:
    sql: str
    params: dict[str, Any]
    rowcount: int

    @property
    def stage(self) -> str:
        return "collection" if self.params["from_status"] == MonitoringTestStatus.SCHEDULED else "result"


@contextmanager
def flagging_statements() -> Iterator[list[Executed]]:
    """Every UPDATE of monitoring tests the sweep executes, with its parameters and the rows it changed."""
    executed: list[Executed] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        result = execute(sql, params, many, context)
        if "UPDATE monitoring_monitoringtest" in sql:
            executed.append(Executed(sql, dict(params), context["cursor"].rowcount))
        return result

    with connection.execute_wrapper(wrapper):
        yield executed


def _due_for(stage: str, patient, deadline):
    """A test whose `stage` deadline is `deadline` (in the past: due now)."""
    if stage == "collection":
        return factories.make_test(patient, due_at=deadline, grace=timedelta(0))
    test = factories.make_test(patient, due_at=timezone.now() - timedelta(days=1), grace=timedelta(days=7))
    MonitoringTest.objects.filter(pk=test.pk).update(
        status=MonitoringTestStatus.COLLECTED, collected_at=deadline - timedelta(hours=4), result_deadline=deadline
    )
    return test


@pytest.mark.parametrize("stage", STAGES)
def test_real_statement_locks_orders_and_limits_its_batch(patient_a, stage):
    deadline, _, _, _ = STAGES[stage]
    with flagging_statements() as executed:
        monitoring_tests_flag_overdue(batch_size=500)
    (statement,) = [e for e in executed if e.stage == stage]
    sql = " ".join(statement.sql.split())
    due = sql[sql.index("SELECT") : sql.index(")", sql.index("FOR UPDATE"))]
    assert f"ORDER BY {deadline} LIMIT %(batch)s FOR UPDATE SKIP LOCKED" in due
    assert statement.params["batch"] == 500


@pytest.mark.parametrize("stage", STAGES)
def test_batches_take_the_earliest_deadlines_first_each_at_its_statements_clock(patient_a, stage):
    """Seven due tests written latest deadline first, a batch of 3 and the index scans off: the heap order is
    the reverse of the deadline order, so only ORDER BY + LIMIT give batches [3 earliest, next 3, last]."""
    _, flagged_at, other_flagged_at, _ = STAGES[stage]
    start = timezone.now() - timedelta(hours=1)
    tests = [_due_for(stage, patient_a, start - timedelta(minutes=minute)) for minute in range(7)]
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("SET enable_indexscan = off")
        cursor.execute("SET enable_bitmapscan = off")
    with flagging_statements() as executed:
        monitoring_tests_flag_overdue(batch_size=3)
    assert [e.rowcount for e in executed if e.stage == stage] == [3, 3, 1]

    earliest_first = sorted(MonitoringTest.objects.filter(pk__in=[t.pk for t in tests]), key=lambda t: t.pk)[::-1]
    stamps = [getattr(test, flagged_at) for test in earliest_first]
    assert all(getattr(test, other_flagged_at) is None for test in earliest_first)
    assert stamps[0] == stamps[1] == stamps[2] < stamps[3] == stamps[4] == stamps[5] < stamps[6]


def test_flagged_at_is_the_database_clock_of_each_stage(patient_a):
    """A worker clock a day off must not leak into either stage's flagged-at column, and neither may the
    transaction's start (now()) or the other stage's column."""
    overdue = _due_for("collection", patient_a, timezone.now() - timedelta(minutes=5))
    late_result = _due_for("result", patient_a, timezone.now() - timedelta(minutes=5))
    for skew in (timedelta(days=1), timedelta(days=-1)):
        MonitoringTest.objects.filter(pk=overdue.pk).update(status=MonitoringTestStatus.SCHEDULED, flagged_at=None)
        MonitoringTest.objects.filter(pk=late_result.pk).update(
            status=MonitoringTestStatus.COLLECTED, result_flagged_at=None
        )
        before = _db_now()
        with time_machine.travel(timezone.now() + skew):
            monitoring_tests_flag_overdue()
        after = _db_now()
        overdue.refresh_from_db()
        late_result.refresh_from_db()
        assert overdue.status == MonitoringTestStatus.OVERDUE
        assert late_result.status == MonitoringTestStatus.RESULT_OVERDUE
        assert before <= overdue.flagged_at <= late_result.result_flagged_at <= after
        assert overdue.result_flagged_at is None
        assert late_result.flagged_at is None


def test_flagged_at_is_the_given_time_when_one_is_given(patient_a):
    overdue = _due_for("collection", patient_a, timezone.now() - timedelta(minutes=5))
    late_result = _due_for("result", patient_a, timezone.now() - timedelta(minutes=5))
    now = timezone.now().replace(microsecond=123456)
    monitoring_tests_flag_overdue(now=now)
    overdue.refresh_from_db()
    late_result.refresh_from_db()
    assert (overdue.flagged_at, overdue.result_flagged_at) == (now, None)
    assert (late_result.flagged_at, late_result.result_flagged_at) == (None, now)


def test_nothing_due_plan_of_the_real_statements_is_one_locked_limited_index_probe(patient_a):
    """EXPLAIN of the very statements the sweep ran (captured with their parameters), over 2,000 scheduled and
    2,000 collected tests with fresh statistics: no index setting is forced."""
    _add_future_tests(patient_a, 4000, every_second_collected=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_monitoringtest")
    with flagging_statements() as executed:
        assert monitoring_tests_flag_overdue() == []
    assert sorted(e.stage for e in executed) == sorted(STAGES)
    for statement in executed:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + statement.sql, statement.params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        index = STAGES[statement.stage][3]
        assert f"Index Scan using {index} on monitoring_monitoringtest" in plan
        assert "Seq Scan on monitoring_monitoringtest" not in plan
        assert plan.index("Limit") < plan.index("LockRows") < plan.index(index)


@pytest.mark.django_db(transaction=True)
def test_sweep_skips_a_row_another_transaction_holds(reference_db, team_a):
    """A row locked elsewhere (a nurse recording its collection) is skipped, not waited for, and flagged by the
    next sweep; without SKIP LOCKED, or without the lock, the UPDATE would wait and hit the lock timeout."""
    patient = factories.make_patient(team_a)
    tests = [
        factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=i + 1), grace=timedelta(0))
        for i in range(3)
    ]
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                MonitoringTest.objects.select_for_update().get(pk=tests[1].pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        try:
            first = monitoring_tests_flag_overdue()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        statuses = dict(MonitoringTest.objects.values_list("pk", "status"))
        assert len(first) == 2
        assert statuses[tests[1].pk] == MonitoringTestStatus.SCHEDULED
        assert statuses[tests[0].pk] == statuses[tests[2].pk] == MonitoringTestStatus.OVERDUE
    finally:
        release.set()
        holder.join(timeout=30)
    assert len(monitoring_tests_flag_overdue()) == 1
    assert MonitoringTest.objects.get(pk=tests[1].pk).status == MonitoringTestStatus.OVERDUE


# --- The sweep's own audit path (docs/architecture.md §3 "The sweep's audit").

FlagEvent = MonitoringTest.flag_events.rel.related_model  # type: ignore[attr-defined]
FullEvent = MonitoringTest.events.rel.related_model  # type: ignore[attr-defined]


def _full_events(test: MonitoringTest) -> list[tuple[str, str]]:
    return list(FullEvent.objects.filter(pgh_obj_id=test.pk).order_by("pgh_id").values_list("pgh_label", "status"))


def test_every_flag_is_audited_once_by_its_statement_with_who_and_when(patient_a, nurse_a):
    overdue = _due_for("collection", patient_a, timezone.now() - timedelta(minutes=5))
    late_result = _due_for("result", patient_a, timezone.now() - timedelta(minutes=5))
    full_before = {test.pk: _full_events(test) for test in (overdue, late_result)}
    with pghistory.context(task="monitoring.sweep_overdue_tests"):
        monitoring_tests_flag_overdue()
    for test, label in ((overdue, "overdue"), (late_result, "result_overdue")):
        test.refresh_from_db()
        (event,) = FlagEvent.objects.filter(pgh_obj_id=test.pk)
        assert (event.pgh_label, event.status) == (label, label)
        assert (event.flagged_at, event.result_flagged_at) == (test.flagged_at, test.result_flagged_at)
        assert event.pgh_context.metadata["task"] == "monitoring.sweep_overdue_tests"
        assert event.pgh_created_at is not None
        assert _full_events(test) == full_before[test.pk]  # recorded once, not twice
        assert label in set(pghistory.models.Events.objects.tracks(test).values_list("pgh_label", flat=True))

    # Every later write keeps the full snapshot.
    monitoring_test_record_collection(monitoring_test=overdue, user=nurse_a, now=timezone.now())
    assert _full_events(overdue)[-1] == ("update", MonitoringTestStatus.COLLECTED)


def test_the_sweep_setting_silences_no_other_write(patient_a):
    """Armed by another statement, or with another column changed, or for another transition: full snapshot."""
    test = _due_for("collection", patient_a, timezone.now() - timedelta(minutes=5))
    arm = "SELECT set_config('labflow.sweep', statement_timestamp()::text, true)"
    flip = "UPDATE monitoring_monitoringtest SET status = %s, flagged_at = statement_timestamp(){extra} WHERE id = %s"
    writes = [
        # armed in an earlier statement of the same transaction
        (arm, flip.format(extra=""), MonitoringTestStatus.OVERDUE),
        # armed in the same statement, but another column changes too
        (None, flip.format(extra=", cancel_reason = 'x'") + " AND " + arm.removeprefix("SELECT ") + " <> ''",
         MonitoringTestStatus.OVERDUE),
        # armed in the same statement, but not a sweep transition
        (None, flip.format(extra="") + " AND " + arm.removeprefix("SELECT ") + " <> ''",
         MonitoringTestStatus.CANCELLED),
    ]  # fmt: skip
    for before, statement, status in writes:
        MonitoringTest.objects.filter(pk=test.pk).update(status=MonitoringTestStatus.SCHEDULED, cancel_reason="")
        count = len(_full_events(test))
        with connection.cursor() as cursor:
            if before:
                cursor.execute(before)
            cursor.execute(statement, [status.value, test.pk])
            assert cursor.rowcount == 1
        assert _full_events(test)[count:] == [("update", status)]
    assert not FlagEvent.objects.filter(pgh_obj_id=test.pk).exists()


def test_the_trigger_condition_names_every_column():
    """A new column must be named in one list or the other, or the sweep's skip would hide changes to it."""
    columns = {field.column for field in MonitoringTest._meta.concrete_fields}
    assert set(SWEEP_UNCHANGED_COLUMNS) | set(SWEEP_FLAG_COLUMNS) == columns
    assert not set(SWEEP_UNCHANGED_COLUMNS) & set(SWEEP_FLAG_COLUMNS)
