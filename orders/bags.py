"""Continuous infusions given as a run of bags (blinatumomab): which bags, how long each runs, how much each holds,
whether the label's in-use time lets it run to its end, and when the next one is due. Pure (no Django).

The regimen gives a daily dose per step (blinatumomab cycle 1: 9 µg/day from day 1, 28 µg/day from day 8) and the
days of infusion (28); the site chooses one of the label's bag durations when ordering the course. Bags follow each
other without a gap (bag n + 1 starts when bag n ends), a bag never spans a change of daily dose (the step's last
bag is shorter when the step's hours do not divide, and that shorter bag must itself be an allowed duration), and
each bag holds its daily dose x its hours / 24. The bag's volume is not calculated here: the label's volume table
(overfill to prime the line) is entered by the preparer, never invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from core.numbers import plain_decimal
from core.times import after_elapsed
from orders import bud
from orders.dosing import DoseError

__all__ = ["Bag", "BagDose", "BagError", "DailyDose", "bag_amount", "bag_dose", "bag_record_problem",
           "check_bag_hours", "next_bag_due", "plan_bags"]  # fmt: skip

DAY_HOURS = 24


class BagError(DoseError):
    """A bag plan that cannot be given: ``field`` names the input, ``reason`` is a sentence for a person."""


@dataclass(frozen=True)
class DailyDose:
    """A step of the regimen: from `day` (1 = the first day of infusion) the patient gets `mg_per_day`."""

    step: int
    day: int
    mg_per_day: Decimal


@dataclass(frozen=True)
class Bag:
    number: int  # 1, 2, ... in the course
    offset: timedelta  # from the start of the infusion
    hours: int  # how long this bag runs
    step: int  # the step whose daily dose it gives
    starts_step: bool  # the first bag at that daily dose (premedication, hospital stay)
    mg_per_day: Decimal
    dose_mg: Decimal  # mg_per_day x hours / 24, to the dose step


def check_bag_hours(
    *,
    bag_hours: int,
    allowed_hours: Sequence[int],
    stability_room: timedelta | None,
    stability_includes_infusion: bool,
) -> None:
    """Refuse (BagError naming `bag_hours`) a bag duration the regimen does not allow, or one the label's in-use
    stability cannot cover: the bag runs at room temperature, so its whole infusion must fit within the room-
    temperature in-use time, and only a label that counts that time to the END of the infusion says so. Without
    such a time nothing is known about a bag running for days: refused (fail closed)."""
    allowed = sorted(set(allowed_hours))
    if not allowed:
        raise BagError("bag_hours", "This regimen is not a continuous infusion: it has no bag durations.")
    if bag_hours not in allowed:
        listed = ", ".join(f"{hours} h" for hours in allowed)
        raise BagError("bag_hours", f"A {bag_hours} h bag is not one of this regimen's bag durations ({listed}).")
    if stability_room is None or not stability_includes_infusion:
        raise BagError(
            "bag_hours",
            "The drug has no room-temperature in-use time that includes the infusion: a bag running for hours "
            "cannot be checked against its label.",
        )
    if timedelta(hours=bag_hours) > stability_room:
        raise BagError(
            "bag_hours",
            f"A {bag_hours} h bag would run past the label's in-use time of {_hours(stability_room)} at room "
            "temperature, which includes the infusion.",
        )


def plan_bags(
    *,
    steps: Sequence[DailyDose],
    infusion_days: int,
    bag_hours: int,
    allowed_hours: Sequence[int],
    dose_step_mg: Decimal,
) -> list[Bag]:
    """Every bag of the infusion, in order, without gaps. `steps` must start on day 1, with days rising and
    within the infusion days, and positive daily doses; a step's hours that leave a shorter last bag need that
    shorter duration to be allowed too (BagError naming the field otherwise)."""
    if infusion_days < 1:
        raise BagError("infusion_days", "A continuous infusion runs at least 1 day.")
    if bag_hours not in allowed_hours:
        raise BagError("bag_hours", f"A {bag_hours} h bag is not one of this regimen's bag durations.")
    ordered = sorted(steps, key=lambda s: s.day)
    if not ordered:
        raise BagError("steps", "A continuous infusion needs its daily dose (a step from day 1).")
    if ordered[0].day != 1:
        raise BagError("steps", "The first daily dose starts on day 1.")
    days = [s.day for s in ordered]
    if len(set(days)) != len(days):
        raise BagError("steps", f"Two daily doses start on the same day (days {days}).")
    if days[-1] > infusion_days:
        raise BagError("steps", f"A daily dose starts on day {days[-1]}, after the {infusion_days} days of infusion.")
    bags: list[Bag] = []
    ends = [s.day for s in ordered[1:]] + [infusion_days + 1]
    for step, end_day in zip(ordered, ends, strict=True):
        if step.mg_per_day <= 0:
            raise BagError("steps", f"The daily dose from day {step.day} must be more than 0.")
        start_hour, end_hour = (step.day - 1) * DAY_HOURS, (end_day - 1) * DAY_HOURS
        hour = start_hour
        while hour < end_hour:
            hours = min(bag_hours, end_hour - hour)
            if hours not in allowed_hours:
                raise BagError(
                    "bag_hours",
                    f"Days {step.day}-{end_day - 1} do not divide into {bag_hours} h bags: the last would run "
                    f"{hours} h, which is not an allowed bag duration.",
                )
            dose = bag_amount(mg_per_day=step.mg_per_day, hours=hours, dose_step_mg=dose_step_mg)
            bags.append(
                Bag(
                    number=len(bags) + 1, offset=timedelta(hours=hour), hours=hours, step=step.step,
                    starts_step=hour == start_hour, mg_per_day=step.mg_per_day, dose_mg=dose,
                )
            )  # fmt: skip
            hour += hours
    return bags


def bag_amount(*, mg_per_day: Decimal, hours: int, dose_step_mg: Decimal) -> Decimal:
    """What a bag of `hours` holds at `mg_per_day`: the daily dose x hours / 24, half up to the dose step. A dose
    that rounds to nothing, or a duration or step below 1 h / above 0, is refused (BagError)."""
    if hours < 1:
        raise BagError("bag_hours", "A bag runs at least 1 hour.")
    if dose_step_mg <= 0:
        raise BagError("dose_step_mg", "The dose step must be more than 0.")
    if mg_per_day <= 0:
        raise BagError("steps", "The daily dose must be more than 0.")
    dose = (mg_per_day * hours / DAY_HOURS).quantize(dose_step_mg, rounding=ROUND_HALF_UP)
    if dose <= 0:
        raise BagError("steps", f"A {hours} h bag at {mg_per_day} mg/day rounds to no dose.")
    return dose


def next_bag_due(*, started_at: datetime, hours: int) -> datetime:
    """When the next bag must go up: this bag's start + its duration (elapsed time, so a daylight-saving change
    does not open a gap or an overlap). `started_at` must be timezone-aware and `hours` positive (ValueError)."""
    if started_at.tzinfo is None or started_at.utcoffset() is None:
        raise ValueError("started_at must be timezone-aware")
    if hours < 1:
        raise ValueError(f"hours must be at least 1 (got {hours})")
    return after_elapsed(started_at, timedelta(hours=hours))


def bag_record_problem(*, use_by: bud.BeyondUse, prepared_at: datetime, hours: int) -> str | None:
    """Why a bag just prepared can never be given, or None: even hung at once, its `hours` of infusion must end
    by the label's in-use time counted to the end of the infusion (and it must start by the BUD). A beyond-use
    time without that end-of-infusion clock says nothing about a bag running for hours: refused."""
    if use_by.infusion_end_by is None:
        return (
            "the label's in-use time for this storage does not cover the infusion: a bag running for hours "
            "cannot be checked"
        )
    problem = bud.administration_problem(bud=use_by, starts_at=prepared_at, infusion=timedelta(hours=hours))
    return None if problem is None else f"even hung at once, {problem}"


def bag_drug_problem(*, dose_mg: Decimal, drawn_ml: Decimal, strength_mg_per_ml: Decimal) -> str | None:
    """Why the drug drawn into a bag cannot be its dose, or None. The bag holds more than it infuses (the overfill
    that primes the line is the label's volume table, which is not seeded), so only a bag holding less than its
    dose is decidable here: refused. A strength or volume of 0 or less is refused too (fail closed)."""
    if strength_mg_per_ml <= 0:
        return "the catalogue gives no strength for the reconstituted drug"
    if drawn_ml <= 0:
        return "no drug volume is recorded"
    held = drawn_ml * strength_mg_per_ml
    if held < dose_mg:
        return (
            f"{plain_decimal(drawn_ml)} mL at {plain_decimal(strength_mg_per_ml)} mg/mL holds "
            f"{plain_decimal(held)} mg, less than the bag's dose of {plain_decimal(dose_mg)} mg"
        )
    return None


@dataclass(frozen=True)
class BagDose:
    """A bag's dose as ordered, stored with the preparation (`as_record`). No volumes: the preparer enters them."""

    number: int
    hours: int
    step: int
    mg_per_day: Decimal
    dose_mg: Decimal
    dose_step_mg: Decimal

    def as_record(self) -> dict[str, str]:
        return {
            "basis": "continuous_infusion",
            "bag_number": str(self.number),
            "bag_hours": str(self.hours),
            "step": str(self.step),
            "mg_per_day": plain_decimal(self.mg_per_day),
            "dose_mg": str(self.dose_mg),
            "dose_step_mg": str(self.dose_step_mg),
            "rounding_note": (
                f"{plain_decimal(self.mg_per_day)} mg/day x {self.hours} h / 24 h; the bag's volume is entered by the "
                "preparer from the label's table"
            ),
        }


def bag_dose(*, number: int, hours: int, step: int, mg_per_day: Decimal, dose_step_mg: Decimal) -> BagDose:
    """The dose of bag `number` (its hours and its step's daily dose), as `bag_amount` makes it."""
    dose = bag_amount(mg_per_day=mg_per_day, hours=hours, dose_step_mg=dose_step_mg)
    return BagDose(
        number=number, hours=hours, step=step, mg_per_day=mg_per_day, dose_mg=dose, dose_step_mg=dose_step_mg
    )


def _hours(value: timedelta) -> str:
    hours = int(value.total_seconds() // 3600)
    return f"{hours} h"
