"""orders.bud: beyond-use time = preparation + min(USP <797> category limit, in-use stability). No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from orders.bud import CATEGORY_LIMITS, BeyondUse, CompoundingCategory, Storage, administration_problem, beyond_use

PREPARED = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)

# (room, refrigerated) in-use stability after dilution, from the labels
PEMBROLIZUMAB = (6 * HOUR, 96 * HOUR)
NIVOLUMAB = (8 * HOUR, 24 * HOUR)
IPILIMUMAB = (24 * HOUR, 24 * HOUR)
ATEZOLIZUMAB = (6 * HOUR, 24 * HOUR)
DURVALUMAB = (4 * HOUR, 24 * HOUR)

IMMEDIATE, CAT_1, CAT_2 = CompoundingCategory.IMMEDIATE, CompoundingCategory.CATEGORY_1, CompoundingCategory.CATEGORY_2
ROOM, FRIDGE = Storage.ROOM, Storage.REFRIGERATED


def bud(category, storage, stability=(None, None), prepared_at=PREPARED, *, includes_infusion=False) -> BeyondUse:
    room, fridge = stability
    return beyond_use(
        prepared_at=prepared_at,
        category=category,
        storage=storage,
        stability_room=room,
        stability_refrigerated=fridge,
        stability_includes_infusion=includes_infusion,
    )


@pytest.mark.parametrize(
    ("category", "storage", "limit"),
    [
        (IMMEDIATE, ROOM, 4 * HOUR),
        (IMMEDIATE, FRIDGE, 4 * HOUR),
        (CAT_1, ROOM, 12 * HOUR),
        (CAT_1, FRIDGE, 24 * HOUR),
        (CAT_2, ROOM, 4 * DAY),
        (CAT_2, FRIDGE, 10 * DAY),
    ],
)
def test_category_limits(category, storage, limit):
    assert CATEGORY_LIMITS[(category, storage)] == limit
    result = bud(category, storage)  # no stability known: the category alone
    assert result.at == PREPARED + limit
    assert result.limited_by == "category"
    assert result.category_limit == limit
    assert result.stability_limit is None
    assert result.limit == limit


def test_every_category_and_storage_has_a_limit():
    assert set(CATEGORY_LIMITS) == {(c, s) for c in CompoundingCategory for s in Storage}


# The beyond-use time of each drug in each column: hours after preparation and what limits it, C the USP <797>
# category or S the in-use stability (equal limits name the category).
C, S = "category", "stability"
COLUMNS = [(IMMEDIATE, ROOM), (IMMEDIATE, FRIDGE), (CAT_1, ROOM), (CAT_1, FRIDGE), (CAT_2, ROOM), (CAT_2, FRIDGE)]
EARLIER = {
    "pembrolizumab": (PEMBROLIZUMAB, [(4, C), (4, C), (6, S), (24, C), (6, S), (96, S)]),
    "nivolumab": (NIVOLUMAB, [(4, C), (4, C), (8, S), (24, C), (8, S), (24, S)]),
    "ipilimumab": (IPILIMUMAB, [(4, C), (4, C), (12, C), (24, C), (24, S), (24, S)]),
    "atezolizumab": (ATEZOLIZUMAB, [(4, C), (4, C), (6, S), (24, C), (6, S), (24, S)]),
    "durvalumab": (DURVALUMAB, [(4, C), (4, C), (4, S), (24, C), (4, S), (24, S)]),
}


@pytest.mark.parametrize(
    ("stability", "category", "storage", "hours", "limited_by"),
    [
        pytest.param(stability, category, storage, hours, limited_by, id=f"{drug}-{category}-{storage}")
        for drug, (stability, cells) in EARLIER.items()
        for (category, storage), (hours, limited_by) in zip(COLUMNS, cells, strict=True)
    ],
)
def test_the_earlier_of_category_and_stability(stability, category, storage, hours, limited_by):
    result = bud(category, storage, stability)
    assert result.at == PREPARED + hours * HOUR
    assert result.limited_by == limited_by
    assert result.limit == hours * HOUR
    assert result.category_limit == CATEGORY_LIMITS[(category, storage)]
    assert result.stability_limit == (stability[0] if storage is ROOM else stability[1])


@pytest.mark.parametrize(
    ("category", "storage", "stability", "note"),
    [
        (
            CAT_1,
            ROOM,
            PEMBROLIZUMAB,
            "Category 1, room temperature: USP <797> limit 12 h, in-use stability 6 h; "
            "BUD 6 h after preparation (stability limit)",
        ),
        (
            CAT_1,
            FRIDGE,
            PEMBROLIZUMAB,
            "Category 1, refrigerated: USP <797> limit 24 h, in-use stability 4 days; "
            "BUD 24 h after preparation (category limit)",
        ),
        (
            CAT_2,
            FRIDGE,
            PEMBROLIZUMAB,
            "Category 2, refrigerated: USP <797> limit 10 days, in-use stability 4 days; "
            "BUD 4 days after preparation (stability limit)",
        ),
        (
            IMMEDIATE,
            ROOM,
            PEMBROLIZUMAB,
            "Immediate use, room temperature: USP <797> limit 4 h, in-use stability 6 h; "
            "BUD 4 h after preparation (category limit); start administration by then",
        ),
        (
            CAT_2,
            ROOM,
            (None, None),
            "Category 2, room temperature: USP <797> limit 4 days, no in-use stability given; "
            "BUD 4 days after preparation (category limit)",
        ),
        (
            CAT_1,
            ROOM,
            (90 * timedelta(minutes=1), None),
            "Category 1, room temperature: USP <797> limit 12 h, in-use stability 1 h 30 min; "
            "BUD 1 h 30 min after preparation (stability limit)",
        ),
        (
            CAT_1,
            ROOM,
            (timedelta(minutes=45), None),
            "Category 1, room temperature: USP <797> limit 12 h, in-use stability 45 min; "
            "BUD 45 min after preparation (stability limit)",
        ),
    ],
)
def test_note(category, storage, stability, note):
    result = bud(category, storage, stability)
    assert result.note == note
    assert len(result.note) <= 200  # Preparation.beyond_use_note


@pytest.mark.parametrize(
    ("stability", "text"),
    [(48 * HOUR, "2 days"), (47 * HOUR, "47 h"), (49 * HOUR, "49 h"), (72 * HOUR, "3 days"), (24 * HOUR, "24 h")],
)
def test_durations_are_days_from_two_days(stability, text):
    result = bud(CAT_2, FRIDGE, (None, stability))
    assert result.note.endswith(f"in-use stability {text}; BUD {text} after preparation (stability limit)")


def test_only_the_stability_for_the_chosen_storage_counts():
    # a short room-temperature stability does not limit a refrigerated preparation, and vice versa
    assert bud(CAT_1, FRIDGE, (HOUR, None)).limited_by == "category"
    assert bud(CAT_1, ROOM, (None, HOUR)).limited_by == "category"
    assert bud(CAT_1, FRIDGE, (None, HOUR)).at == PREPARED + HOUR


def test_strings_are_accepted_for_category_and_storage():
    result = bud("category_1", "refrigerated", PEMBROLIZUMAB)
    assert result.at == PREPARED + 24 * HOUR


@pytest.mark.parametrize(
    "prepared_at",
    [
        datetime(2025, 6, 2, 9, 0, tzinfo=ZoneInfo("America/New_York")),
        datetime(2025, 6, 2, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2025, 6, 2, 9, 0, tzinfo=UTC),
    ],
)
def test_the_time_zone_of_the_preparation_is_kept(prepared_at):
    result = bud(CAT_1, ROOM, PEMBROLIZUMAB, prepared_at=prepared_at)
    assert result.at.tzinfo is prepared_at.tzinfo
    assert result.at - prepared_at == 6 * HOUR
    assert result.at == prepared_at.replace(hour=15)


BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("prepared", "category", "storage", "expected"),
    [
        # Berlin springs forward at 02:00 on 30 March 2025: 4 elapsed hours from 00:30 CET end at 05:30 CEST
        (datetime(2025, 3, 30, 0, 30, tzinfo=BERLIN), IMMEDIATE, ROOM, "2025-03-30T05:30:00+02:00"),
        # and falls back at 03:00 on 26 October 2025: 12 h from 20:00 CEST end at 07:00 CET
        (datetime(2025, 10, 25, 20, 0, tzinfo=BERLIN), CAT_1, ROOM, "2025-10-26T07:00:00+01:00"),
        # no change in between: wall clock and elapsed time agree
        (datetime(2025, 6, 2, 20, 0, tzinfo=BERLIN), CAT_1, ROOM, "2025-06-03T08:00:00+02:00"),
    ],
)
def test_limits_are_elapsed_time_across_daylight_saving_changes(prepared, category, storage, expected):
    result = bud(category, storage, prepared_at=prepared)
    assert result.at.isoformat() == expected
    assert result.at.astimezone(UTC) - prepared.astimezone(UTC) == CATEGORY_LIMITS[(category, storage)]


class NoOffset(tzinfo):
    """A time zone that does not know its offset: as good as none."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None

    def tzname(self, dt):
        return None


@pytest.mark.parametrize(
    "prepared_at",
    [datetime(2025, 6, 2, 9, 0), datetime(2025, 6, 2, 9, 0, tzinfo=NoOffset())],  # noqa: DTZ001 - the point
)
def test_a_naive_preparation_time_is_refused(prepared_at):
    with pytest.raises(ValueError, match=r"^prepared_at must be timezone-aware$"):
        bud(CAT_1, ROOM, PEMBROLIZUMAB, prepared_at=prepared_at)


@pytest.mark.parametrize(
    ("stability", "name"), [((timedelta(0), None), "stability_room"), ((None, -HOUR), "stability_refrigerated")]
)
def test_a_non_positive_stability_is_refused(stability, name):
    with pytest.raises(ValueError, match=f"{name} must be more than 0"):
        bud(CAT_1, ROOM, stability)


@pytest.mark.parametrize(("category", "storage"), [("category_3", "room"), ("category_1", "frozen")])
def test_unknown_category_or_storage_is_refused(category, storage):
    with pytest.raises(ValueError, match="is not a valid"):
        bud(category, storage)


def test_the_values_match_the_model_choices():
    from orders import choices

    assert {c.value for c in CompoundingCategory} == set(choices.CompoundingCategory.values)
    assert {s.value for s in Storage} == set(choices.Storage.values)


# --- two clocks: start administration by, end the infusion by -----------------------------------------------------


def test_without_the_infusion_clock_there_is_no_end_time():
    result = beyond_use(
        prepared_at=PREPARED,
        category=CAT_1,
        storage=ROOM,
        stability_room=PEMBROLIZUMAB[0],
        stability_refrigerated=PEMBROLIZUMAB[1],
    )  # the infusion clock is off unless asked for
    assert result.infusion_end_by is None
    assert "infusion" not in result.note
    assert bud(CAT_1, ROOM, PEMBROLIZUMAB, includes_infusion=False).infusion_end_by is None


@pytest.mark.parametrize(
    ("stability", "category", "storage", "start_hours", "end_hours"),
    [
        (PEMBROLIZUMAB, CAT_1, ROOM, 6, 6),  # stability limits both
        (PEMBROLIZUMAB, CAT_1, FRIDGE, 24, 96),  # start by the category limit; end within the 96 h stability
        (PEMBROLIZUMAB, IMMEDIATE, ROOM, 4, 6),
        (NIVOLUMAB, CAT_2, ROOM, 8, 8),
        (NIVOLUMAB, CAT_1, FRIDGE, 24, 24),
    ],
)
def test_the_infusion_must_end_within_the_in_use_stability(stability, category, storage, start_hours, end_hours):
    result = bud(category, storage, stability, includes_infusion=True)
    assert result.at == PREPARED + start_hours * HOUR
    assert result.infusion_end_by == PREPARED + end_hours * HOUR
    assert result.limit == start_hours * HOUR


def test_the_infusion_clock_needs_a_known_stability():
    result = bud(CAT_1, FRIDGE, (6 * HOUR, None), includes_infusion=True)
    assert result.infusion_end_by is None
    assert "infusion" not in result.note


def test_the_note_names_the_infusion_clock():
    result = bud(CAT_1, FRIDGE, PEMBROLIZUMAB, includes_infusion=True)
    assert result.note == (
        "Category 1, refrigerated: USP <797> limit 24 h, in-use stability 4 days; "
        "BUD 24 h after preparation (category limit); infusion to end within 4 days"
    )


@pytest.mark.parametrize(
    ("category", "stability", "ending"),
    [  # the longest durations below each limit, with and without "start administration by then"
        (IMMEDIATE, 239 * MINUTE, "(stability limit); start administration by then; infusion to end within 3 h 59 min"),
        (CAT_1, 719 * MINUTE, "(stability limit); infusion to end within 11 h 59 min"),
        (CAT_2, 47 * HOUR + 59 * MINUTE, "(stability limit); infusion to end within 47 h 59 min"),
    ],
)
def test_the_longest_notes_fit(category, stability, ending):
    result = bud(category, ROOM, (stability, None), includes_infusion=True)
    assert result.note.endswith(ending)
    assert len(result.note) <= 200  # Preparation.beyond_use_note


def test_the_infusion_clock_keeps_the_time_zone_and_counts_elapsed_time():
    prepared = datetime(2025, 3, 29, 22, 0, tzinfo=BERLIN)  # 6 h across the spring-forward change
    result = bud(CAT_1, ROOM, PEMBROLIZUMAB, prepared_at=prepared, includes_infusion=True)
    assert result.infusion_end_by is not None
    assert result.infusion_end_by.isoformat() == "2025-03-30T05:00:00+02:00"
    assert result.infusion_end_by.tzinfo is BERLIN


# --- administration_problem ---------------------------------------------------------------------------------------


def nivolumab_room() -> BeyondUse:
    return bud(CAT_1, ROOM, NIVOLUMAB, includes_infusion=True)  # start by 17:00 UTC, end by 17:00 UTC


def test_starting_exactly_at_the_beyond_use_time_is_allowed():
    result = bud(CAT_1, ROOM, NIVOLUMAB)  # no infusion clock
    assert administration_problem(bud=result, starts_at=result.at, infusion=10 * HOUR) is None
    assert administration_problem(bud=result, starts_at=result.at + timedelta(minutes=1), infusion=HOUR) == (
        "starting at 17:01 on 2025-06-02 is after the beyond-use time 17:00 on 2025-06-02: "
        "administration must begin by then"
    )


def test_ending_exactly_at_the_end_of_the_stability_is_allowed():
    starts_at = datetime(2025, 6, 2, 16, 30, tzinfo=UTC)
    assert administration_problem(bud=nivolumab_room(), starts_at=starts_at, infusion=30 * timedelta(minutes=1)) is None
    assert administration_problem(bud=nivolumab_room(), starts_at=starts_at, infusion=31 * timedelta(minutes=1)) == (
        "a 31 min infusion starting at 16:30 on 2025-06-02 ends at 17:01 on 2025-06-02, after 17:00 on 2025-06-02: "
        "the in-use stability, which includes the infusion, runs out then"
    )


def test_a_late_start_is_named_before_a_late_end():
    problem = administration_problem(
        bud=nivolumab_room(), starts_at=datetime(2025, 6, 2, 18, 0, tzinfo=UTC), infusion=HOUR
    )
    assert problem is not None
    assert problem.startswith("starting at 18:00 on 2025-06-02 is after the beyond-use time 17:00")


def test_the_times_are_given_in_the_time_zone_of_the_start():
    new_york = ZoneInfo("America/New_York")
    starts_at = datetime(2025, 6, 2, 13, 30, tzinfo=new_york)  # 17:30 UTC
    assert administration_problem(bud=nivolumab_room(), starts_at=starts_at, infusion=HOUR) == (
        "starting at 13:30 on 2025-06-02 is after the beyond-use time 13:00 on 2025-06-02: "
        "administration must begin by then"
    )
    starts_at = datetime(2025, 6, 2, 12, 30, tzinfo=new_york)
    assert administration_problem(bud=nivolumab_room(), starts_at=starts_at, infusion=HOUR) == (
        "a 1 h infusion starting at 12:30 on 2025-06-02 ends at 13:30 on 2025-06-02, after 13:00 on 2025-06-02: "
        "the in-use stability, which includes the infusion, runs out then"
    )


def test_the_infusion_end_is_elapsed_time_across_a_daylight_saving_change():
    prepared = datetime(2025, 3, 30, 0, 30, tzinfo=BERLIN)  # 23:30 UTC
    use_by = bud(CAT_1, ROOM, (6 * HOUR, None), prepared_at=prepared, includes_infusion=True)
    assert use_by.infusion_end_by is not None
    assert use_by.infusion_end_by.isoformat() == "2025-03-30T07:30:00+02:00"
    starts_at = datetime(2025, 3, 30, 1, 30, tzinfo=BERLIN)
    assert administration_problem(bud=use_by, starts_at=starts_at, infusion=5 * HOUR) is None  # ends 07:30 CEST
    # 5 h 1 min: on the wall clock 06:31, but 5 h 1 min of elapsed time end at 07:31 CEST
    assert administration_problem(bud=use_by, starts_at=starts_at, infusion=5 * HOUR + timedelta(minutes=1)) == (
        "a 5 h 1 min infusion starting at 01:30 on 2025-03-30 ends at 07:31 on 2025-03-30, after 07:30 on "
        "2025-03-30: the in-use stability, which includes the infusion, runs out then"
    )


def test_administration_inputs_are_checked():
    for naive in (datetime(2025, 6, 2, 9, 0), datetime(2025, 6, 2, 9, 0, tzinfo=NoOffset())):  # noqa: DTZ001
        with pytest.raises(ValueError, match=r"^starts_at must be timezone-aware$"):
            administration_problem(bud=nivolumab_room(), starts_at=naive, infusion=HOUR)
    with pytest.raises(ValueError, match=r"infusion must not be negative \(got -1 day, 23:00:00\)"):
        administration_problem(bud=nivolumab_room(), starts_at=PREPARED, infusion=-HOUR)
    assert administration_problem(bud=nivolumab_room(), starts_at=PREPARED, infusion=timedelta(0)) is None
