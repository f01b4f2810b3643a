from __future__ import annotations

import hashlib

from django.db.models import Count, Max, QuerySet

from accounts.selectors import AnyUser
from alerts.choices import AlertStatus
from alerts.models import Alert
from patients.selectors import visible_patient_filter


def alert_list(*, user: AnyUser) -> QuerySet[Alert]:
    return Alert.objects.filter(**visible_patient_filter(user=user)).select_related("patient", "subject_type")


def alert_inbox(*, user: AnyUser) -> QuerySet[Alert]:
    """Unresolved alerts for the user's care teams, most severe then newest first."""
    return (
        alert_list(user=user)
        .exclude(status=AlertStatus.RESOLVED)
        .select_related("acknowledged_by")
        .order_by("-severity", "-raised_at", "-id")
    )


def alert_open_count(*, user: AnyUser) -> int:
    return Alert.objects.filter(status=AlertStatus.OPEN, **visible_patient_filter(user=user)).count()


def alert_inbox_etag(*, user: AnyUser) -> str:
    """A validator for the inbox: changes whenever an unresolved alert appears, changes or leaves."""
    summary = (
        Alert.objects.filter(**visible_patient_filter(user=user))
        .exclude(status=AlertStatus.RESOLVED)
        .aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    )
    raw = f"{user.pk}:{summary['n']}:{summary['last']}:{summary['top']}"
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()
