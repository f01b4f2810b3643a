"""Dose calculation for infusions: BSA, weight- and BSA-based doses, vial rounding, vials, diluent bag; cell doses.

Pure functions over ``Decimal`` (no floats, no Django), so the result can be checked by hand and stored with the
order (:meth:`DoseCalculation.as_record`). Every limit that is a site's or a label's choice (rounding tolerance, bag
sizes, concentration range, maximum dose, maximum final volume, undiluted use) is an argument, never a constant here.

Rounding: half up everywhere. BSA to 0.01 m², doses to 0.1 mg, volumes to 0.1 mL, concentrations to 0.01 mg/mL.
Vial contents are in 0.1 mg steps, so every vial total is a dose to 0.1 mg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from math import gcd

__all__ = [
    "BAG_SIZES_ML",
    "HEIGHT_RANGE_CM",
    "MAX_VIALS",
    "WEIGHT_RANGE_KG",
    "CellDose",
    "DoseBasis",
    "DoseCalculation",
    "DoseError",
    "bsa_mosteller",
    "calculate_dose",
    "cell_dose",
    "check_cell_product",
    "format_cells",
]

BSA_STEP = Decimal("0.01")
DOSE_STEP = Decimal("0.1")
DOSE_STEPS = (Decimal("0.1"), Decimal("0.01"), Decimal("0.001"))
VOLUME_STEP = Decimal("0.1")
VOLUME_STEPS = (Decimal("0.1"), Decimal("0.01"))
CONCENTRATION_STEP = Decimal("0.01")
PERCENT_STEP = Decimal("0.1")

WEIGHT_RANGE_KG = (Decimal("0.5"), Decimal(500))
HEIGHT_RANGE_CM = (Decimal(30), Decimal(260))
BAG_SIZES_ML: tuple[Decimal, ...] = (Decimal(50), Decimal(100), Decimal(250), Decimal(500))
# More vials than this for one dose is a units mistake (g for mg, mL for mg), not a preparation.
MAX_VIALS = 100
MAX_VIAL_STEPS = 500_000


class DoseBasis(StrEnum):
    """How the prescribed amount is expressed (values match ``orders.choices.DoseBasis``)."""

    FLAT = "flat"
    PER_KG = "mg_per_kg"
    PER_M2 = "mg_per_m2"

    @property
    def unit(self) -> str:
        return {DoseBasis.FLAT: "mg", DoseBasis.PER_KG: "mg/kg", DoseBasis.PER_M2: "mg/m²"}[self]


class DoseError(ValueError):
    """An input that makes the dose impossible to calculate or prepare.

    ``field`` names the input the problem is about (``"weight_kg"``, ``"concentration"`` …) so a form can show it
    beside that field; ``reason`` is a sentence for a person.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True)
class DoseCalculation:
    basis: DoseBasis
    amount: Decimal  # as prescribed: mg, mg/kg or mg/m² (see basis)
    weight_kg: Decimal | None
    height_cm: Decimal | None
    bsa_m2: Decimal | None  # the BSA the dose was calculated from (mg/m² only)
    calculated_mg: Decimal  # amount x weight or x BSA, before capping and rounding (not rounded)
    dose_mg: Decimal  # the dose to prepare (0.1 mg)
    rounded_to_vial: bool  # rounded to a vial total (one vial or a combination)
    rounding_note: str  # why the dose is what it is: vial rounding, the maximum dose, or why it was not rounded
    strength_mg_per_ml: Decimal
    volume_to_draw_ml: Decimal  # dose / strength (0.1 mL)
    vials: tuple[tuple[Decimal, int], ...]  # (vial content mg, count), largest vial first
    diluent_bag_ml: Decimal | None  # None: given undiluted
    final_volume_ml: Decimal  # bag + drawn volume, or the drawn volume when undiluted (0.1 mL)
    final_concentration_mg_per_ml: Decimal  # 0.01 mg/mL
    # The remaining inputs, so that the record holds everything the result depends on.
    vial_contents_mg: tuple[Decimal, ...] = ()
    concentration_min: Decimal | None = None
    concentration_max: Decimal | None = None
    bag_sizes_ml: tuple[Decimal, ...] = ()
    rounding_tolerance_percent: Decimal | None = Decimal(10)  # None: never rounded
    max_dose_mg: Decimal | None = None
    allow_round_up: bool = True
    may_give_undiluted: bool = False
    max_final_volume_ml: Decimal | None = None
    dose_step_mg: Decimal = DOSE_STEP
    volume_step_ml: Decimal = VOLUME_STEP

    @property
    def vial_total_mg(self) -> Decimal:
        return sum((content * count for content, count in self.vials), Decimal(0))

    @property
    def vial_count(self) -> int:
        return sum(count for _, count in self.vials)

    def as_record(self) -> dict[str, str]:
        """Every input and output as strings (JSON-safe, no float): what is stored with the order.

        ``None`` is stored as ``""``; lists are comma-separated; ``vials`` reads ``"1 x 200 mg + 1 x 50 mg"``;
        booleans are ``"true"`` / ``"false"``.
        """
        return {
            "basis": str(self.basis),
            "amount": _s(self.amount),
            "amount_unit": self.basis.unit,
            "weight_kg": _s(self.weight_kg),
            "height_cm": _s(self.height_cm),
            "bsa_m2": _s(self.bsa_m2),
            "bsa_formula": "mosteller" if self.bsa_m2 is not None else "",
            "calculated_mg": _s(self.calculated_mg),
            "max_dose_mg": _s(self.max_dose_mg),
            "rounding_tolerance_percent": _s(self.rounding_tolerance_percent),
            "allow_round_up": _b(self.allow_round_up),
            "dose_mg": _s(self.dose_mg),
            "dose_step_mg": _s(self.dose_step_mg),
            "volume_step_ml": _s(self.volume_step_ml),
            "rounded_to_vial": _b(self.rounded_to_vial),
            "rounding_note": self.rounding_note,
            "strength_mg_per_ml": _s(self.strength_mg_per_ml),
            "volume_to_draw_ml": _s(self.volume_to_draw_ml),
            "vial_contents_mg": ", ".join(_s(content) for content in self.vial_contents_mg),
            "vials": _vials_text(self.vials),
            "vial_count": str(self.vial_count),
            "vial_total_mg": _s(self.vial_total_mg),
            "concentration_min": _s(self.concentration_min),
            "concentration_max": _s(self.concentration_max),
            "bag_sizes_ml": ", ".join(_s(size) for size in self.bag_sizes_ml),
            "may_give_undiluted": _b(self.may_give_undiluted),
            "max_final_volume_ml": _s(self.max_final_volume_ml),
            "diluent_bag_ml": _s(self.diluent_bag_ml),
            "final_volume_ml": _s(self.final_volume_ml),
            "final_concentration_mg_per_ml": _s(self.final_concentration_mg_per_ml),
        }


def bsa_mosteller(*, height_cm: Decimal, weight_kg: Decimal) -> Decimal:
    """Body surface area, Mosteller: √(height cm x weight kg / 3600), to 0.01 m² (170 cm, 70 kg → 1.82)."""
    height = _number(height_cm, "height_cm")
    weight = _number(weight_kg, "weight_kg")
    _check_range(height, HEIGHT_RANGE_CM, "height_cm", "cm")
    _check_range(weight, WEIGHT_RANGE_KG, "weight_kg", "kg")
    with localcontext() as ctx:
        ctx.prec = 28
        return (height * weight / Decimal(3600)).sqrt().quantize(BSA_STEP, ROUND_HALF_UP)


def calculate_dose(
    *,
    basis: DoseBasis,
    amount: Decimal,
    weight_kg: Decimal | None,
    height_cm: Decimal | None,
    strength_mg_per_ml: Decimal,
    vial_contents_mg: Sequence[Decimal],
    concentration_min: Decimal | None,
    concentration_max: Decimal | None,
    bag_sizes_ml: Sequence[Decimal] = BAG_SIZES_ML,
    rounding_tolerance_percent: Decimal | None = Decimal(10),
    max_dose_mg: Decimal | None = None,
    allow_round_up: bool = True,
    may_give_undiluted: bool = False,
    max_final_volume_ml: Decimal | None = None,
    dose_step_mg: Decimal = DOSE_STEP,
    volume_step_ml: Decimal = VOLUME_STEP,
) -> DoseCalculation:
    """Calculate a dose and how to prepare it. Raises :class:`DoseError` naming the offending input.

    1. ``calculated_mg`` = amount (flat), amount x weight (mg/kg) or amount x Mosteller BSA (mg/m², BSA to 0.01).
    2. Capped at ``max_dose_mg`` when given (e.g. durvalumab 20 mg/kg up to 1500 mg); a capped dose is not rounded.
    3. A weight- or BSA-based dose is rounded to the nearest vial total, a sum of available vial contents (50 and
       200 mg vials make 50, 100, 150 … mg), when that total is within ``rounding_tolerance_percent`` of the
       calculated dose (inclusive; on a tie the smaller total, i.e. less drug). Never to a total above
       ``max_dose_mg``; with ``allow_round_up=False`` (a course's "do not round up") only to a total below the
       calculated dose. Flat doses, and every dose when the tolerance is None, are not rounded. Otherwise the dose
       is the calculated dose to 0.1 mg. Ipilimumab 3 mg/kg at 80 kg: 240 mg → 250 mg (200 + 50 mg, 4.2 %).
    4. Volume to draw = dose / strength (0.1 mL); vials = the combination covering the dose with the least waste,
       then the fewest vials (a rounded dose is exactly its vial total). More than ``MAX_VIALS`` vials is refused.
    5. With a concentration range: the smallest bag whose final concentration, dose / (bag + drawn volume), lies
       within the range (inclusive) and, when ``max_final_volume_ml`` is given, whose final volume is at most that.
       No bag fitting: given undiluted when ``may_give_undiluted`` (the label allows it, e.g. ipilimumab at
       5 mg/mL) and the drawn volume is within the maximum; else a ``DoseError`` with field ``"final_volume"``
       when the maximum volume is what rules out a bag (or undiluted use), ``"concentration"`` otherwise.
       Without a range (both bounds None, e.g. CAR-T): given undiluted, final volume = drawn volume (also at most
       ``max_final_volume_ml``).

    Doses are to ``dose_step_mg`` (0.1 mg; 0.01 mg for a drug measured finer, e.g. epcoritamab's 0.16 mg step-up
    dose; down to 0.001 mg) and volumes to ``volume_step_ml`` (0.1 mL; 0.01 mL for a subcutaneous syringe, where
    0.1 mL of teclistamab 10 mg/mL is 1 mg).
    """
    try:
        basis = DoseBasis(basis)
    except ValueError:
        raise DoseError("basis", f"unknown dose basis {basis!r}") from None
    amount = _positive(amount, "amount")
    weight = None if weight_kg is None else _number(weight_kg, "weight_kg")
    height = None if height_cm is None else _number(height_cm, "height_cm")
    if weight is not None:
        _check_range(weight, WEIGHT_RANGE_KG, "weight_kg", "kg")
    if height is not None:
        _check_range(height, HEIGHT_RANGE_CM, "height_cm", "cm")
    strength = _positive(strength_mg_per_ml, "strength_mg_per_ml")
    vials_available = _sizes(vial_contents_mg, "vial_contents_mg", "vial content")
    finest = next((content for content in vials_available if _places(content) > 1), None)
    if finest is not None:
        raise DoseError("vial_contents_mg", f"vial contents are given to 0.1 mg (got {_s(finest)})")
    c_min = None if concentration_min is None else _positive(concentration_min, "concentration_min")
    c_max = None if concentration_max is None else _positive(concentration_max, "concentration_max")
    if c_min is not None and c_max is not None and c_min > c_max:
        raise DoseError("concentration", f"the minimum {_s(c_min)} mg/mL is above the maximum {_s(c_max)} mg/mL")
    diluted = c_min is not None or c_max is not None
    bags = _sizes(bag_sizes_ml, "bag_sizes_ml", "bag size") if diluted else _sizes_or_empty(bag_sizes_ml)
    tolerance = None
    if rounding_tolerance_percent is not None:
        tolerance = _number(rounding_tolerance_percent, "rounding_tolerance_percent")
        if tolerance < 0:
            raise DoseError("rounding_tolerance_percent", "must not be negative")
    cap = None if max_dose_mg is None else _positive(max_dose_mg, "max_dose_mg")
    max_final = None if max_final_volume_ml is None else _positive(max_final_volume_ml, "max_final_volume_ml")
    step = _positive(dose_step_mg, "dose_step_mg")
    if step not in DOSE_STEPS:
        raise DoseError("dose_step_mg", f"the dose step is one of {', '.join(_s(s) for s in DOSE_STEPS)} mg")
    step = DOSE_STEPS[DOSE_STEPS.index(step)]  # its places, not the caller's (0.010 from a column is 0.01)
    volume_step = _positive(volume_step_ml, "volume_step_ml")
    if volume_step not in VOLUME_STEPS:
        raise DoseError("volume_step_ml", f"the volume step is one of {', '.join(_s(s) for s in VOLUME_STEPS)} mL")
    volume_step = VOLUME_STEPS[VOLUME_STEPS.index(volume_step)]

    with localcontext() as ctx:
        ctx.prec = 28
        bsa: Decimal | None = None
        if basis is DoseBasis.FLAT:
            calculated = amount
        elif basis is DoseBasis.PER_KG:
            if weight is None:
                raise DoseError("weight_kg", "a mg/kg dose needs the patient's weight")
            calculated = amount * weight
        else:
            if weight is None:
                raise DoseError("weight_kg", "a mg/m² dose needs the patient's weight (for the BSA)")
            if height is None:
                raise DoseError("height_cm", "a mg/m² dose needs the patient's height (for the BSA)")
            bsa = bsa_mosteller(height_cm=height, weight_kg=weight)
            calculated = amount * bsa

        # The dose before rounding: the vial totals are needed up to it (rounding never adds a vial beyond it).
        unrounded = calculated if cap is None else min(calculated, cap)
        _check_vial_count(_q(unrounded, step), vials_available)
        totals = _VialTotals(vials_available, up_to=max(unrounded, _q(unrounded, step)))
        dose, rounded, note = _round(basis, calculated, totals, tolerance, cap, allow_round_up, step)
        if dose <= 0:
            raise DoseError("amount", f"the dose {_s(calculated.normalize())} mg rounds to 0 mg")
        volume = (dose / strength).quantize(volume_step, ROUND_HALF_UP)
        if volume <= 0:
            raise DoseError(
                "amount",
                f"{_s(dose)} mg is less than {_s(volume_step)} mL of {_s(strength)} mg/mL: too small to measure",
            )
        vials = totals.covering(dose)

        if diluted:
            bag = _choose_bag(dose, volume, strength, bags, c_min, c_max, may_give_undiluted, max_final)
        else:
            bag = None
            if max_final is not None and volume > max_final:
                raise _final_volume_error(dose, volume, max_final, [], undiluted_allowed=True)
        if bag is None:
            final_volume = volume
            concentration = strength.quantize(CONCENTRATION_STEP, ROUND_HALF_UP)
        else:
            final_volume = bag + volume
            concentration = (dose / final_volume).quantize(CONCENTRATION_STEP, ROUND_HALF_UP)

    return DoseCalculation(
        basis=basis,
        amount=amount,
        weight_kg=weight,
        height_cm=height,
        bsa_m2=bsa,
        calculated_mg=calculated,
        dose_mg=dose,
        rounded_to_vial=rounded,
        rounding_note=note,
        strength_mg_per_ml=strength,
        volume_to_draw_ml=volume,
        vials=vials,
        diluent_bag_ml=bag,
        final_volume_ml=final_volume.quantize(volume_step, ROUND_HALF_UP),
        final_concentration_mg_per_ml=concentration,
        vial_contents_mg=vials_available,
        concentration_min=c_min,
        concentration_max=c_max,
        bag_sizes_ml=bags,
        rounding_tolerance_percent=tolerance,
        max_dose_mg=cap,
        allow_round_up=allow_round_up,
        may_give_undiluted=may_give_undiluted,
        max_final_volume_ml=max_final,
        dose_step_mg=step,
        volume_step_ml=volume_step,
    )


# --- the steps ---------------------------------------------------------------------------------------------------


def _check_vial_count(dose: Decimal, sizes: tuple[Decimal, ...]) -> None:
    """DoseError when even the largest vials alone would be more than MAX_VIALS."""
    largest = sizes[0]
    least_vials = int((dose / largest).to_integral_value(ROUND_CEILING))
    if least_vials > MAX_VIALS:
        raise DoseError(
            "amount",
            f"{_s(dose)} mg would need at least {least_vials} vials of {_s(largest)} mg "
            f"(more than {MAX_VIALS}): check the dose and its unit",
        )


class _VialTotals:
    """The totals the available vials can make, up to a limit, each with its fewest vials (at most MAX_VIALS).

    Exact, by dynamic programming over steps of the greatest common divisor of the vial contents (50 mg for 50 and
    200 mg vials). A total needing more than MAX_VIALS vials counts as not reachable.
    """

    def __init__(self, sizes: tuple[Decimal, ...], *, up_to: Decimal) -> None:
        scale = Decimal(10) ** max(_places(size) for size in sizes)
        units = [int(size * scale) for size in sizes]
        step = gcd(*units)
        self.sizes = sizes  # largest first
        self.step_mg = step / scale
        self.units = [unit // step for unit in units]
        # The least total covering up_to is below up_to + the largest vial (whole largest vials get there).
        self.limit = self.steps_at_least(up_to) + self.units[0]
        if self.limit > MAX_VIAL_STEPS:
            raise DoseError("vial_contents_mg", "the vial contents are too finely divided to combine (use 0.1 mg)")
        self.count = [0] + [MAX_VIALS + 1] * self.limit
        self.last = [-1] * (self.limit + 1)  # index into units of the last vial added to reach this total
        for total in range(1, self.limit + 1):
            for index, unit in enumerate(self.units):  # largest first: equal counts keep the larger vials
                if unit <= total and self.count[total - unit] + 1 < self.count[total]:
                    self.count[total] = self.count[total - unit] + 1
                    self.last[total] = index

    def steps_at_least(self, mg: Decimal) -> int:
        return int((mg / self.step_mg).to_integral_value(ROUND_CEILING))

    def reachable(self, steps: int) -> bool:
        return self.count[steps] <= MAX_VIALS

    def mg(self, steps: int) -> Decimal:
        return _plain((steps * self.step_mg).normalize())

    def nearest_at_most(self, mg: Decimal) -> int | None:
        """The largest reachable total at or below mg (in steps), None if there is none."""
        top = int((mg / self.step_mg).to_integral_value(ROUND_FLOOR))
        return next((steps for steps in range(top, 0, -1) if self.reachable(steps)), None)

    def nearest_above(self, mg: Decimal) -> int | None:
        """The smallest reachable total above mg (in steps) within the limit, None if there is none."""
        bottom = int((mg / self.step_mg).to_integral_value(ROUND_FLOOR)) + 1
        return next((steps for steps in range(bottom, self.limit + 1) if self.reachable(steps)), None)

    def vials(self, steps: int) -> tuple[tuple[Decimal, int], ...]:
        used = [0] * len(self.units)
        while steps:
            used[self.last[steps]] += 1
            steps -= self.units[self.last[steps]]
        return tuple((size, n) for size, n in zip(self.sizes, used, strict=True) if n)

    def covering(self, dose: Decimal) -> tuple[tuple[Decimal, int], ...]:
        """Vials adding up to at least the dose: the least total (waste) first, then the fewest vials."""
        start = self.steps_at_least(dose)
        return self.vials(next(steps for steps in range(start, self.limit + 1) if self.reachable(steps)))


def _round(
    basis: DoseBasis,
    calculated: Decimal,
    totals: _VialTotals,
    tolerance: Decimal | None,
    cap: Decimal | None,
    allow_round_up: bool,
    step: Decimal = DOSE_STEP,
) -> tuple[Decimal, bool, str]:
    """(dose to the dose step, 0.1 mg by default; rounded to a vial total?, note)."""

    def _q(mg: Decimal, _step: Decimal = step) -> Decimal:
        return _quantize(mg, _step)

    mg = _s(_q(calculated))
    if cap is not None and calculated > cap:
        return _q(cap), False, f"capped at the maximum dose {_s(cap)} mg (calculated {mg} mg)"
    if basis is DoseBasis.FLAT:
        return _q(calculated), False, "flat dose: not rounded"
    if tolerance is None:
        return _q(calculated), False, "not rounded: rounding to vials is off (no tolerance)"
    below = totals.nearest_at_most(calculated)
    if below is not None and totals.mg(below) == calculated:
        return _q(calculated), False, f"{mg} mg is exactly {_vials_text(totals.vials(below))}: no rounding needed"
    above = totals.nearest_above(calculated) if allow_round_up else None
    # What kept totals out, for the note: the course's "do not round up", or the maximum dose.
    if not allow_round_up:
        kept_out = "rounding up is not allowed for this course, and "
        nearest_of, none_of = "the nearest vial total below", f"no vial total is below {mg} mg"
    elif above is not None and cap is not None and totals.mg(above) > cap:
        above = None
        kept_out = f"the maximum dose is {_s(cap)} mg, and "
        nearest_of, none_of = "the nearest vial total at or below it", "no vial total is at or below it"
    else:  # nothing kept out: there is always a total above
        kept_out, nearest_of, none_of = "", "the nearest vial total", ""
    candidates = [steps for steps in (below, above) if steps is not None]
    if not candidates:
        return _q(calculated), False, f"not rounded: {kept_out}{none_of}"

    def distance(steps: int) -> Decimal:
        return abs(calculated - totals.mg(steps)) * 100 / calculated

    nearest = min(candidates, key=lambda steps: (distance(steps), steps))  # a tie: the smaller total
    total, vials = totals.mg(nearest), _vials_text(totals.vials(nearest))
    percent = _s(distance(nearest).quantize(PERCENT_STEP, ROUND_HALF_UP))
    if distance(nearest) <= tolerance:
        direction = "up" if total > calculated else "down"
        return (
            _q(total),
            True,
            f"rounded {direction} from {mg} mg to {_s(total)} mg = {vials} "
            f"({percent} % difference, within {_s(tolerance)} %)",
        )
    return (
        _q(calculated),
        False,
        f"not rounded: {kept_out}{nearest_of}, {_s(total)} mg ({vials}), is {percent} % from {mg} mg "
        f"(more than {_s(tolerance)} %)",
    )


def _choose_bag(
    dose: Decimal,
    volume: Decimal,
    strength: Decimal,
    bags: tuple[Decimal, ...],
    c_min: Decimal | None,
    c_max: Decimal | None,
    may_give_undiluted: bool,
    max_final: Decimal | None,
) -> Decimal | None:
    """The smallest bag within [c_min, c_max] and at most max_final in all; None: undiluted (see calculate_dose)."""
    too_concentrated: list[Decimal] = []
    too_dilute: list[Decimal] = []
    too_large: list[Decimal] = []
    for bag in sorted(bags):
        concentration = dose / (bag + volume)  # compared unrounded: 0.996 is not "at least 1"
        if c_max is not None and concentration > c_max:
            too_concentrated.append(bag)
        elif c_min is not None and concentration < c_min:
            too_dilute.append(bag)
        elif max_final is not None and bag + volume > max_final:
            too_large.append(bag)
        else:
            return bag
    if may_give_undiluted and (max_final is None or volume <= max_final):
        return None
    label = _range_label(c_min, c_max)
    if max_final is not None and (too_large or may_give_undiluted):
        found = []
        if too_large:
            smallest_fitting = too_large[0]
            found.append(
                f"the smallest bag within {label}, {_s(smallest_fitting)} mL, makes {_s(smallest_fitting + volume)} mL"
            )
        raise _final_volume_error(dose, volume, max_final, found, undiluted_allowed=may_give_undiluted)

    def conc(bag: Decimal) -> str:
        return _s((dose / (bag + volume)).quantize(CONCENTRATION_STEP, ROUND_HALF_UP))

    smallest, largest = min(bags), max(bags)
    if len(bags) == 1:
        gives = f"{_s(dose)} mg in a {_s(smallest)} mL bag gives {conc(smallest)} mg/mL"
    else:
        gives = (
            f"{_s(dose)} mg in any bag of {_s(smallest)}-{_s(largest)} mL gives {conc(largest)}-{conc(smallest)} mg/mL"
        )
    why = []
    if too_concentrated:
        why.append(f"too concentrated in {_mls(too_concentrated)}")
    if too_dilute:
        why.append(f"too dilute in {_mls(too_dilute)}")
    # The final volumes that would fit: dose / c_max ≤ final ≤ dose / c_min.
    low = None if c_max is None else (dose / c_max).quantize(VOLUME_STEP, ROUND_CEILING)
    high = None if c_min is None else (dose / c_min).quantize(VOLUME_STEP, ROUND_FLOOR)
    if c_min is not None and strength < c_min:
        need = f"the drug itself is only {_s(strength)} mg/mL"
    elif low is not None and high is not None:
        need = f"it would need a final volume of {_s(low)}-{_s(high)} mL, of which {_s(volume)} mL is drug"
    elif low is not None:
        need = f"it would need a final volume of at least {_s(low)} mL"
    else:
        need = f"it would need a final volume of at most {_s(high)} mL, of which {_s(volume)} mL is drug"
    raise DoseError("concentration", f"{gives}; the label range is {label}: none fits ({'; '.join(why)}); {need}")


def _final_volume_error(
    dose: Decimal, volume: Decimal, max_final: Decimal, found: list[str], *, undiluted_allowed: bool
) -> DoseError:
    """DoseError("final_volume"): what each way of giving the dose would make, against the maximum.

    Reached with ``undiluted_allowed`` only when the drawn volume alone is above the maximum.
    """
    if undiluted_allowed:
        found.append(f"undiluted it is {_s(volume)} mL, still too much")
    elif volume <= max_final:
        found.append("the label does not allow giving it undiluted")
    return DoseError(
        "final_volume",
        f"{_s(dose)} mg is {_s(volume)} mL of drug and the final volume may be at most {_s(max_final)} mL: "
        + "; ".join(found),
    )


# --- cell products -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellDose:
    """The viable cells to give (CAR-T and other cell products): a target, and the range the bag must lie in."""

    target_cells: int | None  # None: a flat range, no per-kg target
    min_cells: int | None
    max_cells: int | None
    note: str
    # The remaining inputs, so that the record holds everything the result depends on.
    cells_per_kg: int | None = None
    weight_kg: Decimal | None = None

    def as_record(self) -> dict[str, str]:
        """Every input and output as strings; cell numbers in full digits, ``None`` as ``""``."""
        return {
            "cells_per_kg": _n(self.cells_per_kg),
            "weight_kg": _s(self.weight_kg),
            "target_cells": _n(self.target_cells),
            "min_cells": _n(self.min_cells),
            "max_cells": _n(self.max_cells),
            "note": self.note,
        }


def cell_dose(
    *, cells_per_kg: int | None, cells_min: int | None, cells_max: int | None, weight_kg: Decimal | None
) -> CellDose:
    """The cell dose of a cell product. Raises :class:`DoseError` naming the offending input.

    Per kg (``cells_per_kg`` given): target = cells_per_kg x weight in whole cells (rounded down: never more than
    prescribed), capped at ``cells_max``. Axicabtagene ciloleucel, 2 x 10⁶ CAR+ viable T cells/kg up to 2 x 10⁸:
    70 kg → 1.4 x 10⁸, 120 kg → 2 x 10⁸ (capped). Without ``cells_per_kg`` the dose is a flat range: no target,
    [cells_min, cells_max]. The bounds are used as given (a per-kg lower bound is the caller's to work out).
    """
    per_kg = _cells(cells_per_kg, "cells_per_kg")
    low = _cells(cells_min, "cells_min")
    high = _cells(cells_max, "cells_max")
    if per_kg is None and low is None and high is None:
        raise DoseError("cells_per_kg", "a cell dose needs cells per kg or a range of cells")
    if low is not None and high is not None and low > high:
        raise DoseError("cells_min", f"the minimum {format_cells(low)} is above the maximum {format_cells(high)}")
    weight = None if weight_kg is None else _number(weight_kg, "weight_kg")
    if weight is not None:
        _check_range(weight, WEIGHT_RANGE_KG, "weight_kg", "kg")
    if per_kg is None:
        return CellDose(None, low, high, f"flat dose: {_cells_range(low, high)}", weight_kg=weight)
    if weight is None:
        raise DoseError("weight_kg", "a cells/kg dose needs the patient's weight")
    with localcontext() as ctx:
        ctx.prec = 28
        calculated = int((per_kg * weight).to_integral_value(ROUND_FLOOR))
    note = f"{format_cells(per_kg)} cells/kg {TIMES} {_s(weight)} kg = {format_cells(calculated)} cells"
    target = calculated
    if high is not None and calculated > high:
        target = high
        note += f", capped at the maximum {format_cells(high)}"
    if low is not None:
        note += f"; {_cells_range(low, high)}"
    return CellDose(target, low, high, note, cells_per_kg=per_kg, weight_kg=weight)


def check_cell_product(*, dose: CellDose, certified_cells: int) -> str | None:
    """Why the bag may not be given, or None: the certificate of analysis total of viable CAR+ cells must lie
    within [min_cells, max_cells] (inclusive; a bound that is None does not apply)."""
    certified = _cells(certified_cells, "certified_cells")
    assert certified is not None  # _cells returns None only for None, which the type does not allow
    if dose.min_cells is not None and certified < dose.min_cells:
        side = f"below the minimum of {format_cells(dose.min_cells)}"
    elif dose.max_cells is not None and certified > dose.max_cells:
        side = f"above the maximum of {format_cells(dose.max_cells)}"
    else:
        return None
    return f"the certificate of analysis gives {format_cells(certified)} viable CAR+ cells in the bag, {side}"


TIMES = "×"  # noqa: RUF001 - the multiplication sign, as cell numbers are written
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def format_cells(count: int) -> str:
    """A number of cells as people write it, exactly: 140000000 → "1.4 x 10⁸" (with a multiplication sign),
    200000000 → "2 x 10⁸"; below 10 000 as digits ("9500")."""
    if count < 10_000:
        return str(count)
    digits = str(count)
    fraction = digits[1:].rstrip("0")
    mantissa = f"{digits[0]}.{fraction}" if fraction else digits[0]
    return f"{mantissa} {TIMES} 10{str(len(digits) - 1).translate(_SUPERSCRIPT)}"


def _cells(value: object, field: str) -> int | None:
    """A positive whole number of cells, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DoseError(field, f"not a whole number of cells: {value!r}")
    if value <= 0:
        raise DoseError(field, f"must be more than 0 (got {value})")
    return value


def _cells_range(low: int | None, high: int | None) -> str:
    """The range a bag must hold (at least one bound is given)."""
    bounds = []
    if low is not None:
        bounds.append(f"at least {format_cells(low)}")
    if high is not None:
        bounds.append(f"at most {format_cells(high)}")
    return f"the bag must hold {' and '.join(bounds)} cells"


# --- helpers -----------------------------------------------------------------------------------------------------


def _number(value: object, field: str) -> Decimal:
    """A finite Decimal from a Decimal, int or str (floats go through their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise DoseError(field, f"not a number: {value!r}")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise DoseError(field, f"not a number: {value!r}") from None
    if not number.is_finite():
        raise DoseError(field, f"not a finite number: {value!r}")
    return number


def _positive(value: object, field: str) -> Decimal:
    number = _number(value, field)
    if number <= 0:
        raise DoseError(field, f"must be more than 0 (got {_s(number)})")
    return number


def _check_range(value: Decimal, bounds: tuple[Decimal, Decimal], field: str, unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise DoseError(field, f"{_s(value)} {unit} is outside {_s(low)}-{_s(high)} {unit}")


def _sizes(values: Sequence[object], field: str, what: str) -> tuple[Decimal, ...]:
    """Distinct positive sizes, largest first."""
    if isinstance(values, str | bytes) or not values:
        raise DoseError(field, f"at least one {what} is needed")
    sizes = set()
    for value in values:
        number = _number(value, field)
        if number <= 0:
            raise DoseError(field, f"every {what} must be more than 0 (got {_s(number)})")
        sizes.add(number.normalize())
    return tuple(sorted((_plain(size) for size in sizes), reverse=True))


def _sizes_or_empty(values: Sequence[object]) -> tuple[Decimal, ...]:
    """Bag sizes when there is no concentration range: recorded if valid, never used."""
    try:
        return _sizes(values, "bag_sizes_ml", "bag size")
    except DoseError:
        return ()


def _plain(number: Decimal) -> Decimal:
    """A normalized Decimal without a positive exponent (100, not 1E+2)."""
    exponent = number.as_tuple().exponent
    return number.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else number


def _places(number: Decimal) -> int:
    """Decimal places of a finite Decimal (0 for integers)."""
    exponent = number.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _q(mg: Decimal, step: Decimal = DOSE_STEP) -> Decimal:
    return _quantize(mg, step)


def _quantize(mg: Decimal, step: Decimal) -> Decimal:
    return mg.quantize(step, ROUND_HALF_UP)


def _s(value: Decimal | None) -> str:
    """A Decimal as plain text ("240.0", "1500", never "1.5E+3"); None as ""."""
    return "" if value is None else format(value, "f")


def _n(value: int | None) -> str:
    return "" if value is None else str(value)


def _b(value: bool) -> str:
    return "true" if value else "false"


def _vials_text(vials: tuple[tuple[Decimal, int], ...]) -> str:
    """ "1 x 200 mg + 1 x 50 mg" """
    return " + ".join(f"{count} x {_s(content)} mg" for content, count in vials)


def _range_label(c_min: Decimal | None, c_max: Decimal | None) -> str:
    if c_min is not None and c_max is not None:
        return f"{_s(c_min)}-{_s(c_max)} mg/mL"
    if c_min is not None:
        return f"at least {_s(c_min)} mg/mL"
    return f"at most {_s(c_max)} mg/mL"


def _mls(bags: list[Decimal]) -> str:
    names = [_s(bag) for bag in bags]
    joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{joined} mL"
