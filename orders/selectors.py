from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet

from accounts.selectors import AnyUser
from orders.choices import DoseStatus, PreparationStatus
from orders.gate import Gate, dose_gates
from orders.models import Dose, IdentityCheck, Preparation, TreatmentCourse
from patients.selectors import visible_patient_filter

LIVE = [s for s in PreparationStatus if s not in (PreparationStatus.EXPIRED, PreparationStatus.WASTED)]


def course_list(*, user: AnyUser) -> QuerySet[TreatmentCourse]:
    return TreatmentCourse.objects.filter(**visible_patient_filter(user=user)).select_related(
        "patient", "regimen__drug", "started_by"
    )


def dose_list(*, user: AnyUser) -> QuerySet[Dose]:
    return Dose.objects.filter(**visible_patient_filter(user=user, prefix="course__patient__")).select_related(
        "course__patient", "course__regimen__drug"
    )


def preparation_list(*, user: AnyUser) -> QuerySet[Preparation]:
    return (
        Preparation.objects.filter(**visible_patient_filter(user=user, prefix="dose__course__patient__"))
        .select_related("dose__course__patient", "dose__course__regimen__drug", "prepared_by", "verified_by")
        .prefetch_related("components", Prefetch("identity_checks", queryset=IdentityCheck.objects.order_by("at")))
    )


@dataclass
class WorklistRow:
    dose: Dose
    gate: Gate
    preparation: Preparation | None


def worklist_doses(*, user: AnyUser, start: datetime, days: int = 2) -> QuerySet[Dose]:
    return (
        dose_list(user=user)
        .filter(status=DoseStatus.PLANNED, planned_at__gte=start, planned_at__lt=start + timedelta(days=days))
        .prefetch_related(
            Prefetch(
                "preparations",
                queryset=Preparation.objects.filter(status__in=LIVE).select_related("prepared_by"),
                to_attr="live",
            )
        )
        .order_by("planned_at", "id")
    )


def worklist_rows(doses: list[Dose], now: datetime) -> list[WorklistRow]:
    """Rows for doses from `worklist_doses` (their live order is prefetched as `live`)."""
    gates = dose_gates(doses, now=now)
    rows = []
    for dose in doses:
        live: list[Preparation] = getattr(dose, "live", [])
        rows.append(WorklistRow(dose, gates[dose.pk], live[0] if live else None))
    return rows


def verification_queue(*, user: AnyUser) -> QuerySet[Preparation]:
    """Preparations awaiting verification that the user did not prepare."""
    return (
        preparation_list(user=user)
        .filter(status=PreparationStatus.AWAITING_VERIFICATION, verified_at__isnull=True)
        .exclude(prepared_by_id=getattr(user, "pk", None))
        .order_by("ended_at")
    )


def dose_dates_for_patient(*, user: AnyUser, patient_id: int) -> list[str]:
    """Given and planned dose times of a patient's courses, for lab trend charts."""
    doses = dose_list(user=user).filter(course__patient_id=patient_id).exclude(status=DoseStatus.CANCELLED)
    return [d.isoformat() for d in doses.values_list("planned_at", flat=True)]
