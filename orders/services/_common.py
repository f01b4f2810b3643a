"""Helpers the service modules share: ordering a preparation, locking one for a step, local times.

Private, so that no service module reaches into another's internals.
"""

from __future__ import annotations

from datetime import datetime

from core.locking import locked
from orders import bags, dosing, lesions
from orders.choices import PreparationStatus
from orders.models import Dose, Preparation
from orders.selectors import calculate_for
from orders.services.errors import OrderConflict


def _apply(
    preparation: Preparation, calc: dosing.DoseCalculation | dosing.CellDose | lesions.VirusDose | bags.BagDose
) -> None:
    preparation.calculation = calc.as_record()
    if isinstance(calc, bags.BagDose):  # the bag's volume is the preparer's, from the label's table
        preparation.dose_mg = calc.dose_mg
        preparation.volume_to_draw_ml = preparation.final_volume_ml = preparation.concentration_mg_per_ml = None
        preparation.diluent_bag_ml = None
        return
    if isinstance(calc, lesions.VirusDose):
        preparation.concentration_pfu_per_ml, preparation.max_volume_ml = (
            calc.concentration_pfu_per_ml, calc.max_volume_ml,
        )  # fmt: skip
        return
    if isinstance(calc, dosing.CellDose):
        preparation.cells_target, preparation.cells_min, preparation.cells_max = (
            calc.target_cells, calc.min_cells, calc.max_cells,
        )  # fmt: skip
        return
    preparation.dose_mg = calc.dose_mg
    preparation.volume_to_draw_ml = calc.volume_to_draw_ml
    preparation.final_volume_ml = calc.final_volume_ml
    preparation.concentration_mg_per_ml = calc.final_concentration_mg_per_ml
    preparation.diluent_bag_ml = calc.diluent_bag_ml


def _order_preparation(dose: Dose, now: datetime) -> Preparation:
    preparation = Preparation(dose=dose, ordered_at=now)
    _apply(preparation, calculate_for(dose, dose.course.patient))
    preparation.save()
    return preparation


_TRANSITIONS: dict[str, tuple[str, ...]] = {
    # action: the states it may start from
    "recalculate": (PreparationStatus.ORDERED, PreparationStatus.REJECTED),
    "start": (PreparationStatus.ORDERED, PreparationStatus.REJECTED),
    "record": (PreparationStatus.IN_PREPARATION,),
    "verify": (PreparationStatus.AWAITING_VERIFICATION,),
    "release": (PreparationStatus.AWAITING_VERIFICATION,),
    "administer": (PreparationStatus.RELEASED,),
    "end_administration": (PreparationStatus.ADMINISTERED,),
    "waste": (
        PreparationStatus.ORDERED, PreparationStatus.IN_PREPARATION, PreparationStatus.AWAITING_VERIFICATION,
        PreparationStatus.REJECTED, PreparationStatus.RELEASED,
    ),
}  # fmt: skip


def _locked(preparation: Preparation, action: str) -> Preparation:
    row = locked(preparation, "dose__course__regimen__drug", "dose__course__patient")
    if row.status not in _TRANSITIONS[action]:
        raise OrderConflict(
            f"Cannot {action.replace('_', ' ')} a preparation that is {row.get_status_display().lower()}."
        )
    return row


def _local(moment: datetime) -> datetime:
    from django.utils import timezone

    return timezone.localtime(moment)


def _hhmm(moment: datetime) -> str:
    return f"{_local(moment):%H:%M on %Y-%m-%d}"
