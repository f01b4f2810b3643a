from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.selectors import AnyUser
from monitoring.models import LabTest, MonitoringTest, SweepHeartbeat
from patients.selectors import visible_patient_filter


def monitoring_test_list(*, user: AnyUser) -> QuerySet[MonitoringTest]:
    return MonitoringTest.objects.filter(**visible_patient_filter(user=user)).select_related("patient", "lab_test")


def lab_test_list() -> QuerySet[LabTest]:
    return LabTest.objects.filter(active=True)


def sweep_is_stale(*, name: str = "overdue_sweep") -> bool:
    """True when the sweep has not run for three intervals: alerts may be delayed."""
    beat = SweepHeartbeat.objects.filter(name=name).first()
    if beat is None:
        return True
    limit = timedelta(seconds=3 * settings.SWEEP_INTERVAL_SECONDS)
    return timezone.now() - beat.last_run_at > limit
