"""Building CAR-T and compounded preparations step by step through the services, at explicit times."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from orders.cells import cell_product_receive, cell_product_thaw, rescue_medication_confirm
from orders.choices import CoiStep, ComponentKind
from orders.models import Drug, Preparation, Regimen
from orders.services.identity import chain_of_identity_handoff
from orders.services.preparations import (
    ComponentInput,
    preparation_record,
    preparation_release,
    preparation_start,
    preparation_verify,
)
from tests.factories import signing_request
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

PASSWORD = "a-long-test-password"
COI = "COI-2026-000123"
CAR_T = "Axicabtagene ciloleucel single infusion"
PEMBRO = "Pembrolizumab 200 mg q3w"
H, M = timedelta(hours=1), timedelta(minutes=1)


def yescarta_as_labelled() -> None:
    """The Yescarta label facts the bedside checks rely on, whatever the catalogue migration holds."""
    Drug.objects.filter(cell_therapy=True).update(
        thaw_to_infusion_limit=3 * H, rescue_drug="Tocilizumab", rescue_doses_required=2,
        premedication="Acetaminophen 650 mg PO and diphenhydramine 12.5 mg IV or PO, about 1 h before",
        biosafety_level="BSL-2", filter_note="Do not use a leukodepleting filter", target="CD19 CAR T",
    )  # fmt: skip
    Regimen.objects.filter(name=CAR_T).update(
        dose_basis="cells_per_kg", cells_per_kg=2_000_000, cells_min=None, cells_max=200_000_000, infusion_minutes=30
    )


def base_time() -> datetime:
    """A whole hour ahead ("09:00"): preparation steps happen from here, the dose is planned ~20 h from now."""
    return timezone.localtime(timezone.now()).replace(minute=0, second=0, microsecond=0) + H


def cleared_preparation(patient, oncologist, nurse, techs, regimen: str, **extra) -> Preparation:
    dose = first_dose(start_course(patient, oncologist, regimen, **extra))
    clear_pre_dose(dose, nurse, *techs)
    return live_preparation(dose)


def car_t_ordered(patient, oncologist, nurse, techs, *, coi: str = COI) -> Preparation:
    yescarta_as_labelled()
    return cleared_preparation(patient, oncologist, nurse, techs, CAR_T, chain_of_identity=coi)


def car_t_received(prep: Preparation, tech, t0: datetime, *, cells: int = 140_000_000) -> Preparation:
    course = prep.dose.course
    chain_of_identity_handoff(course=course, step=CoiStep.COLLECTION, scanned=COI, user=tech, now=t0 - 30 * 24 * H)
    chain_of_identity_handoff(course=course, step=CoiStep.SHIPMENT, scanned=COI, user=tech, now=t0 - 29 * 24 * H)
    outcome = cell_product_receive(
        preparation=prep, coi_scanned=COI, coa_cells=cells, coa_bag_volume_ml=Decimal("68.0"), coa_lot="YC-7781",
        user=tech, now=t0 - 2 * 24 * H,
    )  # fmt: skip
    assert outcome.matched
    return outcome.preparation


def car_t_released(prep: Preparation, techs, thawed_at: datetime, *, rescue_doses: int | None = 2) -> Preparation:
    """Received two days before, started 5 min before the thaw, verified and released 10 and 15 min after it,
    with the tocilizumab on hand confirmed by pharmacy (unless rescue_doses is None)."""
    preparer, checker = techs
    car_t_received(prep, preparer, thawed_at)
    preparation_start(preparation=prep, user=preparer, now=thawed_at - 5 * M)
    assert cell_product_thaw(preparation=prep, coi_scanned=COI, user=preparer, now=thawed_at).matched
    prep = preparation_verify(
        preparation=prep, user=checker, password=PASSWORD, method="cell_product", coi_label=COI, bag_intact=True,
        now=thawed_at + 10 * M, request=signing_request(),
    )  # fmt: skip
    assert not prep.rejection_reason, prep.rejection_reason
    prep = preparation_release(preparation=prep, user=checker, now=thawed_at + 15 * M)
    if rescue_doses is not None:
        rescue_medication_confirm(course=prep.dose.course, doses_on_hand=rescue_doses, user=checker,
                                  now=thawed_at + 20 * M)  # fmt: skip
    return prep


def pembro_components(expiry) -> list[ComponentInput]:
    vial = ComponentInput(ComponentKind.VIAL, "Pembrolizumab 100 mg/4 mL", "PB2611A", expiry, Decimal("4.0"))
    bag = ComponentInput(ComponentKind.DILUENT, "0.9% sodium chloride 50 mL", "NS0042", expiry, Decimal(50))
    return [vial, vial, bag]


def pembro_released(prep: Preparation, techs, t0: datetime, *, storage: str = "room") -> Preparation:
    """Started at t0, first puncture t0 + 10 min, recorded t0 + 2 h, verified and released right after."""
    preparer, checker = techs
    preparation_start(preparation=prep, user=preparer, now=t0)
    preparation_record(
        preparation=prep, components=pembro_components(t0.date() + timedelta(days=365)), category="category_1",
        storage=storage, user=preparer, now=t0 + 2 * H, punctured_at=t0 + 10 * M,
    )  # fmt: skip
    prep = preparation_verify(preparation=prep, user=checker, password=PASSWORD, method="gravimetric",
                              measured=Decimal("8.0"), now=t0 + 2 * H + 5 * M, request=signing_request())  # fmt: skip
    return preparation_release(preparation=prep, user=checker, now=t0 + 2 * H + 10 * M)
