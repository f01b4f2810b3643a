"""core.times: elapsed time across a clock change, and how a duration reads (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.times import after_elapsed, duration_text

NEW_YORK = ZoneInfo("America/New_York")


def test_elapsed_time_across_the_night_the_clocks_go_back():
    due = datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK)  # EDT; 01:00-02:00 happens twice
    later = after_elapsed(due, timedelta(hours=2))
    assert later.astimezone(UTC) - due.astimezone(UTC) == timedelta(hours=2)  # same tzinfo: `-` is wall-clock
    assert later.tzinfo is NEW_YORK
    assert later.strftime("%H:%M %Z") == "01:30 EST"


def test_elapsed_time_across_the_night_the_clocks_go_forward():
    start = datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK)  # EST; 02:00-03:00 does not happen
    later = after_elapsed(start, timedelta(hours=1))
    assert later.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=1)
    assert later.strftime("%H:%M %Z") == "03:30 EDT"


def test_elapsed_time_keeps_a_utc_moment_in_utc():
    later = after_elapsed(datetime(2026, 1, 1, 23, tzinfo=UTC), timedelta(hours=2))
    assert later == datetime(2026, 1, 2, 1, tzinfo=UTC)
    assert later.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=30), "30 min"),
        (timedelta(minutes=59, seconds=59), "59 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=2, minutes=30), "2 h 30 min"),
        (timedelta(hours=24), "24 h"),
        (timedelta(hours=47), "47 h"),
        (timedelta(hours=48), "2 days"),
        (timedelta(hours=49), "49 h"),
        (timedelta(hours=48, minutes=30), "48 h 30 min"),
        (timedelta(days=10), "10 days"),
        (timedelta(0), "0 h"),
    ],
)
def test_duration_text(value, text):
    assert duration_text(value) == text
