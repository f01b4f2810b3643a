"""When each dose of a regimen falls: step-up doses on their own days, then every cycle (pure; no database).

A regimen without steps gives dose n on day 1 + (n - 1) x cycle days. With steps (teclistamab: doses 1, 2, 3 on
days 1, 4, 7) the steps give their doses' days, and the doses after the last step continue every cycle from the
last step's day (dose 4 on day 14). Days count from 1, the first dose's day; the offsets returned count from 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise

from django.core.exceptions import ValidationError


def dose_day_offsets(
    *, steps: Sequence[tuple[int, int]], cycle_days: int, number_of_doses: int, first_interval_days: int | None = None
) -> list[int]:
    """Days after the first dose, one per dose 1..number_of_doses. `steps` are (dose number, day) pairs; they
    must be doses 1..k with days from 1, rising, and k at most the number of doses (else ValidationError naming
    `steps`: a schedule that cannot be read is refused, never guessed). Without steps, `first_interval_days`
    puts dose 2 that many days after dose 1, then every cycle (T-VEC: day 21, then every 14 days)."""
    if first_interval_days is not None:
        if steps:
            raise ValidationError({"first_interval_days": "A regimen with step-up doses has no first interval."})
        if first_interval_days < 1:
            raise ValidationError({"first_interval_days": "The first interval is at least 1 day."})
        steps = [(1, 1), (2, 1 + first_interval_days)] if number_of_doses > 1 else []
    if number_of_doses < 1:
        raise ValidationError({"number_of_doses": "A regimen has at least one dose."})
    ordered = sorted(steps)
    numbers = [number for number, _ in ordered]
    if numbers != list(range(1, len(ordered) + 1)):
        raise ValidationError({"steps": f"The steps must be doses 1 to {len(ordered)}, each once (got {numbers})."})
    if len(ordered) > number_of_doses:
        raise ValidationError({"steps": f"{len(ordered)} steps for a regimen of {number_of_doses} doses."})
    days = [day for _, day in ordered]
    if days and days[0] != 1:
        raise ValidationError({"steps": "The first step is on day 1."})
    if any(later <= earlier for earlier, later in pairwise(days)):
        raise ValidationError({"steps": f"The step days must rise (got {days})."})
    if cycle_days < 1 and number_of_doses > len(ordered):
        raise ValidationError({"cycle_days": "Doses after the steps need a cycle of at least 1 day."})
    offsets = [day - 1 for day in days]
    last = offsets[-1] if offsets else -cycle_days
    while len(offsets) < number_of_doses:
        last += cycle_days
        offsets.append(last)
    return offsets


def dose_offsets(
    *,
    steps: Sequence[tuple[int, int]],
    cycle_days: int,
    number_of_doses: int,
    first_interval_days: int | None = None,
    cycle_hours: int | None = None,
) -> list[timedelta]:
    """The time after the first dose of each dose: `dose_day_offsets` in days, or every `cycle_hours` for doses
    that come within a day (aldesleukin every 8 h). Hours exclude steps and a first interval (refused naming
    `cycle_hours`)."""
    if cycle_hours is None:
        days = dose_day_offsets(
            steps=steps, cycle_days=cycle_days, number_of_doses=number_of_doses, first_interval_days=first_interval_days
        )
        return [timedelta(days=day) for day in days]
    if steps or first_interval_days is not None:
        raise ValidationError({"cycle_hours": "Doses every so many hours have no steps and no first interval."})
    if cycle_hours < 1:
        raise ValidationError({"cycle_hours": "Doses are at least 1 hour apart."})
    if number_of_doses < 1:
        raise ValidationError({"number_of_doses": "A regimen has at least one dose."})
    return [timedelta(hours=n * cycle_hours) for n in range(number_of_doses)]
