"""FHIR search parameters read from a query string: pure parsing, no database (docs/interfaces.md, FHIR R4 API).

Every function raises `SearchError` naming the parameter and the reason; the view answers it with a 400
OperationOutcome."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

LOINC = "http://loinc.org"
# Ids are database keys (bigint): anything else names no resource.
MAX_ID = 2**63 - 1
DEFAULT_COUNT = 50
MAX_COUNT = 100
DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt")
# Years a search may name: far enough for any record, and far from the ends of Python's and PostgreSQL's ranges
# (a period's end or a zone shift past year 9999 would overflow).
MIN_YEAR, MAX_YEAR = 1800, 2999
# YYYY, YYYY-MM, YYYY-MM-DD, or a dateTime with hours and minutes (seconds, fraction and zone optional).
_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?(?P<z>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class SearchError(ValueError):
    def __init__(self, param: str, reason: str, code: str = "invalid") -> None:
        super().__init__(f"Search parameter '{param}': {reason}")
        self.param = param
        self.code = code  # the OperationOutcome issue code


@dataclass(frozen=True)
class DateBound:
    """One `date` value: the instants it names, [start, end), and how to compare with them."""

    prefix: str
    start: datetime
    end: datetime


def ids(param: str, values: list[str]) -> list[int]:
    """`_id` or a reference (`patient=12`, `patient=Patient/12`), comma-separated values OR-ed. An id that is not a
    database key matches nothing (FHIR ids are strings), so it is dropped rather than refused."""
    found: list[int] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if param != "_id" and "/" in item:
                kind, _, item = item.partition("/")
                if kind != "Patient":
                    raise SearchError(param, f"a reference to {kind or 'nothing'} is not a Patient.")
            if not item:
                raise SearchError(param, "empty value.")
            if item.isascii() and item.isdigit() and len(item) <= 19 and 0 < int(item) <= MAX_ID:
                found.append(int(item))
    return found


def codes(param: str, values: list[str], system: str = LOINC) -> list[str]:
    """`code=system|code` or `code=code`; values OR-ed. A code of another system matches nothing."""
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            given_system, bar, code = item.partition("|")
            if not bar:
                given_system, code = system, item
            if not code.strip():
                raise SearchError(param, "empty code.")
            if given_system == system:
                found.append(code.strip())
    return found


def tokens(param: str, values: list[str], allowed: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            if item not in allowed:
                raise SearchError(param, f"'{item[:40]}' is not one of {', '.join(allowed)}.")
            found.append(item)
    return found


def dates(param: str, values: list[str], zone: ZoneInfo) -> list[DateBound]:
    """Each `date` value with its prefix; a value without a zone is the server's local time."""
    bounds = []
    for value in values:
        prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
        match = _DATE.match(text)
        if match is None:
            raise SearchError(param, f"'{value[:40]}' is not a FHIR date (YYYY, YYYY-MM-DD or a dateTime).")
        if not MIN_YEAR <= int(match["y"]) <= MAX_YEAR:
            raise SearchError(param, f"'{value[:40]}': the year must be {MIN_YEAR}-{MAX_YEAR}.")
        try:
            bounds.append(_bound(prefix, match, zone))
        except (ValueError, OverflowError) as error:
            raise SearchError(param, f"'{value[:40]}' is not a valid date: {error}.") from None
    return bounds


def _bound(prefix: str, match: re.Match[str], zone: ZoneInfo) -> DateBound:
    g = match.groupdict()
    year = int(g["y"])
    if g["m"] is None:
        start_day, end_day = date(year, 1, 1), date(year + 1, 1, 1)
    elif g["d"] is None:
        month = int(g["m"])
        start_day = date(year, month, 1)
        end_day = date(year + month // 12, month % 12 + 1, 1)
    else:
        start_day = date(year, int(g["m"]), int(g["d"]))
        end_day = start_day + timedelta(days=1)
    if g["H"] is None:
        start = datetime.combine(start_day, time(), zone)
        return DateBound(prefix, start, datetime.combine(end_day, time(), zone))
    tz: tzinfo = zone
    if g["z"] == "Z":
        tz = UTC
    elif g["z"]:
        sign = 1 if g["z"][0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(g["z"][1:3]), minutes=int(g["z"][4:6])))
    micro = int((g["f"] or "0").ljust(6, "0"))
    start = datetime(year, start_day.month, start_day.day, int(g["H"]), int(g["M"]), int(g["S"] or 0), micro, tz)
    # A dateTime names its own precision: to the second (or the minute when seconds are left out).
    step = timedelta(microseconds=1) if g["f"] else timedelta(seconds=1) if g["S"] else timedelta(minutes=1)
    return DateBound(prefix, start, start + step)


def count(values: list[str]) -> int:
    if not values:
        return DEFAULT_COUNT
    text = values[-1]
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise SearchError("_count", "must be a whole number of 1 or more.")
    return min(int(text), MAX_COUNT)


def offset(values: list[str]) -> int:
    if not values:
        return 0
    text = values[-1]
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise SearchError("_offset", "must be a whole number of 0 or more.")
    return int(text)
