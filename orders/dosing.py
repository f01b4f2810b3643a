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
    "DoseBasis",
    "DoseCalculation",
    "DoseError",
    "bsa_mosteller",
    "calculate_dose",
]

BSA_STEP = Decimal("0.01")
DOSE_STEP = Decimal("0.1")
VOLUME_STEP = Decimal("0.1")
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
    rounded_to_vial: bool
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
    rounding_tolerance_percent: Decimal = Decimal(10)
    max_dose_mg: Decimal | None = None

    @property
    def vial_total_mg(self) -> Decimal:
        return sum((content * count for content, count in self.vials), Decimal(0))

    @property
    def vial_count(self) -> int:
        return sum(count for _, count in self.vials)

    def as_record(self) -> dict[str, str]:
        """Every input and output as strings (JSON-safe, no float): what is stored with the order.

        ``None`` is stored as ``""``; lists are comma-separated; ``vials`` reads ``"1 x 200 mg + 1 x 50 mg"``.
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
            "dose_mg": _s(self.dose_mg),
            "rounded_to_vial": "true" if self.rounded_to_vial else "false",
            "rounding_note": self.rounding_note,
            "strength_mg_per_ml": _s(self.strength_mg_per_ml),
            "volume_to_draw_ml": _s(self.volume_to_draw_ml),
            "vial_contents_mg": ", ".join(_s(content) for content in self.vial_contents_mg),
            "vials": " + ".join(f"{count} x {_s(content)} mg" for content, count in self.vials),
            "vial_count": str(self.vial_count),
            "vial_total_mg": _s(self.vial_total_mg),
            "concentration_min": _s(self.concentration_min),
            "concentration_max": _s(self.concentration_max),
            "bag_sizes_ml": ", ".join(_s(size) for size in self.bag_sizes_ml),
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
    rounding_tolerance_percent: Decimal = Decimal(10),
    max_dose_mg: Decimal | None = None,
) -> DoseCalculation:
    """Calculate a dose and how to prepare it. Raises :class:`DoseError` naming the offending input.

    1. ``calculated_mg`` = amount (flat), amount x weight (mg/kg) or amount x Mosteller BSA (mg/m², BSA to 0.01).
    2. Capped at ``max_dose_mg`` when given (e.g. durvalumab 20 mg/kg up to 1500 mg); a capped dose is not rounded.
    3. A weight- or BSA-based dose within ``rounding_tolerance_percent`` of the calculated dose to ONE vial content
       becomes that vial content (the nearest one; never above ``max_dose_mg``). Flat doses are never rounded.
       Otherwise the dose is the calculated dose to 0.1 mg.
    4. Volume to draw = dose / strength (0.1 mL); vials = the combination covering the dose with the least waste,
       then the fewest vials.
    5. With a concentration range: the smallest bag whose final concentration, dose / (bag + drawn volume), lies
       within the range (inclusive); none fitting is a ``DoseError(field="concentration")`` saying why. Without
       a range (both bounds None, e.g. CAR-T): given undiluted, final volume = drawn volume.
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
    c_min = None if concentration_min is None else _positive(concentration_min, "concentration_min")
    c_max = None if concentration_max is None else _positive(concentration_max, "concentration_max")
    if c_min is not None and c_max is not None and c_min > c_max:
        raise DoseError("concentration", f"the minimum {_s(c_min)} mg/mL is above the maximum {_s(c_max)} mg/mL")
    diluted = c_min is not None or c_max is not None
    bags = _sizes(bag_sizes_ml, "bag_sizes_ml", "bag size") if diluted else _sizes_or_empty(bag_sizes_ml)
    tolerance = _number(rounding_tolerance_percent, "rounding_tolerance_percent")
    if tolerance < 0:
        raise DoseError("rounding_tolerance_percent", "must not be negative")
    cap = None if max_dose_mg is None else _positive(max_dose_mg, "max_dose_mg")

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

        dose, rounded, note = _round(basis, calculated, vials_available, tolerance, cap)
        if dose <= 0:
            raise DoseError("amount", f"the dose {_s(calculated.normalize())} mg rounds to 0 mg")
        volume = (dose / strength).quantize(VOLUME_STEP, ROUND_HALF_UP)
        if volume <= 0:
            raise DoseError(
                "amount", f"{_s(dose)} mg is less than 0.1 mL of {_s(strength)} mg/mL: too small to measure"
            )
        vials = _vials(dose, vials_available)

        if diluted:
            bag = _choose_bag(dose, volume, strength, bags, c_min, c_max)
            final_volume = bag + volume
            concentration = (dose / final_volume).quantize(CONCENTRATION_STEP, ROUND_HALF_UP)
        else:
            bag = None
            final_volume = volume
            concentration = strength.quantize(CONCENTRATION_STEP, ROUND_HALF_UP)

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
        final_volume_ml=final_volume.quantize(VOLUME_STEP, ROUND_HALF_UP),
        final_concentration_mg_per_ml=concentration,
        vial_contents_mg=vials_available,
        concentration_min=c_min,
        concentration_max=c_max,
        bag_sizes_ml=bags,
        rounding_tolerance_percent=tolerance,
        max_dose_mg=cap,
    )


# --- the steps ---------------------------------------------------------------------------------------------------


def _round(
    basis: DoseBasis, calculated: Decimal, vials: tuple[Decimal, ...], tolerance: Decimal, cap: Decimal | None
) -> tuple[Decimal, bool, str]:
    """(dose to 0.1 mg, rounded to a vial?, note)."""
    if cap is not None and calculated > cap:
        return _q(cap), False, f"capped at the maximum dose {_s(cap)} mg (calculated {_s(_q(calculated))} mg)"
    if basis is DoseBasis.FLAT:
        return _q(calculated), False, "flat dose: not rounded"
    if calculated in vials:
        return _q(calculated), False, f"{_s(_q(calculated))} mg is a whole vial: no rounding needed"

    def distance(content: Decimal) -> Decimal:
        return abs(calculated - content) * 100 / calculated

    # Nearest single vial size (ties: the smaller vial, i.e. less drug).
    candidates = [content for content in vials if cap is None or content <= cap]
    if not candidates:
        return _q(calculated), False, f"not rounded: every vial is above the maximum dose {_s(cap)} mg"
    nearest = min(candidates, key=lambda content: (distance(content), content))
    percent = distance(nearest).quantize(PERCENT_STEP, ROUND_HALF_UP)
    if distance(nearest) <= tolerance:
        return (
            _q(nearest),
            True,
            f"rounded from {_s(_q(calculated))} mg to the {_s(nearest)} mg vial "
            f"({_s(percent)} % difference, within {_s(tolerance)} %)",
        )
    return (
        _q(calculated),
        False,
        f"not rounded: the nearest vial, {_s(nearest)} mg, is {_s(percent)} % from {_s(_q(calculated))} mg "
        f"(more than {_s(tolerance)} %)",
    )


def _vials(dose: Decimal, sizes: tuple[Decimal, ...]) -> tuple[tuple[Decimal, int], ...]:
    """Vials whose contents add up to at least the dose: least total content (waste) first, then fewest vials.

    Exact, by dynamic programming over multiples of the greatest common divisor of the vial contents.
    """
    largest = max(sizes)
    least_vials = int((dose / largest).to_integral_value(ROUND_CEILING))
    if least_vials > MAX_VIALS:
        raise DoseError(
            "amount",
            f"{_s(dose)} mg would need at least {least_vials} vials of {_s(largest)} mg "
            f"(more than {MAX_VIALS}): check the dose and its unit",
        )
    exponent = max(_places(size) for size in sizes)
    scale = Decimal(10) ** exponent
    units = [int(size * scale) for size in sizes]
    step = 0
    for unit in units:
        step = gcd(step, unit)
    units = [unit // step for unit in units]
    target = int((dose * scale / step).to_integral_value(ROUND_CEILING))
    limit = target + max(units)  # beyond target + largest vial, a total never has the least waste
    if limit > MAX_VIAL_STEPS:
        raise DoseError("vial_contents_mg", "the vial contents are too finely divided to combine (use 0.1 mg)")
    unreachable = limit + 1  # more vials than any reachable total can need (every unit is at least 1)
    count = [0] + [unreachable] * limit
    last = [-1] * (limit + 1)  # index into units of the last vial added to reach this total
    for total in range(1, limit + 1):
        for index, unit in enumerate(units):  # sizes are largest first: equal counts keep the larger vials
            if unit <= total and count[total - unit] + 1 < count[total]:
                count[total] = count[total - unit] + 1
                last[total] = index
    best = next(total for total in range(target, limit + 1) if count[total] < unreachable)
    used = [0] * len(units)
    total = best
    while total:
        used[last[total]] += 1
        total -= units[last[total]]
    return tuple((size, n) for size, n in zip(sizes, used, strict=True) if n)


def _choose_bag(
    dose: Decimal,
    volume: Decimal,
    strength: Decimal,
    bags: tuple[Decimal, ...],
    c_min: Decimal | None,
    c_max: Decimal | None,
) -> Decimal:
    """The smallest bag whose final concentration lies in [c_min, c_max]; DoseError("concentration") if none."""
    too_concentrated: list[Decimal] = []
    too_dilute: list[Decimal] = []
    for bag in sorted(bags):
        concentration = dose / (bag + volume)  # compared unrounded: 0.996 is not "at least 1"
        if c_max is not None and concentration > c_max:
            too_concentrated.append(bag)
        elif c_min is not None and concentration < c_min:
            too_dilute.append(bag)
        else:
            return bag

    def conc(bag: Decimal) -> str:
        return _s((dose / (bag + volume)).quantize(CONCENTRATION_STEP, ROUND_HALF_UP))

    smallest, largest = min(bags), max(bags)
    if c_min is not None and c_max is not None:
        label = f"{_s(c_min)}-{_s(c_max)} mg/mL"
    elif c_min is not None:
        label = f"at least {_s(c_min)} mg/mL"
    else:
        label = f"at most {_s(c_max)} mg/mL"
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


def _q(mg: Decimal) -> Decimal:
    return mg.quantize(DOSE_STEP, ROUND_HALF_UP)


def _s(value: Decimal | None) -> str:
    """A Decimal as plain text ("240.0", "1500", never "1.5E+3"); None as ""."""
    return "" if value is None else format(value, "f")


def _mls(bags: list[Decimal]) -> str:
    names = [_s(bag) for bag in bags]
    joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{joined} mL"
