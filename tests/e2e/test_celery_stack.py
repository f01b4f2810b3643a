"""A real Celery worker and beat, over Redis (no eager mode), turn an overdue test into an alert."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alerts.choices import AlertKind, AlertStatus
from alerts.models import Alert
from monitoring.choices import MonitoringTestStatus
from monitoring.models import SweepHeartbeat
from tests import factories
from tests.polling import wait_for

pytestmark = [pytest.mark.celery_stack, pytest.mark.django_db(transaction=True)]


def test_worker_and_beat_flag_an_overdue_test_exactly_once(celery_stack, team_a):
    patient = factories.make_patient(team_a)
    test = factories.make_test(patient, due_at=timezone.now() + timedelta(seconds=2), grace=timedelta(0))
    later = factories.make_test(patient, due_at=timezone.now() + timedelta(hours=1), grace=timedelta(0))

    try:
        wait_for(lambda: Alert.objects.filter(subject_id=test.pk).exists(), timeout=60)
    except AssertionError:
        pytest.fail("no alert; worker log:\n" + Path(celery_stack["worker"]).read_text()[-3000:])
    alert = Alert.objects.get(subject_id=test.pk)
    assert alert.kind == AlertKind.COLLECTION_OVERDUE
    assert alert.status == AlertStatus.OPEN
    assert alert.patient_id == patient.pk
    test.refresh_from_db()
    assert test.status == MonitoringTestStatus.OVERDUE
    assert alert.raised_at >= test.deadline

    time.sleep(3)  # several more beats: still exactly one alert, and the later test untouched
    assert Alert.objects.filter(subject_id=test.pk).count() == 1
    later.refresh_from_db()
    assert later.status == MonitoringTestStatus.SCHEDULED
    assert SweepHeartbeat.objects.get(name="overdue_sweep").last_run_at > alert.raised_at
    assert "monitoring.sweep_overdue_tests" in Path(celery_stack["worker"]).read_text()
