"""orders.schedule: when each dose falls (pure). Step-up doses on their days, later doses every cycle from the last
step's day; a schedule that cannot be read is refused naming the field, never guessed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from orders.schedule import dose_day_offsets, dose_offsets


def test_without_steps_every_cycle_from_day_one():
    assert dose_day_offsets(steps=[], cycle_days=21, number_of_doses=4) == [0, 21, 42, 63]


def test_teclistamab_steps_then_weekly_from_the_last_step():
    assert dose_day_offsets(steps=[(1, 1), (2, 4), (3, 7)], cycle_days=7, number_of_doses=6) == [0, 3, 6, 13, 20, 27]


def test_steps_may_cover_every_dose_and_come_in_any_order():
    assert dose_day_offsets(steps=[(2, 8), (1, 1)], cycle_days=28, number_of_doses=2) == [0, 7]


@pytest.mark.parametrize(
    ("steps", "cycle", "doses", "field"),
    [
        ([(1, 1), (3, 7)], 7, 5, "steps"),  # dose 2 missing
        ([(1, 1), (1, 4)], 7, 5, "steps"),  # dose 1 twice
        ([(1, 2), (2, 4)], 7, 5, "steps"),  # the first step is not on day 1
        ([(1, 1), (2, 1)], 7, 5, "steps"),  # days do not rise
        ([(1, 1), (2, 4), (3, 7)], 7, 2, "steps"),  # more steps than doses
        ([(1, 1)], 0, 3, "cycle_days"),  # doses after the steps with no cycle
        ([], 7, 0, "number_of_doses"),
    ],
)
def test_a_schedule_that_cannot_be_read_is_refused(steps, cycle, doses, field):
    with pytest.raises(ValidationError) as refused:
        dose_day_offsets(steps=steps, cycle_days=cycle, number_of_doses=doses)
    assert field in refused.value.message_dict


def test_a_first_interval_puts_dose_2_apart_then_every_cycle():
    # T-VEC: dose 2 three weeks after dose 1, then every two weeks
    assert dose_day_offsets(steps=[], cycle_days=14, number_of_doses=4, first_interval_days=21) == [0, 21, 35, 49]
    assert dose_day_offsets(steps=[], cycle_days=14, number_of_doses=1, first_interval_days=21) == [0]


@pytest.mark.parametrize(("steps", "first"), [([(1, 1), (2, 4)], 21), ([], 0)])
def test_a_first_interval_with_steps_or_below_a_day_is_refused_naming_it(steps, first):
    with pytest.raises(ValidationError) as refused:
        dose_day_offsets(steps=steps, cycle_days=14, number_of_doses=4, first_interval_days=first)
    assert "first_interval_days" in refused.value.message_dict


def test_a_first_interval_of_one_day_and_a_cycle_of_one_day_are_allowed():
    assert dose_day_offsets(steps=[], cycle_days=1, number_of_doses=3, first_interval_days=1) == [0, 1, 2]
    assert dose_day_offsets(steps=[], cycle_days=1, number_of_doses=3) == [0, 1, 2]


def test_steps_covering_every_dose_need_no_cycle():
    assert dose_day_offsets(steps=[(1, 1), (2, 4), (3, 7)], cycle_days=0, number_of_doses=3) == [0, 3, 6]


def test_a_single_dose_without_steps_is_day_one():
    assert dose_day_offsets(steps=[], cycle_days=28, number_of_doses=1) == [0]


def test_steps_are_given_as_tuples_or_lists():
    # the catalogue stores them as JSON lists
    assert dose_day_offsets(steps=[[1, 1], [2, 3]], cycle_days=7, number_of_doses=3) == [0, 2, 9]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"steps": [(1, 1), (2, 4)], "cycle_days": 14, "number_of_doses": 4, "first_interval_days": 21},
         "first_interval_days", "A regimen with step-up doses has no first interval."),
        ({"steps": [], "cycle_days": 14, "number_of_doses": 4, "first_interval_days": 0},
         "first_interval_days", "The first interval is at least 1 day."),
        ({"steps": [], "cycle_days": 14, "number_of_doses": 0},
         "number_of_doses", "A regimen has at least one dose."),
        ({"steps": [], "cycle_days": 14, "number_of_doses": 1, "first_interval_days": -3},
         "first_interval_days", "The first interval is at least 1 day."),
        ({"steps": [(1, 1), (3, 7)], "cycle_days": 7, "number_of_doses": 5},
         "steps", "The steps must be doses 1 to 2, each once (got [1, 3])."),
        ({"steps": [(2, 4), (3, 7)], "cycle_days": 7, "number_of_doses": 5},
         "steps", "The steps must be doses 1 to 2, each once (got [2, 3])."),
        ({"steps": [(1, 1), (2, 4), (3, 7)], "cycle_days": 7, "number_of_doses": 2},
         "steps", "3 steps for a regimen of 2 doses."),
        ({"steps": [(1, 2), (2, 4)], "cycle_days": 7, "number_of_doses": 5},
         "steps", "The first step is on day 1."),
        ({"steps": [(1, 0)], "cycle_days": 7, "number_of_doses": 5},
         "steps", "The first step is on day 1."),
        ({"steps": [(1, 1), (2, 5), (3, 4)], "cycle_days": 7, "number_of_doses": 5},
         "steps", "The step days must rise (got [1, 5, 4])."),
        ({"steps": [(1, 1), (2, 1)], "cycle_days": 7, "number_of_doses": 5},
         "steps", "The step days must rise (got [1, 1])."),
        ({"steps": [(1, 1)], "cycle_days": 0, "number_of_doses": 2},
         "cycle_days", "Doses after the steps need a cycle of at least 1 day."),
        ({"steps": [], "cycle_days": -7, "number_of_doses": 1},
         "cycle_days", "Doses after the steps need a cycle of at least 1 day."),
    ],
)  # fmt: skip
def test_each_refusal_names_its_field_with_its_reason(kwargs, field, message):
    with pytest.raises(ValidationError) as refused:
        dose_day_offsets(**kwargs)
    assert refused.value.message_dict == {field: [message]}


def test_a_first_interval_with_two_doses_puts_dose_2_at_the_interval_not_the_cycle():
    assert dose_day_offsets(steps=[], cycle_days=14, number_of_doses=2, first_interval_days=21) == [0, 21]


def test_dose_offsets_in_days_are_the_day_schedule_as_times():
    assert dose_offsets(steps=[(1, 1), (2, 4)], cycle_days=7, number_of_doses=4) == [
        timedelta(days=0), timedelta(days=3), timedelta(days=10), timedelta(days=17)
    ]  # fmt: skip
    assert dose_offsets(steps=[], cycle_days=14, number_of_doses=3, first_interval_days=21) == [
        timedelta(days=0), timedelta(days=21), timedelta(days=35)
    ]  # fmt: skip


def test_dose_offsets_every_so_many_hours():
    assert dose_offsets(steps=[], cycle_days=1, number_of_doses=3, cycle_hours=8) == [
        timedelta(hours=0), timedelta(hours=8), timedelta(hours=16)
    ]  # fmt: skip
    assert dose_offsets(steps=[], cycle_days=0, number_of_doses=2, cycle_hours=1) == [timedelta(0), timedelta(hours=1)]
    assert dose_offsets(steps=[], cycle_days=1, number_of_doses=1, cycle_hours=12) == [timedelta(0)]


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"steps": [(1, 1)], "cycle_hours": 8}, "cycle_hours",
         "Doses every so many hours have no steps and no first interval."),
        ({"first_interval_days": 21, "cycle_hours": 8}, "cycle_hours",
         "Doses every so many hours have no steps and no first interval."),
        ({"cycle_hours": 0}, "cycle_hours", "Doses are at least 1 hour apart."),
        ({"cycle_hours": 8, "number_of_doses": 0}, "number_of_doses", "A regimen has at least one dose."),
    ],
)  # fmt: skip
def test_dose_offsets_refusals_name_the_field(kwargs, field, reason):
    arguments = {"steps": [], "cycle_days": 1, "number_of_doses": 6, **kwargs}
    with pytest.raises(ValidationError) as refused:
        dose_offsets(**arguments)
    assert refused.value.message_dict == {field: [reason]}
