from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, F, Max, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.choices import Role
from accounts.selectors import AnyUser, user_has_role
from alerts.choices import AlertAudience, AlertKind, AlertStatus
from alerts.findings import AUDIENCE_ROLES
from alerts.models import Alert
from patients.models import CareTeamMembership, Patient


def _audience_filter(user: AnyUser) -> Q:
    """Each user gets the alerts meant for them: by their role on the patient's team and the alert's audience
    (AUDIENCE_ROLES), plus those an escalation brought them. Lab staff get the lab's queue and the critical
    values they phone; administrators everything."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    if user.is_superuser:
        return Q()
    reached = Q(Exists(Alert.escalated_to.through.objects.filter(alert_id=OuterRef("pk"), user_id=user.pk)))
    if user_has_role(user, Role.LAB_TECHNICIAN):
        return Q(audience=AlertAudience.LAB) | Q(kind=AlertKind.CRITICAL_RESULT) | reached
    memberships = list(CareTeamMembership.objects.filter(user_id=user.pk).values_list("care_team_id", "role"))
    scope = Q(pk__in=[])
    for audience, roles in AUDIENCE_ROLES.items():
        teams = sorted({team for team, role in memberships if role in roles})
        if teams:
            scope |= Q(audience=audience, patient__care_team_id__in=teams)
    return scope | reached


def shown(now: datetime | None = None) -> Q:
    """Alerts not held, or past their hold; one resolved while held was never shown."""
    now = now or timezone.now()
    held = Q(notify_at__gt=F("raised_at"))
    return ~held | (Q(notify_at__lte=now) & (Q(resolved_at__isnull=True) | Q(resolved_at__gte=F("notify_at"))))


def alert_list(*, user: AnyUser, now: datetime | None = None) -> QuerySet[Alert]:
    """The alerts a user may see: meant for them and shown (not held)."""
    return Alert.objects.filter(_audience_filter(user), shown(now)).select_related("patient", "subject_type")


def alert_list_with_escalations(*, user: AnyUser) -> QuerySet[Alert]:
    """`alert_list` with who each alert reached and each escalation step's recipients (the API shows them)."""
    return alert_list(user=user).prefetch_related("escalated_to", "escalations__recipients")


def alert_inbox(*, user: AnyUser) -> QuerySet[Alert]:
    """Unresolved alerts for the user's care teams, most severe then newest first, with their escalations."""
    return (
        alert_list(user=user)
        .exclude(status=AlertStatus.RESOLVED)
        .select_related(None)  # no subject type per row: the inbox names the patient, not the subject
        .select_related("patient", "acknowledged_by")
        .prefetch_related("escalations__recipients")
        .order_by("-severity", "-raised_at", "-id")
    )


def patient_alerts(*, user: AnyUser, patient: Patient, limit: int = 100) -> QuerySet[Alert]:
    """The alerts about one patient the user may see, with who acknowledged and resolved them."""
    alerts = alert_list(user=user).filter(patient=patient).select_related("acknowledged_by", "resolved_by")
    return alerts[:limit]


def patient_alerts_between(*, user: AnyUser, patient: Patient, start: datetime, end: datetime) -> QuerySet[Alert]:
    """The alerts about one patient the user may see raised in [start, end), and those raised earlier that are not
    resolved yet (still to act on), newest first (the timeline), with their subject's type (an entry links to it)."""
    in_window = Q(raised_at__gte=start, raised_at__lt=end)
    still_open = Q(raised_at__lt=start) & ~Q(status=AlertStatus.RESOLVED)
    return (
        alert_list(user=user)
        .filter(in_window | still_open, patient=patient)
        .select_related(None)
        .select_related("subject_type")
        .order_by("-raised_at", "-id")
    )


def alert_ids_by_subject(*, model: type[Model], subject_ids: Sequence[int]) -> dict[int, int]:
    """The alert of each subject that has one (an overdue test's alert), by the subject's id."""
    subject_type = ContentType.objects.get_for_model(model)
    alerts = Alert.objects.filter(subject_type=subject_type, subject_id__in=subject_ids)
    return dict(alerts.values_list("subject_id", "id"))


def alert_open_count(*, user: AnyUser) -> int:
    return alert_list(user=user).filter(status=AlertStatus.OPEN).count()


def alert_inbox_etag(*, user: AnyUser) -> str:
    """A validator for the inbox: changes whenever an unresolved alert appears, changes or leaves."""
    # Counts per status too: an acknowledgement stamped with the app server's clock may be older than the newest
    # change the sweep stamped with the database clock, but it always moves an alert from open to acknowledged.
    summary = (
        alert_list(user=user)
        .exclude(status=AlertStatus.RESOLVED)
        .aggregate(
            n=Count("id"),
            open=Count("id", filter=Q(status=AlertStatus.OPEN)),
            escalated=Count("id", filter=Q(escalated_at__isnull=False)),
            last=Max("updated_at"),
            top=Max("id"),
        )
    )
    raw = ":".join(str(v) for v in (user.pk, *summary.values()))
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()
