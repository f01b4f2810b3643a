"""The alert-burden report for team leads: a page and Prometheus metrics (alerts.burden does the counting)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.selectors import AnyUser
from alerts.burden import AlertBurden, alert_burden, burden_period, burden_team, burden_teams
from alerts.choices import AlertKind, AlertSeverity
from core.views import html_view
from patients.choices import CareTeamRole
from patients.models import CareTeam

BIGINT_MAX = 2**63 - 1
METRICS_WINDOW = timedelta(hours=24)
EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class BurdenQuery(forms.Form):
    """GET parameters `team`, `from`, `to` (all optional; `from` is a keyword, hence the renaming)."""

    team = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    from_ = forms.DateField(required=False)
    to = forms.DateField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = self.fields.pop("from_")


def _label(choices: type[AlertKind] | type[AlertSeverity] | type[CareTeamRole], value: Any) -> str:
    try:
        return str(choices(value).label)
    except ValueError:  # a value no longer in the choices still counts
        return str(value)


@dataclass(frozen=True)
class _Table:
    """One table of the page: a heading, column headings, and rows that each start with their row header."""

    key: str  # burden-<key>: the heading's id, which labels the table, and the table's test id
    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[object, ...]]
    empty: str = ""  # said instead of a table without rows


def _summary_rows(report: AlertBurden) -> list[tuple[str, str]]:
    def minutes(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    return [
        ("Alerts to nurses", str(report.alerts_to_nurses)),
        ("Nurse shifts (12 h)", f"{report.nurse_shifts:.1f}"),
        ("Alerts per nurse shift", f"{report.per_nurse_shift:.2f}"),
        ("Alerts to oncologists", str(report.alerts_to_oncologists)),
        ("Oncologist days", f"{report.oncologist_days:.1f}"),
        ("Alerts per oncologist day", f"{report.per_oncologist_day:.2f}"),
        ("Alerts to the laboratory", str(report.alerts_to_lab)),
        ("Escalation steps", str(report.escalations)),
        ("Acknowledged", str(report.acknowledged)),
        ("Median minutes to acknowledge", minutes(report.median_minutes_to_acknowledge)),
        ("90th percentile minutes to acknowledge", minutes(report.p90_minutes_to_acknowledge)),
        ("Resolved by themselves, unacknowledged", str(report.resolved_without_action)),
        ("Share resolved without action", f"{report.resolved_without_action_share:.0%}"),
        ("Repeats folded into an alert", str(report.folded_repeats)),
        ("Alerts that worsened", str(report.worsened)),
    ]


@html_view("GET")
def burden(request: HttpRequest) -> HttpResponse:
    teams = list(burden_teams(user=request.user))
    if not teams:
        raise PermissionDenied("Only team leads may read the alert burden.")
    query = BurdenQuery(request.GET)
    context: dict[str, object] = {
        "teams": teams,
        "team_id": request.GET.get("team", ""),
        "first_day": request.GET.get("from", ""),
        "last_day": request.GET.get("to", ""),
    }

    def refused(errors: dict[str, list[str]]) -> HttpResponse:
        return render(request, "alerts/burden.html", {**context, "errors": errors}, status=400)

    if not query.is_valid():
        return refused({field: [str(m) for m in messages] for field, messages in query.errors.items()})
    team = burden_team(user=request.user, team_id=query.cleaned_data["team"] or teams[0].pk)
    try:
        start, end = burden_period(first_day=query.cleaned_data["from"], last_day=query.cleaned_data["to"])
    except ValidationError as error:
        return refused(error.message_dict)
    report = alert_burden(care_team=team, start=start, end=end)
    context.update(
        team=team,
        team_id=str(team.pk),
        first_day=timezone.localdate(start).isoformat(),
        last_day=timezone.localdate(end - timedelta(microseconds=1)).isoformat() if end > start else "",
        report=report,
        tables=[
            _Table("summary", "Summary", ("Measure", "Value"), _summary_rows(report)),
            _Table(
                "kinds",
                "Alerts shown by kind and severity",
                ("Kind", "Severity", "Alerts"),
                [
                    (_label(AlertKind, row.kind), _label(AlertSeverity, row.severity), row.count)
                    for row in report.by_kind_severity
                ],
                empty="No alerts were shown in this period.",
            ),
            _Table(
                "escalations",
                "Escalation steps by role reached",
                ("Role", "Steps"),
                [(_label(CareTeamRole, role), n) for role, n in report.escalations_by_role.items()],
                empty="No alert was escalated in this period.",
            ),
        ],
    )
    return render(request, "alerts/burden.html", context)


# Prometheus text exposition format 0.0.4.


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


Sample = tuple[dict[str, str], float]


def _family(name: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        text = ",".join(f'{key}="{_escape_label(label)}"' for key, label in labels.items())
        lines.append(f"{name}{{{text}}} {_number(value)}")
    return lines


def burden_exposition(reports: Sequence[tuple[CareTeam, AlertBurden]]) -> str:
    """The reports as gauges, one family after the other (the format wants each family's samples together)."""
    hours = METRICS_WINDOW / timedelta(hours=1)
    lines = [
        *_family(
            "labflow_alerts_per_nurse_shift",
            f"Alerts shown to the team's nurses per 12-hour shift over the last {hours:g} hours.",
            (({"team": team.name}, r.per_nurse_shift) for team, r in reports),
        ),
        *_family(
            "labflow_alerts_per_oncologist_day",
            f"Alerts shown to the team's oncologists per day over the last {hours:g} hours.",
            (({"team": team.name}, r.per_oncologist_day) for team, r in reports),
        ),
        *_family(
            "labflow_alert_escalations",
            f"Escalation steps by the role they reached over the last {hours:g} hours.",
            (
                ({"team": team.name, "role": role.value}, float(r.escalations_by_role.get(role.value, 0)))
                for team, r in reports
                for role in CareTeamRole
            ),
        ),
        *_family(
            "labflow_alerts_shown",
            f"Alerts first shown over the last {hours:g} hours by kind and severity.",
            (
                ({"team": team.name, "kind": row.kind, "severity": str(row.severity)}, float(row.count))
                for team, r in reports
                for row in r.by_kind_severity
            ),
        ),
        *_family(
            "labflow_alert_ack_minutes",
            f"Minutes from showing to acknowledging alerts shown over the last {hours:g} hours (none: no sample).",
            (
                ({"team": team.name, "quantile": quantile}, value)
                for team, r in reports
                for quantile, value in (
                    ("0.5", r.median_minutes_to_acknowledge),
                    ("0.9", r.p90_minutes_to_acknowledge),
                )
                if value is not None
            ),
        ),
        *_family(
            "labflow_alerts_resolved_without_action_ratio",
            f"Share of alerts shown over the last {hours:g} hours that resolved by themselves unacknowledged.",
            (({"team": team.name}, r.resolved_without_action_share) for team, r in reports),
        ),
    ]
    return "\n".join(lines) + "\n"


def _metrics_user(request: HttpRequest) -> AnyUser | None:
    """The session's user, or a scraper's API token (Authorization: Token ...); None if a token is bad."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    user = found[0] if found is not None else None
    return user if isinstance(user, User) else None


@require_GET
def burden_metrics(request: HttpRequest) -> HttpResponse:
    """Gauges for each team the user leads (every team for superusers), over the last 24 hours."""
    user = _metrics_user(request)
    if user is None:
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = "Token"
        return response
    teams = list(burden_teams(user=user))
    if not teams:
        raise PermissionDenied("Only team leads may read the alert burden.")
    now = timezone.now()
    reports = [(team, alert_burden(care_team=team, start=now - METRICS_WINDOW, end=now)) for team in teams]
    response = HttpResponse(burden_exposition(reports), content_type=EXPOSITION_TYPE)
    patch_cache_control(response, private=True, no_store=True)
    return response
