"""Talimogene laherparepvec (T-VEC): the volume injected into each lesion by its size, and one visit's plan.

Pure functions over ``Decimal`` (no Django), like ``orders.dosing``. The numbers are the IMLYGIC US PI §2.2
"injection volume by lesion size" table (docs/clinical-sources.md §11), by the lesion's longest dimension:

    > 5 cm          up to 4 mL
    > 2.5 to 5 cm   up to 2 mL
    > 1.5 to 2.5 cm up to 1 mL
    > 0.5 to 1.5 cm up to 0.5 mL
    ≤ 0.5 cm        up to 0.1 mL

A visit injects at most 4 mL for all lesions together (the regimen's ``max_volume_ml_per_visit``). Lesions are
prioritised largest first (the label: the largest lesion first, then the others by size); a lesion that no longer
fits whole gets what is left of the visit's volume, and the lesions after it wait for a later visit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["LESION_VOLUME_TABLE", "MAX_VOLUME_PER_VISIT_ML", "InjectionPlan", "LesionError", "injection_plan",
           "volume_for_lesion"]  # fmt: skip

# (size above which, in cm; volume in mL), from the largest down; ≤ the last bound: the smallest volume.
LESION_VOLUME_TABLE: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(5), Decimal(4)),
    (Decimal("2.5"), Decimal(2)),
    (Decimal("1.5"), Decimal(1)),
    (Decimal("0.5"), Decimal("0.5")),
)
SMALLEST_VOLUME_ML = Decimal("0.1")
MAX_VOLUME_PER_VISIT_ML = Decimal(4)
MAX_LESION_CM = Decimal(50)  # a bigger number is a units mistake (mm for cm)
MAX_LESIONS = 50


class LesionError(ValueError):
    """A lesion size that makes the plan impossible; ``field`` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason


def _size(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise LesionError(field, f"not a size in cm: {value!r}")
    try:
        size = Decimal(value)
    except (InvalidOperation, ValueError):
        raise LesionError(field, f"not a size in cm: {value!r}") from None
    if not size.is_finite() or size <= 0:
        raise LesionError(field, f"a lesion's longest dimension is more than 0 cm (got {value})")
    if size > MAX_LESION_CM:
        raise LesionError(field, f"{size} cm is more than {MAX_LESION_CM} cm: give the size in cm")
    return size


def volume_for_lesion(size_cm: Decimal) -> Decimal:
    """The most to inject into one lesion of this longest dimension (cm), from the label's table."""
    size = _size(size_cm, "size_cm")
    for above, volume in LESION_VOLUME_TABLE:
        if size > above:
            return volume
    return SMALLEST_VOLUME_ML


@dataclass(frozen=True)
class LesionPlanRow:
    index: int  # the lesion's position as given (0-based)
    size_cm: Decimal
    volume_ml: Decimal  # 0: waits for a later visit


@dataclass(frozen=True)
class InjectionPlan:
    rows: tuple[LesionPlanRow, ...]  # largest lesion first
    total_ml: Decimal
    max_total_ml: Decimal

    @property
    def deferred(self) -> tuple[LesionPlanRow, ...]:
        return tuple(r for r in self.rows if r.volume_ml == 0)

    def as_record(self) -> list[dict[str, str]]:
        return [{"lesion": str(r.index + 1), "size_cm": str(r.size_cm), "volume_ml": str(r.volume_ml)}
                for r in self.rows]  # fmt: skip


def injection_plan(sizes_cm: Sequence[object], *, max_total_ml: Decimal = MAX_VOLUME_PER_VISIT_ML) -> InjectionPlan:
    """One visit: each lesion's volume by its size, largest lesion first, all together at most ``max_total_ml``.
    Raises :class:`LesionError` for no lesions, too many, or a size that is not a positive number of cm."""
    if isinstance(sizes_cm, str | bytes) or not sizes_cm:
        raise LesionError("lesions", "give the longest dimension (cm) of at least one lesion")
    if len(sizes_cm) > MAX_LESIONS:
        raise LesionError("lesions", f"at most {MAX_LESIONS} lesions a visit")
    if not isinstance(max_total_ml, Decimal) or not max_total_ml.is_finite() or max_total_ml <= 0:
        raise LesionError("max_total_ml", f"the visit's volume must be more than 0 mL (got {max_total_ml!r})")
    sizes = [_size(value, f"lesions[{i}]") for i, value in enumerate(sizes_cm)]
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    left, rows = max_total_ml, []
    for i in order:
        volume = min(volume_for_lesion(sizes[i]), left)
        left -= volume
        rows.append(LesionPlanRow(i, sizes[i], volume))
    return InjectionPlan(tuple(rows), max_total_ml - left, max_total_ml)


@dataclass(frozen=True)
class VirusDose:
    """One visit of an oncolytic virus: the concentration of this dose (T-VEC: 10⁶ PFU/mL for dose 1, 10⁸ after)
    and the most to inject (mL, all lesions together). The volume comes from the lesions at the visit."""

    dose_number: int
    concentration_pfu_per_ml: int
    max_volume_ml: Decimal

    @property
    def note(self) -> str:
        return (f"dose {self.dose_number}: {format_pfu(self.concentration_pfu_per_ml)} PFU/mL, "
                f"up to {self.max_volume_ml} mL for all lesions (volume by lesion size)")  # fmt: skip

    def as_record(self) -> dict[str, str]:
        return {"dose_number": str(self.dose_number), "concentration_pfu_per_ml": str(self.concentration_pfu_per_ml),
                "max_volume_ml": str(self.max_volume_ml), "note": self.note}  # fmt: skip


def virus_dose(
    *, dose_number: int, pfu_per_ml_first_dose: int | None, pfu_per_ml: int | None, max_volume_ml: Decimal | None
) -> VirusDose:
    """The concentration and the visit's volume cap of dose ``dose_number`` (1-based). Fails without them."""
    concentration = pfu_per_ml_first_dose if dose_number == 1 else pfu_per_ml
    field = "pfu_per_ml_first_dose" if dose_number == 1 else "pfu_per_ml"
    if concentration is None or isinstance(concentration, bool) or concentration <= 0:
        raise LesionError(field, "the regimen gives no concentration (PFU/mL) for this dose")
    if max_volume_ml is None or max_volume_ml <= 0:
        raise LesionError("max_volume_ml_per_visit", "the regimen gives no volume per visit")
    return VirusDose(dose_number, concentration, max_volume_ml)


def format_pfu(count: int) -> str:
    """10⁶ for 1000000; other numbers as digits."""
    digits = str(count)
    if digits[0] == "1" and set(digits[1:]) <= {"0"} and len(digits) > 1:
        return "10" + str(len(digits) - 1).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return digits
