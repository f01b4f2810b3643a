from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, F, QuerySet, When
from django.utils import timezone

from accounts.selectors import AnyUser
from monitoring.choices import AWAITING_COLLECTION, AWAITING_RESULT, MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest, SweepHeartbeat
from patients.models import Patient
from patients.selectors import visible_patient_filter


def monitoring_test_list(*, user: AnyUser) -> QuerySet[MonitoringTest]:
    return MonitoringTest.objects.filter(**visible_patient_filter(user=user)).select_related("patient", "lab_test")


def patient_monitoring_tests(*, user: AnyUser, patient: Patient, limit: int = 100) -> QuerySet[MonitoringTest]:
    """A patient's monitoring tests as a clinician reads them: overdue first, then the open ones soonest due
    first, then the closed ones newest first. A course schedules hundreds: the page shows `limit`, and an
    overdue test is never the one cut off."""
    overdue = (MonitoringTestStatus.OVERDUE, MonitoringTestStatus.RESULT_OVERDUE)
    still_open = (*AWAITING_COLLECTION, *AWAITING_RESULT, MonitoringTestStatus.RECOLLECT)
    rank = Case(When(status__in=overdue, then=0), When(status__in=still_open, then=1), default=2)
    soonest_open = Case(When(status__in=still_open, then=F("due_at")))
    return (
        monitoring_test_list(user=user)
        .filter(patient=patient)
        .order_by(rank, soonest_open.asc(nulls_last=True), F("due_at").desc(), "-pk")[:limit]
    )


# Tests still to collect or to result: a done test shows as its result, a cancelled one not at all.
OPEN_STATUSES = (*AWAITING_COLLECTION, *AWAITING_RESULT, MonitoringTestStatus.RECOLLECT)


def patient_open_tests_between(
    *, user: AnyUser, patient: Patient, start: datetime, end: datetime
) -> QuerySet[MonitoringTest]:
    """A patient's open monitoring tests due in [start, end), soonest first (the timeline)."""
    return (
        monitoring_test_list(user=user)
        .filter(patient=patient, status__in=OPEN_STATUSES, due_at__gte=start, due_at__lt=end)
        .select_related(None)
        .select_related("lab_test")
        .order_by("due_at", "id")
    )


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
