from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.selectors import AnyUser
from monitoring.models import LabTest, MonitoringTest, SweepHeartbeat
from patients.models import Patient
from patients.selectors import visible_patient_filter


def monitoring_test_list(*, user: AnyUser) -> QuerySet[MonitoringTest]:
    return MonitoringTest.objects.filter(**visible_patient_filter(user=user)).select_related("patient", "lab_test")


def patient_monitoring_tests(*, user: AnyUser, patient: Patient, limit: int = 100) -> QuerySet[MonitoringTest]:
    """A patient's monitoring tests, latest due first."""
    return monitoring_test_list(user=user).filter(patient=patient).order_by("-due_at")[:limit]


def lab_test_list() -> QuerySet[LabTest]:
    return LabTest.objects.filter(active=True)


def sweep_is_stale(*, name: str = "overdue_sweep") -> bool:
    """True when the sweep has not run for SWEEP_STALE_SECONDS (three intervals, at least 30 s): alerts may be
    delayed."""
    beat = SweepHeartbeat.objects.filter(name=name).first()
    if beat is None:
        return True
    limit = timedelta(seconds=settings.SWEEP_STALE_SECONDS)
    return timezone.now() - beat.last_run_at > limit
