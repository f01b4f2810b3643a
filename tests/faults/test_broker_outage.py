"""A broker outage: the real worker and beat ride out a stopped Redis and alerts flow again soon after it returns.

The private Redis comes back empty (no persistence): queues and bindings are gone, the worst case. The wait
bound below is generous on purpose; the delay itself is measured by benchmarks/outages.py (docs/benchmarks.md).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alerts.models import Alert
from monitoring.models import SweepHeartbeat
from tests import factories
from tests.faults.servers import PrivateRedis
from tests.polling import wait_for
from tests.stack import celery_processes

pytestmark = [pytest.mark.faults, pytest.mark.celery_stack, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 6
# The start of one log record, in LOGGING's json or plain format (LOG_FORMAT).
LOG_RECORD = re.compile(r'^(\{"time": "|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ )')


def _heartbeat() -> object:
    return SweepHeartbeat.objects.filter(name="overdue_sweep").values_list("last_run_at", flat=True).first()


def test_alerts_resume_after_redis_returns_and_beat_logs_one_line_per_failed_tick(
    reference_db, tmp_path: Path, private_redis: PrivateRedis, team_a
):
    patient = factories.make_patient(team_a)
    with celery_processes(tmp_path, private_redis.url) as logs:
        wait_for(_heartbeat, timeout=60)  # worker and beat are sweeping
        private_redis.stop()
        stopped = timezone.now()
        test = factories.make_test(patient, due_at=stopped + timedelta(seconds=2), grace=timedelta(0))
        time.sleep(OUTAGE_SECONDS)  # the test falls overdue while nothing can reach the worker
        assert not Alert.objects.filter(subject_id=test.pk).exists()
        assert _heartbeat() < test.deadline  # type: ignore[operator]  # no sweep ran during the outage

        private_redis.start()
        try:
            wait_for(lambda: Alert.objects.filter(subject_id=test.pk).exists(), timeout=15)
        except TimeoutError:
            pytest.fail("no alert after Redis returned; worker log:\n" + Path(logs["worker"]).read_text()[-4000:])
        beat_log = Path(logs["beat"]).read_text()
        worker_log = Path(logs["worker"]).read_text()

    failed = [line for line in beat_log.splitlines() if "not sent, broker unreachable" in line]
    assert failed, beat_log[-3000:]
    assert "Traceback" not in beat_log  # not even inside a json record
    # From the first failed send on, every line is one log record: no traceback, no stack dump.
    after_outage = beat_log[beat_log.index(failed[0]) :].splitlines()
    assert all(LOG_RECORD.match(line) for line in after_outage), after_outage
    # The worker reconnected on its own, at most a second apart, and took the sweep again.
    assert "Trying again in 1.00 second" in worker_log
    assert "Trying again in 2.00 second" not in worker_log
    assert "monitoring.sweep_overdue_tests" in worker_log[worker_log.rindex("Connected to redis://") :]
