from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from labflow.demo import collect_and_result_pre_dose
from orders.models import Dose, Preparation, Regimen, TreatmentCourse
from orders.services.courses import course_start
from results.models import Result


def start_course(patient, oncologist, regimen: str, *, in_hours: float = 20, **extra) -> TreatmentCourse:
    now = timezone.now()
    return course_start(
        patient=patient, regimen=Regimen.objects.get(name=regimen), starts_at=now + timedelta(hours=in_hours),
        user=oncologist, now=now, **extra,
    )  # fmt: skip


def first_dose(course: TreatmentCourse) -> Dose:
    return course.doses.get(number=1)


def live_preparation(dose: Dose) -> Preparation:
    return dose.preparations.exclude(status__in=["expired", "wasted"]).get()


def clear_pre_dose(
    dose: Dose, nurse, enterer, verifier, values: dict[str, tuple[str, str]] | None = None
) -> list[Result]:
    return collect_and_result_pre_dose(dose, collector=nurse, enterer=enterer, verifier=verifier, values=values)
