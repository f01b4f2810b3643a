"""Elapsed time and how a duration reads: shared by the beyond-use clocks, the bags, the thaw clocks and the
monitoring deadlines, so that a daylight-saving change in between never stretches or shortens a limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def after_elapsed(moment: datetime, elapsed: timedelta) -> datetime:
    """moment + elapsed time (added in UTC, as PostgreSQL adds an interval to a timestamptz), in moment's zone."""
    return (moment.astimezone(UTC) + elapsed).astimezone(moment.tzinfo)


def duration_text(value: timedelta) -> str:
    """Hours below two days (12 h, 24 h, 1 h 30 min, 30 min), whole days from there (4 days, 10 days)."""
    total_minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(total_minutes, 60)
    if minutes == 0 and hours >= 48 and hours % 24 == 0:
        return f"{hours // 24} days"
    if minutes:
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{hours} h"
