"""Every write lands in an append-only trail that the database enforces."""

from __future__ import annotations

from datetime import timedelta

import pghistory.models
import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.utils import timezone

from alerts.models import Alert
from monitoring.services import monitoring_tests_flag_overdue
from tests import factories

pytestmark = pytest.mark.django_db
DB_REFUSALS = (InternalError, IntegrityError, ProgrammingError)


def test_api_write_is_audited_with_who_and_what(api_as, nurse_a, patient_a):
    factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()  # a bulk SQL update: still audited
    api_as(nurse_a).post(f"/api/alerts/{alert_id}/acknowledge/", {"comment": "on it"})

    event_model = Alert.pgh_event_model  # type: ignore[attr-defined]
    events = event_model.objects.filter(pgh_obj_id=alert_id).order_by("pgh_id")
    assert [e.status for e in events] == ["open", "acknowledged"]
    ack = events.last()
    assert ack.acknowledge_comment == "on it"
    assert ack.pgh_context.metadata["user"] == nurse_a.pk
    assert ack.pgh_context.metadata["url"] == f"/api/alerts/{alert_id}/acknowledge/"
    assert ack.pgh_created_at is not None


def test_audit_events_cannot_be_changed_or_deleted(patient_a):
    patient_a.weight_kg = 71
    patient_a.save()
    event_model = type(patient_a).pgh_event_model
    assert event_model.objects.filter(pgh_obj_id=patient_a.pk).count() == 2
    with pytest.raises(DB_REFUSALS), transaction.atomic():
        event_model.objects.filter(pgh_obj_id=patient_a.pk).update(weight_kg=1)
    with pytest.raises(DB_REFUSALS), transaction.atomic():
        event_model.objects.filter(pgh_obj_id=patient_a.pk).delete()
    with pytest.raises(DB_REFUSALS), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {event_model._meta.db_table}")


def test_clinical_rows_cannot_be_deleted(patient_a):
    test = factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    for obj in (Alert.objects.get(pk=alert_id), test, patient_a):
        with pytest.raises(DB_REFUSALS), transaction.atomic():
            type(obj).objects.filter(pk=obj.pk).delete()
        assert type(obj).objects.filter(pk=obj.pk).exists()


def test_events_are_listed_across_models(patient_a):
    assert pghistory.models.Events.objects.references(patient_a).exists()


def test_token_authenticated_write_records_the_user(api, nurse_a, patient_a):
    factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=1), grace=timedelta(0))
    (alert_id,) = monitoring_tests_flag_overdue()
    api.credentials(HTTP_AUTHORIZATION=f"Token {factories.api_token(nurse_a)}")
    assert api.post(f"/api/alerts/{alert_id}/resolve/").status_code == 200
    event = Alert.pgh_event_model.objects.filter(pgh_obj_id=alert_id).latest("pgh_id")  # type: ignore[attr-defined]
    assert event.status == "resolved"
    assert event.pgh_context.metadata["user"] == nurse_a.pk
