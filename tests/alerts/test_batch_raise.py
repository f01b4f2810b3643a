"""A batch raised at once (the sweep's path) holds, folds and announces each alert as one raised alone would."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from alerts import push
from alerts.choices import AlertKind, AlertSeverity, AlertStatus
from alerts.findings import quiet_hours_release
from alerts.models import Alert, TeamAlertPolicy
from alerts.services import AlertCondition, alerts_raise
from patients.models import Patient
from tests import factories


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    local = timezone.get_default_timezone()
    return datetime.combine(timezone.localdate() + timedelta(days=day), time(hour, minute), tzinfo=local)


def _scopes_from_rows(ids: list[int]) -> list[str]:
    rows = Alert.objects.filter(pk__in=ids).values_list("patient__care_team_id", "audience", "kind").distinct()
    return sorted(push._scopes_of(rows))


def test_a_batch_over_three_teams_holds_folds_and_publishes_like_single_raises(
    team_a, team_b, patient_a, patient_b, django_capture_on_commit_callbacks, monkeypatch
):
    team_c = factories.make_team("Team C", "Ward 9C")
    patient_c = factories.make_patient(team_c)
    TeamAlertPolicy.objects.create(care_team=team_a, quiet_hours_start=time(22), quiet_hours_end=time(6))
    TeamAlertPolicy.objects.create(care_team=team_c, quiet_hours_start=time(1), quiet_hours_end=time(3))
    (folded_id,) = alerts_raise(
        kind=AlertKind.RESULT_AMENDED,
        severity=AlertSeverity.MODERATE,
        subject_model=Patient,
        now=_at(-1, 14),
        conditions=[AlertCondition(999001, patient_a.pk, "x", fold_key="k", addendum=" a")],
    )
    Alert.objects.filter(pk=folded_id).update(status=AlertStatus.ACKNOWLEDGED, acknowledged_at=_at(-1, 15))
    before_fold = Alert.objects.get(pk=folded_id)
    published: list[tuple[list[str], list[int]]] = []
    monkeypatch.setattr(push, "publish", lambda scopes, ids: published.append((list(scopes), list(ids))))
    held = 0
    for when in (_at(0, 2, 30), _at(0, 23), _at(0, 9)):
        base = int(when.timestamp()) * 10
        conditions = [
            AlertCondition(base + i, patient.pk, f"s{i}") for i, patient in enumerate((patient_a, patient_b, patient_c))
        ]
        conditions.append(AlertCondition(base + 9, patient_a.pk, "f", fold_key="k", addendum=" b"))
        with django_capture_on_commit_callbacks(execute=True):
            ids = alerts_raise(
                kind=AlertKind.RESULT_AMENDED,
                severity=AlertSeverity.MODERATE,
                subject_model=Patient,
                now=when,
                conditions=conditions,
            )
        assert folded_id in ids
        scopes, published_ids = published[-1]
        assert scopes == _scopes_from_rows(ids) == push.changed_scopes(ids)
        assert published_ids == sorted(set(ids))
        for alert in Alert.objects.filter(pk__in=ids).select_related("patient"):
            if alert.pk == folded_id:  # a fold keeps the alert's hold and its acknowledgement
                assert (alert.notify_at, alert.status) == (before_fold.notify_at, AlertStatus.ACKNOWLEDGED)
                continue
            policy = TeamAlertPolicy.objects.filter(care_team_id=alert.patient.care_team_id).first()
            expected = when
            if policy is not None and policy.quiet_hours_start and policy.quiet_hours_end:
                expected = quiet_hours_release(
                    when, policy.quiet_hours_start, policy.quiet_hours_end, timezone.get_default_timezone()
                )
            assert alert.notify_at == expected
            held += alert.notify_at > when
    assert held == 3  # 02:30 holds Team A's and Team C's alerts, 23:00 Team A's: the holds were exercised
