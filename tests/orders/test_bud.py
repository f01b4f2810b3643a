"""orders.bud: beyond-use time = preparation + min(USP <797> category limit, in-use stability). No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from orders.bud import CATEGORY_LIMITS, BeyondUse, CompoundingCategory, Storage, beyond_use

PREPARED = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# (room, refrigerated) in-use stability after dilution, from the labels
PEMBROLIZUMAB = (6 * HOUR, 96 * HOUR)
NIVOLUMAB = (8 * HOUR, 24 * HOUR)
IPILIMUMAB = (24 * HOUR, 24 * HOUR)
ATEZOLIZUMAB = (6 * HOUR, 24 * HOUR)
DURVALUMAB = (4 * HOUR, 24 * HOUR)

IMMEDIATE, CAT_1, CAT_2 = CompoundingCategory.IMMEDIATE, CompoundingCategory.CATEGORY_1, CompoundingCategory.CATEGORY_2
ROOM, FRIDGE = Storage.ROOM, Storage.REFRIGERATED


def bud(category, storage, stability=(None, None), prepared_at=PREPARED) -> BeyondUse:
    room, fridge = stability
    return beyond_use(
        prepared_at=prepared_at,
        category=category,
        storage=storage,
        stability_room=room,
        stability_refrigerated=fridge,
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


@pytest.mark.parametrize(
    ("stability", "category", "storage", "hours", "limited_by"),
    [
        # pembrolizumab diluted: 6 h room, 96 h refrigerated
        (PEMBROLIZUMAB, CAT_1, ROOM, 6, "stability"),
        (PEMBROLIZUMAB, CAT_1, FRIDGE, 24, "category"),
        (PEMBROLIZUMAB, CAT_2, ROOM, 6, "stability"),
        (PEMBROLIZUMAB, CAT_2, FRIDGE, 96, "stability"),
        (PEMBROLIZUMAB, IMMEDIATE, ROOM, 4, "category"),
        (PEMBROLIZUMAB, IMMEDIATE, FRIDGE, 4, "category"),
        # nivolumab: 8 h room, 24 h refrigerated
        (NIVOLUMAB, CAT_1, ROOM, 8, "stability"),
        (NIVOLUMAB, CAT_1, FRIDGE, 24, "category"),  # equal: the category is named
        (NIVOLUMAB, CAT_2, FRIDGE, 24, "stability"),
        # ipilimumab: 24 h either way
        (IPILIMUMAB, CAT_1, ROOM, 12, "category"),
        (IPILIMUMAB, CAT_2, ROOM, 24, "stability"),
        (IPILIMUMAB, CAT_2, FRIDGE, 24, "stability"),
        # durvalumab: 4 h room
        (DURVALUMAB, IMMEDIATE, ROOM, 4, "category"),
        (DURVALUMAB, CAT_1, ROOM, 4, "stability"),
        (ATEZOLIZUMAB, CAT_2, ROOM, 6, "stability"),
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


def test_a_naive_preparation_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        bud(CAT_1, ROOM, PEMBROLIZUMAB, prepared_at=datetime(2025, 6, 2, 9, 0))  # noqa: DTZ001 - the point


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
