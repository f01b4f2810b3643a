"""Beyond-use date and time (BUD) of a compounded sterile preparation, USP <797> (2023).

BUD = preparation time + the shorter of the USP <797> category limit for the storage and the drug's in-use
stability for that storage (from the label, per drug). Pure functions, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

__all__ = ["CATEGORY_LIMITS", "BeyondUse", "CompoundingCategory", "Storage", "beyond_use"]


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
    at: datetime  # in prepared_at's time zone
    limited_by: Literal["category", "stability"]
    category_limit: timedelta
    stability_limit: timedelta | None  # the drug's in-use stability for the chosen storage, if known
    note: str  # one line for the label and the record (at most 200 characters)

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
) -> BeyondUse:
    """The beyond-use time of a preparation.

    ``prepared_at`` must be timezone-aware (``ValueError`` otherwise). The limit is elapsed time: it is added in
    UTC, so a daylight-saving change in between does not stretch or shorten it. When the category limit and the
    stability are equal, the category is named as the limit. A stability of None means none is known for that
    storage: the category limit alone applies.
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
    at = (prepared_at.astimezone(UTC) + limit).astimezone(prepared_at.tzinfo)

    stability_text = "no in-use stability given" if stability is None else f"in-use stability {_duration(stability)}"
    note = (
        f"{category.label}, {storage.label}: USP <797> limit {_duration(category_limit)}, {stability_text}; "
        f"BUD {_duration(limit)} after preparation ({limited_by} limit)"
    )
    if category is CompoundingCategory.IMMEDIATE:
        note += "; start administration by then"
    return BeyondUse(at=at, limited_by=limited_by, category_limit=category_limit, stability_limit=stability, note=note)


def _duration(value: timedelta) -> str:
    """Hours below two days (12 h, 24 h, 1 h 30 min), whole days from there (4 days, 10 days)."""
    total_minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(total_minutes, 60)
    if minutes == 0 and hours >= 48 and hours % 24 == 0:
        return f"{hours // 24} days"
    if minutes:
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{hours} h"
