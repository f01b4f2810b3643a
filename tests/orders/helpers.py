from __future__ import annotations

from collections.abc import Sequence
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


def started_preparation(client, oncologist, nurse, patient, technician, checker) -> Preparation:
    """The first dose of a new pembrolizumab 200 mg course, its pre-dose labs cleared (entered by `technician`,
    verified by `checker`), and its preparation started through the page by `technician`, left logged in."""
    dose = first_dose(start_course(patient, oncologist, "Pembrolizumab 200 mg q3w"))
    clear_pre_dose(dose, nurse, technician, checker)
    prep = live_preparation(dose)
    client.force_login(technician)
    assert client.post(f"/orders/preparations/{prep.pk}/start/").status_code == 302
    return prep


def preparation_form(lots: Sequence[str]) -> dict[str, str]:
    """The prepare page's form for that dose: two pembrolizumab 100 mg vials and the 50 mL saline diluent, with
    the three `lots` and an expiry 300 days ahead, category 1, refrigerated."""
    expiry = (timezone.localdate() + timedelta(days=300)).isoformat()
    rows = [("Pembrolizumab 100 mg", "4"), ("Pembrolizumab 100 mg", "4"), ("0.9% sodium chloride 50 mL", "50")]
    form = {"category": "category_1", "storage": "refrigerated", "kind-2": "diluent"}
    for i, ((product, volume), lot) in enumerate(zip(rows, lots, strict=True)):
        form |= {f"product-{i}": product, f"lot-{i}": lot, f"expiry-{i}": expiry, f"volume-{i}": volume}
    return form
