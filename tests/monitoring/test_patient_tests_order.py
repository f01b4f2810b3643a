"""The patient page's monitoring tests: overdue first, open ones soonest first, closed ones newest first; the
100-row cap never hides an overdue test behind a course's far-future schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MonitoringTest
from monitoring.selectors import patient_monitoring_tests
from monitoring.services import monitoring_tests_flag_overdue
from tests import factories

pytestmark = pytest.mark.django_db


def test_overdue_first_then_open_soonest_then_closed_newest(patient_a, nurse_a):
    now = timezone.now()
    far = [factories.make_test(patient_a, due_at=now + timedelta(days=d)) for d in range(1, 121)]  # > 100 rows
    soon = factories.make_test(patient_a, due_at=now + timedelta(hours=2), name="CRP")
    late = factories.make_test(patient_a, due_at=now - timedelta(hours=3), grace=timedelta(0), name="Potassium")
    monitoring_tests_flag_overdue()
    old = factories.make_test(patient_a, due_at=now - timedelta(days=30), grace=timedelta(0), name="Sodium")
    newer = factories.make_test(patient_a, due_at=now - timedelta(days=10), grace=timedelta(0), name="Glucose")
    MonitoringTest.objects.filter(pk__in=[old.pk, newer.pk]).update(status="satisfied")

    shown = list(patient_monitoring_tests(user=nurse_a, patient=patient_a))
    assert len(shown) == 100
    assert shown[0].pk == late.pk
    assert shown[0].status == "overdue"
    assert shown[1].pk == soon.pk
    assert [t.pk for t in shown[2:5]] == [t.pk for t in far[:3]]
    everything = list(patient_monitoring_tests(user=nurse_a, patient=patient_a, limit=200))
    assert [t.pk for t in everything[-2:]] == [newer.pk, old.pk]
