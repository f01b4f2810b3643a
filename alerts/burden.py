"""The alert-burden report: how many alerts a team's nurses and oncologists got, how fast they answered and how
many were noise (the issue "Alerts that matter"). Pure reads, a few aggregate queries per team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, FloatField, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from accounts.selectors import AnyUser
from alerts.choices import AlertAudience, ResolutionReason
from alerts.findings import AUDIENCE_ROLES
from alerts.models import Alert, AlertEscalation
from patients.choices import CareTeamRole
from patients.models import CareTeam, CareTeamMembership
from patients.selectors import care_team_list

NURSE_SHIFT = timedelta(hours=12)
DEFAULT_DAYS = 7
MAX_DAYS = 366
ONCOLOGIST_DAY = timedelta(hours=24)

# Who leads a team and may read its report: the escalation ladder's roles and the team's oncologists.
LEAD_ROLES = frozenset(
    {CareTeamRole.CHARGE_NURSE, CareTeamRole.ATTENDING, CareTeamRole.COVERING_ONCOLOGIST, CareTeamRole.ONCOLOGIST}
)

# Resolutions nobody acted on: the condition ended by itself (a user resolving or reviewing is action).
AUTOMATIC_REASONS = frozenset(ResolutionReason) - {ResolutionReason.MANUAL, ResolutionReason.RESULT_REVIEWED}


@dataclass(frozen=True)
class KindCount:
    kind: str
    severity: int
    count: int


@dataclass(frozen=True)
class AlertBurden:
    care_team_id: int
    start: datetime
    end: datetime
    nurse_shifts: float
    oncologist_days: float
    alerts_to_nurses: int
    alerts_to_oncologists: int
    alerts_to_lab: int
    per_nurse_shift: float
    per_oncologist_day: float
    escalations: int
    escalations_by_role: dict[str, int]
    by_kind_severity: list[KindCount]
    acknowledged: int
    median_minutes_to_acknowledge: float | None
    p90_minutes_to_acknowledge: float | None
    resolved_without_action: int
    resolved_without_action_share: float
    folded_repeats: int
    worsened: int


class _PercentileMinutes(Aggregate):
    """percentile_cont over a duration, in minutes (PostgreSQL ordered-set aggregate)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM %(expressions)s) / 60.0)"
    output_field = FloatField()

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        # A float from this module, never user input: safe to inline.
        super().__init__(expression, fraction=float(fraction), **extra)


def _audience_including(role: CareTeamRole) -> Q:
    return Q(audience__in=sorted(a.value for a, roles in AUDIENCE_ROLES.items() if role in roles))


def shown_between(start: datetime, end: datetime) -> Q:
    """First shown in [start, end): one resolved while held (before notify_at) was never shown."""
    return Q(notify_at__gte=start, notify_at__lt=end) & (
        Q(resolved_at__isnull=True) | Q(resolved_at__gte=F("notify_at"))
    )


def _ratio(count: int, per: float) -> float:
    return count / per if per > 0 else 0.0


def alert_burden(*, care_team: CareTeam, start: datetime, end: datetime) -> AlertBurden:
    """The alert burden of `care_team`'s patients in [start, end): three aggregate queries."""
    alerts = Alert.objects.filter(shown_between(start, end), patient__care_team_id=care_team.pk)
    # Acknowledged after it was shown: a repeat that re-notifies an alert restarts its clock (notify_at).
    acked = Q(acknowledged_at__isnull=False, acknowledged_at__gte=F("notify_at"))
    wait = ExpressionWrapper(F("acknowledged_at") - F("notify_at"), output_field=DurationField())
    totals = alerts.aggregate(
        shown=Count("pk"),
        nurses=Count("pk", filter=_audience_including(CareTeamRole.NURSE)),
        oncologists=Count("pk", filter=_audience_including(CareTeamRole.ONCOLOGIST)),
        lab=Count("pk", filter=Q(audience=AlertAudience.LAB)),
        acknowledged=Count("pk", filter=acked),
        median=_PercentileMinutes(wait, fraction=0.5, filter=acked),
        p90=_PercentileMinutes(wait, fraction=0.9, filter=acked),
        unattended=Count(
            "pk", filter=Q(resolution_reason__in=sorted(r.value for r in AUTOMATIC_REASONS), acknowledged_at=None)
        ),
        repeats=Sum(F("occurrences") - 1),
        worsened=Count("pk", filter=Q(worsened_at__isnull=False)),
    )
    kinds = [
        KindCount(kind=row["kind"], severity=row["severity"], count=row["n"])
        for row in alerts.order_by().values("kind", "severity").annotate(n=Count("pk")).order_by("kind", "-severity")
    ]
    by_role = dict(
        AlertEscalation.objects.filter(
            alert__patient__care_team_id=care_team.pk, escalated_at__gte=start, escalated_at__lt=end
        )
        .order_by()
        .values("role")
        .annotate(n=Count("pk"))
        .order_by("role")
        .values_list("role", "n")
    )
    period = max(end - start, timedelta(0))
    shifts = period / NURSE_SHIFT
    days = period / ONCOLOGIST_DAY
    shown: int = totals["shown"]
    unattended: int = totals["unattended"]
    return AlertBurden(
        care_team_id=care_team.pk,
        start=start,
        end=end,
        nurse_shifts=shifts,
        oncologist_days=days,
        alerts_to_nurses=totals["nurses"],
        alerts_to_oncologists=totals["oncologists"],
        alerts_to_lab=totals["lab"],
        per_nurse_shift=_ratio(totals["nurses"], shifts),
        per_oncologist_day=_ratio(totals["oncologists"], days),
        escalations=sum(by_role.values()),
        escalations_by_role=by_role,
        by_kind_severity=kinds,
        acknowledged=totals["acknowledged"],
        median_minutes_to_acknowledge=totals["median"],
        p90_minutes_to_acknowledge=totals["p90"],
        resolved_without_action=unattended,
        resolved_without_action_share=_ratio(unattended, shown),
        folded_repeats=totals["repeats"] or 0,
        worsened=totals["worsened"],
    )


def burden_teams(*, user: AnyUser) -> QuerySet[CareTeam]:
    """The teams whose burden report the user may read: all for superusers, else those they lead."""
    if not user.is_authenticated or not user.is_active:
        return CareTeam.objects.none()
    if user.is_superuser:
        return CareTeam.objects.all()
    led = CareTeamMembership.objects.filter(user_id=user.pk, role__in=sorted(r.value for r in LEAD_ROLES))
    return CareTeam.objects.filter(pk__in=led.values("care_team_id"))


def user_sees_burden(*, user: AnyUser) -> bool:
    return burden_teams(user=user).exists()


def burden_team(*, user: AnyUser, team_id: int) -> CareTeam:
    """The team whose report the user asked for: 404 for a team they cannot see at all (as everywhere else),
    403 for one they see but do not lead."""
    team = burden_teams(user=user).filter(pk=team_id).first()
    if team is not None:
        return team
    if care_team_list(user=user).filter(pk=team_id).exists():
        raise PermissionDenied("Only the team's leads may read its alert burden.")
    raise Http404("No such care team.")


def burden_period(
    *, first_day: date | None, last_day: date | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) for the local days first_day..last_day (default: the last DEFAULT_DAYS days up to today);
    today's part ends now, so per-shift figures count only time that passed. Field errors name `from`/`to`."""
    now = now or timezone.now()
    zone = timezone.get_current_timezone()
    today = timezone.localdate(now, zone)
    last_day = last_day or today
    first_day = first_day or last_day - timedelta(days=DEFAULT_DAYS - 1)
    if last_day > today:
        raise ValidationError({"to": "Must not be after today."})
    if first_day > last_day:
        raise ValidationError({"from": "Must not be after the end of the period."})
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ValidationError({"from": f"The period may be at most {MAX_DAYS} days."})
    start = datetime.combine(first_day, time(), tzinfo=zone)
    end = min(datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone), now)
    return start, end
