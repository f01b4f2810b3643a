from __future__ import annotations

import hashlib

from django.db.models import Count, Max, Q, QuerySet

from accounts.choices import Role
from accounts.selectors import AnyUser, user_has_role, user_sees_all_patients
from alerts.choices import AlertAudience, AlertStatus
from alerts.models import Alert
from patients.selectors import visible_patient_filter


def _audience_filter(user: AnyUser) -> dict[str, object]:
    """Each role gets its alerts: nurses the care team's, oncologists also theirs (grade >= 3 toxicity),
    lab staff every alert (including the lab's own, e.g. an expired preparation)."""
    if user_sees_all_patients(user):
        return {}
    audiences = [AlertAudience.CARE_TEAM]
    if user_has_role(user, Role.ONCOLOGIST):
        audiences.append(AlertAudience.ONCOLOGISTS)
    return {"audience__in": audiences}


def alert_list(*, user: AnyUser) -> QuerySet[Alert]:
    return Alert.objects.filter(**visible_patient_filter(user=user), **_audience_filter(user)).select_related(
        "patient", "subject_type"
    )


def alert_inbox(*, user: AnyUser) -> QuerySet[Alert]:
    """Unresolved alerts for the user's care teams, most severe then newest first."""
    return (
        alert_list(user=user)
        .exclude(status=AlertStatus.RESOLVED)
        .select_related("acknowledged_by")
        .order_by("-severity", "-raised_at", "-id")
    )


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
