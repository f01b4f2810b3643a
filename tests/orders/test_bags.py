"""orders.bags: a continuous infusion as a run of bags (pure; blinatumomab). Which bags, how long each runs, how much
each holds, whether the label's in-use time lets it run to its end, when the next is due; refusals name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from orders import bud
from orders.bags import (
    Bag,
    BagDose,
    BagError,
    DailyDose,
    bag_amount,
    bag_dose,
    bag_drug_problem,
    bag_record_problem,
    check_bag_hours,
    next_bag_due,
    plan_bags,
)

H = timedelta(hours=1)
UG = Decimal("0.001")
CYCLE_1 = [DailyDose(1, 1, Decimal("0.009")), DailyDose(2, 8, Decimal("0.028"))]  # 9 µg/day D1-7, 28 µg/day D8-28
ZONE = ZoneInfo("Europe/Berlin")


def plan(bag_hours: int, steps=CYCLE_1, days: int = 28, allowed=(24, 48)) -> list[Bag]:
    return plan_bags(steps=steps, infusion_days=days, bag_hours=bag_hours, allowed_hours=allowed, dose_step_mg=UG)


def test_cycle_1_in_24_h_bags_steps_from_9_to_28_ug_a_day_on_day_8():
    bags = plan(24)
    assert len(bags) == 28
    assert [b.number for b in bags] == list(range(1, 29))
    assert [b.offset for b in bags] == [n * 24 * H for n in range(28)]
    assert {b.hours for b in bags} == {24}
    assert [b.dose_mg for b in bags[:8]] == [Decimal("0.009")] * 7 + [Decimal("0.028")]
    assert [b.step for b in bags[6:8]] == [1, 2]
    assert [b.number for b in bags if b.starts_step] == [1, 8]
    assert bags[7].offset == 7 * 24 * H  # day 8
    assert bags[7].mg_per_day == Decimal("0.028")


def test_48_h_bags_never_span_the_step_the_last_bag_of_a_step_is_shorter():
    bags = plan(48)
    # days 1-7 (168 h): 48, 48, 48, 24; days 8-28 (504 h): ten of 48 h and one of 24 h
    assert [b.hours for b in bags] == [48, 48, 48, 24] + [48] * 10 + [24]
    assert [b.dose_mg for b in bags[:5]] == [Decimal("0.018")] * 3 + [Decimal("0.009"), Decimal("0.056")]
    assert (bags[4].offset, bags[4].starts_step, bags[4].step) == (168 * H, True, 2)
    assert [b.starts_step for b in bags[:5]] == [True, False, False, False, True]
    # back to back: each bag starts where the one before ends, the last ends after 28 days
    assert all(later.offset == earlier.offset + earlier.hours * H for earlier, later in pairwise(bags))
    assert bags[-1].offset + bags[-1].hours * H == 28 * 24 * H
    assert bags[-1].number == 15


def test_a_shorter_last_bag_must_itself_be_an_allowed_duration():
    with pytest.raises(BagError) as refused:
        plan(48, allowed=(48,))
    assert refused.value.field == "bag_hours"
    assert "Days 1-7 do not divide into 48 h bags: the last would run 24 h" in refused.value.reason


def test_a_bag_duration_the_regimen_does_not_allow_is_refused():
    with pytest.raises(BagError) as refused:
        plan(72)
    assert (refused.value.field, refused.value.reason) == (
        "bag_hours", "A 72 h bag is not one of this regimen's bag durations."
    )  # fmt: skip


def test_one_step_for_the_whole_infusion():
    bags = plan(48, steps=[DailyDose(1, 1, Decimal("0.028"))])
    assert len(bags) == 14
    assert {b.dose_mg for b in bags} == {Decimal("0.056")}
    assert [b.starts_step for b in bags] == [True] + [False] * 13


def test_steps_in_any_order_are_sorted_by_day():
    assert plan(24, steps=list(reversed(CYCLE_1))) == plan(24)


@pytest.mark.parametrize(
    ("steps", "days", "field", "reason"),
    [
        ([], 28, "steps", "A continuous infusion needs its daily dose (a step from day 1)."),
        ([DailyDose(1, 2, Decimal("0.009"))], 28, "steps", "The first daily dose starts on day 1."),
        (
            [DailyDose(1, 1, Decimal("0.009")), DailyDose(2, 1, Decimal("0.028"))], 28, "steps",
            "Two daily doses start on the same day (days [1, 1]).",
        ),
        (
            [DailyDose(1, 1, Decimal("0.009")), DailyDose(2, 29, Decimal("0.028"))], 28, "steps",
            "A daily dose starts on day 29, after the 28 days of infusion.",
        ),
        ([DailyDose(1, 1, Decimal(0))], 28, "steps", "The daily dose from day 1 must be more than 0."),
        ([DailyDose(1, 1, Decimal("0.009"))], 0, "infusion_days", "A continuous infusion runs at least 1 day."),
        (
            [DailyDose(1, 1, Decimal("0.009")), DailyDose(2, 8, Decimal("0.028")), DailyDose(3, 30, Decimal("0.028"))],
            28, "steps", "A daily dose starts on day 30, after the 28 days of infusion.",
        ),
    ],
)  # fmt: skip
def test_a_plan_that_cannot_be_read_is_refused_naming_the_field(steps, days, field, reason):
    with pytest.raises(BagError) as refused:
        plan(24, steps=steps, days=days)
    assert (refused.value.field, refused.value.reason) == (field, reason)
    assert str(refused.value) == f"{field}: {reason}"
    assert refused.value.args == (field, reason)


def test_a_step_on_the_last_day_gives_a_one_day_step():
    bags = plan(24, steps=[DailyDose(1, 1, Decimal("0.009")), DailyDose(2, 28, Decimal("0.028"))])
    assert (bags[-1].step, bags[-1].starts_step, len(bags)) == (2, True, 28)


def test_a_one_day_infusion_is_one_24_h_bag():
    bags = plan(24, steps=[DailyDose(1, 1, Decimal("0.009"))], days=1)
    assert [(b.number, b.hours, b.dose_mg) for b in bags] == [(1, 24, Decimal("0.009"))]


def test_a_dose_step_of_zero_is_refused():
    with pytest.raises(BagError) as refused:
        plan_bags(steps=CYCLE_1, infusion_days=28, bag_hours=24, allowed_hours=(24,), dose_step_mg=Decimal(0))
    assert (refused.value.field, refused.value.reason) == ("dose_step_mg", "The dose step must be more than 0.")


# --- the amount in a bag ------------------------------------------------------------------------------------------


def test_bag_amount_is_the_daily_dose_times_hours_over_24_half_up_to_the_step():
    assert bag_amount(mg_per_day=Decimal("0.028"), hours=48, dose_step_mg=UG) == Decimal("0.056")
    assert bag_amount(mg_per_day=Decimal("0.009"), hours=24, dose_step_mg=UG) == Decimal("0.009")
    # 0.0125 mg/day for 12 h = 0.00625 mg: half up to 0.006 at 0.001, 0.0063 at 0.0001
    assert bag_amount(mg_per_day=Decimal("0.0125"), hours=12, dose_step_mg=UG) == Decimal("0.006")
    assert bag_amount(mg_per_day=Decimal("0.0125"), hours=12, dose_step_mg=Decimal("0.0001")) == Decimal("0.0063")
    assert bag_amount(mg_per_day=Decimal("0.003"), hours=4, dose_step_mg=UG) == Decimal("0.001")  # 0.0005 half up


@pytest.mark.parametrize(
    ("mg", "hours", "step", "field", "reason"),
    [
        ("0.009", 0, "0.001", "bag_hours", "A bag runs at least 1 hour."),
        ("0.009", 24, "0", "dose_step_mg", "The dose step must be more than 0."),
        ("0", 24, "0.001", "steps", "The daily dose must be more than 0."),
        ("0.001", 1, "0.001", "steps", "A 1 h bag at 0.001 mg/day rounds to no dose."),
    ],
)
def test_bag_amount_refuses_naming_the_field(mg, hours, step, field, reason):
    with pytest.raises(BagError) as refused:
        bag_amount(mg_per_day=Decimal(mg), hours=hours, dose_step_mg=Decimal(step))
    assert (refused.value.field, refused.value.reason) == (field, reason)


def test_bag_dose_record_holds_every_input_and_no_volume():
    dose = bag_dose(number=5, hours=48, step=2, mg_per_day=Decimal("0.028"), dose_step_mg=UG)
    assert dose == BagDose(5, 48, 2, Decimal("0.028"), Decimal("0.056"), UG)
    assert dose.as_record() == {
        "basis": "continuous_infusion", "bag_number": "5", "bag_hours": "48", "step": "2", "mg_per_day": "0.028",
        "dose_mg": "0.056", "dose_step_mg": "0.001",
        "rounding_note": (
            "0.028 mg/day x 48 h / 24 h; the bag's volume is entered by the preparer from the label's table"
        ),
    }  # fmt: skip


# --- the bag duration against the label's in-use time ----------------------------------------------------------------


def check(bag_hours: int, allowed=(24, 48, 72), room=48 * H, includes=True) -> None:
    check_bag_hours(
        bag_hours=bag_hours, allowed_hours=allowed, stability_room=room, stability_includes_infusion=includes
    )


def test_bags_within_the_room_temperature_in_use_time_pass_up_to_and_including_it():
    check(24)
    check(48)  # the in-use time is 48 h: a 48 h bag just fits


def test_a_bag_longer_than_the_in_use_time_that_includes_the_infusion_is_refused():
    with pytest.raises(BagError) as refused:
        check(72)
    assert refused.value.field == "bag_hours"
    assert refused.value.reason == (
        "A 72 h bag would run past the label's in-use time of 48 h at room temperature, which includes the infusion."
    )


def test_a_duration_not_offered_is_refused_listing_the_offered_ones():
    with pytest.raises(BagError) as refused:
        check(96, allowed=(48, 24, 24))
    assert refused.value.field == "bag_hours"
    assert refused.value.reason == "A 96 h bag is not one of this regimen's bag durations (24 h, 48 h)."


def test_a_regimen_without_bag_durations_is_not_a_continuous_infusion():
    with pytest.raises(BagError) as refused:
        check(24, allowed=())
    assert refused.value.field == "bag_hours"
    assert refused.value.reason == "This regimen is not a continuous infusion: it has no bag durations."


@pytest.mark.parametrize(("room", "includes"), [(None, True), (48 * H, False)])
def test_without_an_in_use_time_that_includes_the_infusion_every_bag_is_refused(room, includes):
    with pytest.raises(BagError) as refused:
        check(24, room=room, includes=includes)
    assert refused.value.field == "bag_hours"
    assert refused.value.reason == (
        "The drug has no room-temperature in-use time that includes the infusion: a bag running for hours cannot be "
        "checked against its label."
    )


# --- the next bag, and a bag just prepared ---------------------------------------------------------------------------


def test_the_next_bag_is_due_when_this_one_runs_out_in_elapsed_time():
    started = datetime(2026, 3, 28, 10, 0, tzinfo=ZONE)  # the night of 29 March loses an hour in Berlin
    due = next_bag_due(started_at=started, hours=24)
    assert due == datetime(2026, 3, 29, 11, 0, tzinfo=ZONE)
    assert due.astimezone(UTC) - started.astimezone(UTC) == 24 * H  # elapsed, not wall-clock, hours
    assert due.tzinfo is ZONE
    assert next_bag_due(started_at=datetime(2026, 1, 1, 8, tzinfo=UTC), hours=1) == datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_next_bag_due_refuses_a_naive_time_or_no_hours():
    with pytest.raises(ValueError, match=r"^started_at must be timezone-aware$"):
        next_bag_due(started_at=datetime(2026, 1, 1, 8), hours=24)  # noqa: DTZ001 (the naive time is the point)
    with pytest.raises(ValueError, match=r"^started_at must be timezone-aware$"):  # a zone that knows no offset
        next_bag_due(started_at=datetime(2026, 1, 1, 8, tzinfo=_NoOffset()), hours=24)
    with pytest.raises(ValueError, match=r"hours must be at least 1 \(got 0\)"):
        next_bag_due(started_at=datetime(2026, 1, 1, 8, tzinfo=UTC), hours=0)


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def use_by(storage: bud.Storage, room=48 * H, fridge=8 * 24 * H, includes=True) -> bud.BeyondUse:
    return bud.beyond_use(
        prepared_at=datetime(2026, 6, 1, 8, tzinfo=UTC), category=bud.CompoundingCategory.CATEGORY_2, storage=storage,
        stability_room=room, stability_refrigerated=fridge, stability_includes_infusion=includes,
    )  # fmt: skip


def test_a_bag_that_could_run_its_hours_if_hung_at_once_may_be_recorded():
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    assert bag_record_problem(use_by=use_by(bud.Storage.ROOM), prepared_at=at, hours=48) is None  # ends exactly at it
    assert bag_record_problem(use_by=use_by(bud.Storage.REFRIGERATED), prepared_at=at, hours=48) is None


def test_a_bag_that_would_outlast_its_in_use_time_even_hung_at_once_is_refused():
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    problem = bag_record_problem(use_by=use_by(bud.Storage.ROOM, room=24 * H), prepared_at=at, hours=48)
    assert problem == (
        "even hung at once, a 2 days infusion starting at 08:00 on 2026-06-01 ends at 08:00 on 2026-06-03, after "
        "08:00 on 2026-06-02: the in-use stability, which includes the infusion, runs out then"
    )


def test_a_bag_without_an_end_of_infusion_clock_is_refused():
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    problem = bag_record_problem(use_by=use_by(bud.Storage.ROOM, includes=False), prepared_at=at, hours=24)
    assert problem == (
        "the label's in-use time for this storage does not cover the infusion: a bag running for hours cannot be "
        "checked"
    )


# --- the drug drawn into a bag --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "drawn", "strength"),
    [("0.018", "1.44", "0.0125"), ("0.018", "1.62", "0.0125"), ("0.009", "0.72", "0.0125"), ("0.056", "4.48", "1")],
)
def test_a_bag_holding_at_least_its_dose_may_be_recorded(dose, drawn, strength):
    problem = bag_drug_problem(dose_mg=Decimal(dose), drawn_ml=Decimal(drawn), strength_mg_per_ml=Decimal(strength))
    assert problem is None


def test_a_bag_holding_less_than_its_dose_is_refused_with_the_figures():
    problem = bag_drug_problem(dose_mg=Decimal("0.018"), drawn_ml=Decimal("1.43"), strength_mg_per_ml=Decimal("0.0125"))
    assert problem == "1.43 mL at 0.0125 mg/mL holds 0.017875 mg, less than the bag's dose of 0.018 mg"
    assert bag_drug_problem(dose_mg=Decimal("0.018"), drawn_ml=Decimal("0.7"), strength_mg_per_ml=Decimal("0.0125"))


@pytest.mark.parametrize(("drawn", "strength"), [("0", "0.0125"), ("-1", "0.0125"), ("1.44", "0"), ("1.44", "-0.0125")])
def test_no_volume_or_no_strength_is_refused(drawn, strength):
    problem = bag_drug_problem(dose_mg=Decimal("0.018"), drawn_ml=Decimal(drawn), strength_mg_per_ml=Decimal(strength))
    assert problem == ("no drug volume is recorded" if Decimal(strength) > 0 else
                       "the catalogue gives no strength for the reconstituted drug")  # fmt: skip
