"""The alert-burden report: counts per shift and day, acknowledgement times, noise, escalations; page, API and
metrics with their permissions."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.choices import Role
from alerts.burden import KindCount, alert_burden
from alerts.burden_views import burden_exposition
from alerts.choices import AlertAudience, AlertKind, AlertSeverity, ResolutionReason
from alerts.models import Alert
from alerts.services import (
    AlertCondition,
    alert_acknowledge,
    alert_resolve,
    alerts_escalate_unacknowledged,
    alerts_raise,
    alerts_resolve_for_subjects,
)
from patients.choices import CareTeamRole
from patients.models import CareTeamMembership, Patient
from tests import factories

pytestmark = pytest.mark.django_db
_subjects = itertools.count(900_000)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def _raise(patient, kind, severity, audience, at, fold_key=""):
    """One alert through the real service; the subject is a made-up id (only its uniqueness matters)."""
    subject = next(_subjects)
    condition = AlertCondition(subject_id=subject, patient_id=patient.pk, summary=kind.label, fold_key=fold_key)
    (alert_id,) = alerts_raise(
        kind=kind, severity=severity, subject_model=Patient, conditions=[condition], now=at, audience=audience
    )
    return Alert.objects.get(pk=alert_id), subject


def _settle(subject, reason, at):
    assert alerts_resolve_for_subjects(subject_model=Patient, subject_ids=[subject], reason=reason, now=at) == 1


def _lead(team, role=CareTeamRole.CHARGE_NURSE, username="charge.a"):
    user = factories.make_user(Role.NURSE, None, username)
    CareTeamMembership.objects.create(care_team=team, user=user, role=role)
    return user


@pytest.fixture
def t0():
    """Local midnight five days ago: the report covers that day and the next (4 nurse shifts, 2 days)."""
    return datetime.combine(timezone.localdate() - timedelta(days=5), time(), tzinfo=timezone.get_current_timezone())


@pytest.fixture
def lead_a(team_a):
    return _lead(team_a)


@pytest.fixture
def scenario(settings, t0, team_a, patient_a, patient_b, nurse_a, oncologist_a):
    """Team A's two days, alert by alert (notify_at decides the period, not raised_at)."""
    settings.ALERT_OVERDUE_HOLD = timedelta(minutes=30)  # moderate overdue alerts are held 30 minutes
    nurses, onc, team, lab = AlertAudience.NURSES, AlertAudience.ONCOLOGISTS, AlertAudience.CARE_TEAM, AlertAudience.LAB
    sev = AlertSeverity

    # Shown and acknowledged after 10, 30 and 50 minutes.
    a1, _ = _raise(patient_a, AlertKind.COLLECTION_OVERDUE, sev.HIGH, nurses, t0 + H, fold_key="draw-1")
    for repeat in (2, 3):  # two repeats fold into it
        assert _raise(patient_a, AlertKind.COLLECTION_OVERDUE, sev.HIGH, nurses, t0 + repeat * H, "draw-1")[0] == a1
    alert_acknowledge(alert=a1, user=nurse_a, now=t0 + H + 10 * M)
    a2, _ = _raise(patient_a, AlertKind.CRITICAL_RESULT, sev.CRITICAL, team, t0 + 2 * H)
    alert_acknowledge(alert=a2, user=oncologist_a, now=t0 + 2 * H + 30 * M)
    a3, s3 = _raise(patient_a, AlertKind.TOXICITY, sev.HIGH, onc, t0 + 3 * H)
    alert_acknowledge(alert=a3, user=oncologist_a, now=t0 + 3 * H + 50 * M)
    _settle(s3, ResolutionReason.RESULT_RETRACTED, t0 + 4 * H)  # ended by itself, but someone had acted
    Alert.objects.filter(pk=a3.pk).update(worsened_at=t0 + 3 * H + 20 * M)

    # Held 30 minutes, resolved by itself after it was shown: noise.
    _, s4 = _raise(patient_a, AlertKind.RESULT_OVERDUE, sev.MODERATE, lab, t0 + 4 * H)
    _settle(s4, ResolutionReason.RESULT_VERIFIED, t0 + 5 * H)
    # Held and resolved within its hold: never shown, counts nowhere.
    a5, s5 = _raise(patient_a, AlertKind.COLLECTION_OVERDUE, sev.MODERATE, nurses, t0 + 6 * H)
    assert a5.notify_at == t0 + 6 * H + 30 * M
    _settle(s5, ResolutionReason.SPECIMEN_COLLECTED, t0 + 6 * H + 10 * M)
    # Held, shown at 7:30, resolved by itself at 8:00: noise.
    _, s6 = _raise(patient_a, AlertKind.COLLECTION_OVERDUE, sev.MODERATE, nurses, t0 + 7 * H)
    _settle(s6, ResolutionReason.SPECIMEN_COLLECTED, t0 + 8 * H)
    # Resolved by a user without acknowledging: that is action.
    a7, _ = _raise(patient_a, AlertKind.SPECIMEN_REJECTED, sev.LOW, nurses, t0 + 9 * H)
    alert_resolve(alert=a7, user=nurse_a, now=t0 + 9 * H + 5 * M)
    # Nobody answers: escalates to the charge nurse and the covering oncologist.
    a8, _ = _raise(patient_a, AlertKind.DOSE_DISCONTINUE, sev.HIGH, onc, t0 + 10 * H)
    # Raised before the period, shown within it (after its hold).
    _raise(patient_a, AlertKind.COLLECTION_OVERDUE, sev.MODERATE, nurses, t0 - 10 * M)

    settings.ALERT_OVERDUE_HOLD = timedelta(0)
    # Outside the period (the end is exclusive) or another team's: counted nowhere in team A's report.
    _raise(patient_a, AlertKind.SPECIMEN_REJECTED, sev.LOW, nurses, t0 - H)
    _raise(patient_a, AlertKind.SPECIMEN_REJECTED, sev.LOW, team, t0 + 48 * H)
    b1, _ = _raise(patient_b, AlertKind.TOXICITY, sev.HIGH, team, t0 + 5 * H)

    assert set(alerts_escalate_unacknowledged(now=t0 + 10 * H + 15 * M)) == {b1.pk, a8.pk}
    assert set(alerts_escalate_unacknowledged(now=t0 + 10 * H + 30 * M)) == {b1.pk, a8.pk}
    assert a8.pk in alerts_escalate_unacknowledged(now=t0 + 49 * H)  # the attending, after the period
    return t0, t0 + 48 * H


def test_burden_counts_what_each_audience_was_shown(team_a, scenario):
    start, end = scenario
    report = alert_burden(care_team=team_a, start=start, end=end)

    assert (report.care_team_id, report.start, report.end) == (team_a.pk, start, end)
    assert (report.nurse_shifts, report.oncologist_days) == (4.0, 2.0)
    # Nurses: a1, a2 (care team), a6, a7 and the one shown after its hold; oncologists: a2, a3, a8; lab: a4.
    assert (report.alerts_to_nurses, report.alerts_to_oncologists, report.alerts_to_lab) == (5, 3, 1)
    assert report.per_nurse_shift == 1.25
    assert report.per_oncologist_day == 1.5
    assert report.by_kind_severity == [
        KindCount("collection_overdue", 3, 1),
        KindCount("collection_overdue", 2, 2),  # not the held alert resolved before it was shown
        KindCount("critical_result", 4, 1),
        KindCount("dose_discontinue", 3, 1),
        KindCount("result_overdue", 2, 1),
        KindCount("specimen_rejected", 1, 1),
        KindCount("toxicity", 3, 1),
    ]
    assert (report.folded_repeats, report.worsened) == (2, 1)


def test_acknowledgement_times_are_percentiles_from_when_it_was_shown(team_a, scenario):
    report = alert_burden(care_team=team_a, start=scenario[0], end=scenario[1])
    assert report.acknowledged == 3
    assert report.median_minutes_to_acknowledge == pytest.approx(30.0)
    assert report.p90_minutes_to_acknowledge == pytest.approx(46.0)  # 30 + 0.8 * (50 - 30), interpolated


def test_only_alerts_that_ended_by_themselves_unacknowledged_are_noise(team_a, scenario):
    report = alert_burden(care_team=team_a, start=scenario[0], end=scenario[1])
    assert report.resolved_without_action == 2  # a4 and a6; not a3 (acknowledged), the manual a7 or the unseen a5
    assert report.resolved_without_action_share == pytest.approx(2 / 8)


def test_escalations_count_the_teams_steps_in_the_period_by_role(team_a, team_b, scenario):
    report = alert_burden(care_team=team_a, start=scenario[0], end=scenario[1])
    assert report.escalations == 2
    assert report.escalations_by_role == {"charge_nurse": 1, "covering_oncologist": 1}
    later = alert_burden(care_team=team_a, start=scenario[1], end=scenario[1] + 24 * H)
    assert later.escalations_by_role == {"attending": 1}
    other = alert_burden(care_team=team_b, start=scenario[0], end=scenario[1])
    assert other.escalations_by_role == {"charge_nurse": 1, "covering_oncologist": 1}
    assert (other.alerts_to_nurses, other.alerts_to_oncologists) == (1, 1)


def test_a_held_alert_counts_only_once_shown_and_only_for_its_audience(settings, t0, team_a, patient_a):
    settings.ALERT_OVERDUE_HOLD = timedelta(minutes=30)
    _raise(patient_a, AlertKind.COLLECTION_OVERDUE, AlertSeverity.MODERATE, AlertAudience.NURSES, t0 + H)
    before_shown = alert_burden(care_team=team_a, start=t0, end=t0 + H + 29 * M)
    assert (before_shown.alerts_to_nurses, before_shown.by_kind_severity) == (0, [])
    shown = alert_burden(care_team=team_a, start=t0, end=t0 + 12 * H)
    assert (shown.alerts_to_nurses, shown.alerts_to_oncologists, shown.per_nurse_shift) == (1, 0, 1.0)
    assert shown.per_oncologist_day == 0.0


def test_an_empty_period_has_no_percentiles_and_no_division_by_zero(t0, team_a):
    empty = alert_burden(care_team=team_a, start=t0, end=t0)
    assert (empty.nurse_shifts, empty.per_nurse_shift, empty.per_oncologist_day) == (0.0, 0.0, 0.0)
    assert (empty.median_minutes_to_acknowledge, empty.p90_minutes_to_acknowledge) == (None, None)
    assert (empty.resolved_without_action_share, empty.folded_repeats, empty.escalations) == (0.0, 0, 0)


def test_the_report_takes_three_queries_however_many_alerts(team_a, scenario, django_assert_num_queries):
    with django_assert_num_queries(3):
        alert_burden(care_team=team_a, start=scenario[0], end=scenario[1])


# The page.


def _period(t0):
    return {"from": t0.date().isoformat(), "to": (t0.date() + timedelta(days=1)).isoformat()}


def test_page_shows_a_lead_their_teams_report(client, team_a, lead_a, scenario, t0):
    client.force_login(lead_a)
    response = client.get("/alerts/burden/", _period(t0))
    assert response.status_code == 200
    assert response.context["report"].alerts_to_oncologists == 3
    html = response.content.decode()
    assert '<th scope="row">Alerts per oncologist day</th><td>1.50</td>' in html
    assert '<th scope="row">Share resolved without action</th><td>25%</td>' in html
    assert '<th scope="row">Dose: permanent discontinuation rule met</th><td>High</td><td>1</td>' in html
    assert '<th scope="row">Covering oncologist</th><td>1</td>' in html
    assert '<label for="burden-from">From</label>' in html
    assert html.count(">Alert burden</a>") == 1  # the navigation link, once


def test_page_defaults_to_the_last_seven_days_of_the_first_team(client, team_a, lead_a):
    client.force_login(lead_a)
    response = client.get("/alerts/burden/")
    assert response.status_code == 200
    report = response.context["report"]
    assert report.care_team_id == team_a.pk
    assert timezone.localdate(report.start) == timezone.localdate() - timedelta(days=6)
    assert report.end <= timezone.now()


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"from": "notadate"}, "from", "Enter a valid date."),
        ({"to": "9999-12-31"}, "to", "Must not be after today."),
        ({"from": "2020-01-02", "to": "2020-01-01"}, "from", "Must not be after the end of the period."),
        ({"from": "2020-01-01", "to": "2021-01-01"}, "from", "at most 366 days"),
        ({"team": "x"}, "team", "Enter a whole number."),
        ({"team": str(2**70)}, "team", "less than or equal to"),
    ],
)
def test_bad_input_is_a_400_page_naming_the_field(client, lead_a, params, field, reason):
    client.force_login(lead_a)
    response = client.get("/alerts/burden/", params)
    assert response.status_code == 400
    html = response.content.decode()
    assert f"<p>{field}: " in html
    assert reason in html
    assert f'aria-describedby="burden-{field}-error"' in html


def test_page_is_for_leads_of_the_team_only(client, team_a, team_b, nurse_a, nurse_b, lead_a):
    onc_b = factories.make_user(Role.ONCOLOGIST, team_b, "onc.b")
    client.force_login(onc_b)
    assert client.get("/alerts/burden/", {"team": team_b.pk}).status_code == 200
    assert client.get("/alerts/burden/", {"team": team_a.pk}).status_code == 404  # not their team
    for user in (nurse_a, nurse_b):  # a nurse leads nothing
        client.force_login(user)
        assert client.get("/alerts/burden/", {"team": team_a.pk}).status_code == 403
        assert ">Alert burden</a>" not in client.get("/alerts/").content.decode()
    nurse_a_lead_b = _lead(team_b, CareTeamRole.ATTENDING, "attending.b")
    CareTeamMembership.objects.create(care_team=team_a, user=nurse_a_lead_b, role=CareTeamRole.NURSE)
    client.force_login(nurse_a_lead_b)
    assert client.get("/alerts/burden/", {"team": team_a.pk}).status_code == 403  # on the team, not its lead
    client.logout()
    assert client.get("/alerts/burden/").status_code == 302


def test_superuser_sees_every_team(client, team_a, team_b):
    admin = User.objects.create_superuser("root", password="a-long-test-password")
    client.force_login(admin)
    assert client.get("/alerts/burden/", {"team": team_b.pk}).context["team"] == team_b
    assert [t.pk for t in client.get("/alerts/burden/").context["teams"]] == [team_a.pk, team_b.pk]


# The API.


def test_api_answers_the_report_as_json(api_as, team_a, oncologist_a, scenario, t0):
    response = api_as(oncologist_a).get("/api/alerts/burden/", {"team": team_a.pk, **_period(t0)})
    assert response.status_code == 200
    body = response.json()
    assert body["care_team_id"] == team_a.pk
    assert (body["nurse_shifts"], body["per_nurse_shift"], body["per_oncologist_day"]) == (4.0, 1.25, 1.5)
    assert body["escalations_by_role"] == {"charge_nurse": 1, "covering_oncologist": 1}
    assert body["by_kind_severity"][0] == {"kind": "collection_overdue", "severity": 3, "count": 1}
    assert body["median_minutes_to_acknowledge"] == pytest.approx(30.0)
    assert body["resolved_without_action_share"] == pytest.approx(0.25)
    assert datetime.fromisoformat(body["start"]) == t0


def test_api_refuses_bad_parameters_with_field_errors(api_as, team_a, oncologist_a):
    client = api_as(oncologist_a)
    no_team = client.get("/api/alerts/burden/", {"from": "2020-01-01"})
    assert (no_team.status_code, set(no_team.json())) == (400, {"team"})
    bad_date = client.get("/api/alerts/burden/", {"team": team_a.pk, "from": "notadate"})
    assert bad_date.status_code == 400
    assert set(bad_date.json()) == {"from"}
    future = client.get("/api/alerts/burden/", {"team": team_a.pk, "to": "9999-12-31"})
    assert (future.status_code, future.json()) == (400, {"to": ["Must not be after today."]})


def test_api_permissions_match_the_page(api_as, api, team_a, team_b, nurse_a, nurse_b):
    assert api_as(nurse_a).get("/api/alerts/burden/", {"team": team_a.pk}).status_code == 403
    assert api_as(nurse_b).get("/api/alerts/burden/", {"team": team_a.pk}).status_code == 404
    assert api.get("/api/alerts/burden/", {"team": team_a.pk}).status_code == 401


# The metrics.


def test_metrics_are_prometheus_gauges_for_the_leads_teams(client, team_a, patient_a, patient_b, lead_a, nurse_a):
    now = timezone.now()
    critical, _ = _raise(
        patient_a, AlertKind.CRITICAL_RESULT, AlertSeverity.CRITICAL, AlertAudience.CARE_TEAM, now - 3 * H
    )
    alert_acknowledge(alert=critical, user=nurse_a, now=now - 3 * H + 12 * M)
    _raise(patient_a, AlertKind.COLLECTION_OVERDUE, AlertSeverity.HIGH, AlertAudience.NURSES, now - 2 * H)
    _raise(patient_b, AlertKind.TOXICITY, AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS, now - 2 * H)
    alerts_escalate_unacknowledged(now=now - 2 * H + 15 * M)
    client.force_login(lead_a)

    response = client.get("/alerts/burden/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = response.content.decode().splitlines()
    for sample in (
        'labflow_alerts_per_nurse_shift{team="Team A"} 1.0',  # 2 alerts over 2 shifts
        'labflow_alerts_per_oncologist_day{team="Team A"} 1.0',
        'labflow_alert_escalations{team="Team A",role="charge_nurse"} 1.0',
        'labflow_alert_escalations{team="Team A",role="attending"} 0.0',
        'labflow_alerts_shown{team="Team A",kind="critical_result",severity="4"} 1.0',
        'labflow_alerts_shown{team="Team A",kind="collection_overdue",severity="3"} 1.0',
        'labflow_alert_ack_minutes{team="Team A",quantile="0.5"} 12.0',
        'labflow_alert_ack_minutes{team="Team A",quantile="0.9"} 12.0',
        'labflow_alerts_resolved_without_action_ratio{team="Team A"} 0.0',
    ):
        assert sample in lines
    assert "# TYPE labflow_alerts_per_nurse_shift gauge" in lines
    assert not any('team="Team B"' in line for line in lines)  # not this lead's team


def test_metrics_need_a_lead_and_accept_an_api_token(client, team_a, nurse_a, lead_a):
    assert client.get("/alerts/burden/metrics").status_code == 401
    client.force_login(nurse_a)
    assert client.get("/alerts/burden/metrics").status_code == 403
    client.logout()
    token = factories.api_token(lead_a)
    scraped = client.get("/alerts/burden/metrics", HTTP_AUTHORIZATION=f"Token {token}")
    assert scraped.status_code == 200
    assert 'labflow_alerts_per_nurse_shift{team="Team A"} 0.0' in scraped.content.decode()
    assert client.get("/alerts/burden/metrics", HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_metric_label_values_are_escaped(t0):
    team = factories.make_team('Ward "7" \\ North\nEast')
    text = burden_exposition([(team, alert_burden(care_team=team, start=t0, end=t0 + 12 * H))])
    assert 'labflow_alerts_per_nurse_shift{team="Ward \\"7\\" \\\\ North\\nEast"} 0.0\n' in text
    assert "labflow_alert_ack_minutes{" not in text  # no acknowledgements: no quantile samples
