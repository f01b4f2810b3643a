"""Beyond-use date and time (BUD) of a compounded sterile preparation, USP <797> (2023).

BUD = preparation time + the shorter of the USP <797> category limit for the storage and the drug's in-use
stability for that storage (from the label, per drug): administration must START by then. Some labels
(pembrolizumab, nivolumab, cemiplimab) count the in-use stability to the END of the infusion: a second clock.
Pure functions, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from core.times import after_elapsed, duration_text

__all__ = ["CATEGORY_LIMITS", "BeyondUse", "CompoundingCategory", "Storage", "administration_problem", "beyond_use"]


class CompoundingCategory(StrEnum):
    """Values match ``orders.choices.CompoundingCategory``."""

    IMMEDIATE = "immediate"  # administration starts within 4 h of preparation
    CATEGORY_1 = "category_1"  # ISO 5 hood in a segregated compounding area
    CATEGORY_2 = "category_2"  # clean room suite (aseptically prepared from sterile components)

    @property
    def label(self) -> str:
        return {
            CompoundingCategory.IMMEDIATE: "Immediate use",
            CompoundingCategory.CATEGORY_1: "Category 1",
            CompoundingCategory.CATEGORY_2: "Category 2",
        }[self]


class Storage(StrEnum):
    """Values match ``orders.choices.Storage``."""

    ROOM = "room"
    REFRIGERATED = "refrigerated"

    @property
    def label(self) -> str:
        return {Storage.ROOM: "room temperature", Storage.REFRIGERATED: "refrigerated"}[self]


# USP <797> (2023) limits. Category 2 values are for aseptically prepared CSPs from sterile starting components,
# without a sterility test.
CATEGORY_LIMITS: dict[tuple[CompoundingCategory, Storage], timedelta] = {
    (CompoundingCategory.IMMEDIATE, Storage.ROOM): timedelta(hours=4),
    (CompoundingCategory.IMMEDIATE, Storage.REFRIGERATED): timedelta(hours=4),
    (CompoundingCategory.CATEGORY_1, Storage.ROOM): timedelta(hours=12),
    (CompoundingCategory.CATEGORY_1, Storage.REFRIGERATED): timedelta(hours=24),
    (CompoundingCategory.CATEGORY_2, Storage.ROOM): timedelta(days=4),
    (CompoundingCategory.CATEGORY_2, Storage.REFRIGERATED): timedelta(days=10),
}


@dataclass(frozen=True)
class BeyondUse:
    at: datetime  # start administration by (USP <797> BUD), in prepared_at's time zone
    limited_by: Literal["category", "stability"]
    category_limit: timedelta
    stability_limit: timedelta | None  # the drug's in-use stability for the chosen storage, if known
    note: str  # one line for the label and the record (at most 200 characters)
    # End the infusion by: when the label's in-use stability includes the infusion time, else None.
    infusion_end_by: datetime | None = None

    @property
    def limit(self) -> timedelta:
        if self.limited_by == "stability" and self.stability_limit is not None:
            return self.stability_limit
        return self.category_limit


def beyond_use(
    *,
    prepared_at: datetime,
    category: CompoundingCategory,
    storage: Storage,
    stability_room: timedelta | None,
    stability_refrigerated: timedelta | None,
    stability_includes_infusion: bool = False,
) -> BeyondUse:
    """The beyond-use time of a preparation: two clocks, both from the start of preparation.

    ``prepared_at`` is when preparation STARTED (the first vial puncture or dilution), not when it was recorded or
    finished: USP <797> and the labels count from then. It must be timezone-aware (``ValueError`` otherwise).

    ``at`` (start administration by) = prepared_at + the shorter of the category limit and the in-use stability
    for the storage. When the category limit and the stability are equal, the category is named as the limit. A
    stability of None means none is known for that storage: the category limit alone applies.

    ``infusion_end_by`` = prepared_at + the in-use stability for the storage, when ``stability_includes_infusion``
    (the label counts that time to the end of the infusion) and that stability is known; None otherwise.

    The limits are elapsed time: they are added in UTC, so a daylight-saving change in between does not stretch or
    shorten them.
    """
    if prepared_at.tzinfo is None or prepared_at.utcoffset() is None:
        raise ValueError("prepared_at must be timezone-aware")
    category = CompoundingCategory(category)
    storage = Storage(storage)
    for name, value in (("stability_room", stability_room), ("stability_refrigerated", stability_refrigerated)):
        if value is not None and value <= timedelta(0):
            raise ValueError(f"{name} must be more than 0 (got {value})")

    category_limit = CATEGORY_LIMITS[(category, storage)]
    stability = stability_room if storage is Storage.ROOM else stability_refrigerated
    limited_by: Literal["category", "stability"]
    if stability is not None and stability < category_limit:
        limited_by, limit = "stability", stability
    else:
        limited_by, limit = "category", category_limit
    at = after_elapsed(prepared_at, limit)

    stability_text = (
        "no in-use stability given" if stability is None else f"in-use stability {duration_text(stability)}"
    )
    note = (
        f"{category.label}, {storage.label}: USP <797> limit {duration_text(category_limit)}, {stability_text}; "
        f"BUD {duration_text(limit)} after preparation ({limited_by} limit)"
    )
    if category is CompoundingCategory.IMMEDIATE:
        note += "; start administration by then"
    infusion_end_by = None
    if stability_includes_infusion and stability is not None:
        infusion_end_by = after_elapsed(prepared_at, stability)
        note += f"; infusion to end within {duration_text(stability)}"
    return BeyondUse(
        at=at,
        limited_by=limited_by,
        category_limit=category_limit,
        stability_limit=stability,
        note=note,
        infusion_end_by=infusion_end_by,
    )


def administration_problem(*, bud: BeyondUse, starts_at: datetime, infusion: timedelta) -> str | None:
    """Why an infusion of ``infusion`` starting at ``starts_at`` may not be given, or None when it may.

    It may not start after ``bud.at`` ("administration must begin by" the BUD: starting exactly at it is allowed),
    nor, when ``bud.infusion_end_by`` is set, end after that (ending exactly at it is allowed). The sentence gives
    the times as HH:MM with the date, in starts_at's time zone. The end is starts_at + infusion in elapsed time
    (across a daylight-saving change too). ``starts_at`` must be timezone-aware and ``infusion`` not negative
    (``ValueError`` otherwise).
    """
    if starts_at.tzinfo is None or starts_at.utcoffset() is None:
        raise ValueError("starts_at must be timezone-aware")
    if infusion < timedelta(0):
        raise ValueError(f"infusion must not be negative (got {infusion})")
    zone = starts_at.tzinfo
    if starts_at > bud.at:
        return (
            f"starting at {_clock(starts_at)} is after the beyond-use time {_clock(bud.at.astimezone(zone))}: "
            "administration must begin by then"
        )
    ends_at = after_elapsed(starts_at, infusion)
    if bud.infusion_end_by is not None and ends_at > bud.infusion_end_by:
        return (
            f"a {duration_text(infusion)} infusion starting at {_clock(starts_at)} ends at {_clock(ends_at)}, after "
            f"{_clock(bud.infusion_end_by.astimezone(zone))}: the in-use stability, which includes the infusion, "
            "runs out then"
        )
    return None


def _clock(moment: datetime) -> str:
    """ "14:30 on 2025-06-02" """
    return f"{moment:%H:%M} on {moment:%Y-%m-%d}"
