"""From text to segments, and decoded 1-based access to the fields of a python-hl7 segment; timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from results.hl7.encoding import Encoding, unescape
from results.hl7.errors import Hl7Error

#: Segments that wrap a batch file around messages; they belong to no message.
BATCH_WRAPPERS = ("FHS", "BHS", "BTS", "FTS")

_TIMESTAMP = re.compile(
    r"(?P<year>\d{4})(?:(?P<month>\d{2})(?:(?P<day>\d{2})(?:(?P<hour>\d{2})(?:(?P<minute>\d{2})"
    r"(?:(?P<second>\d{2})(?:\.(?P<fraction>\d{1,4}))?)?)?)?)?)?(?P<offset>[+-]\d{4})?"
)


# ---------------------------------------------------------------------------------------------------------
# Text → segments


def _decode(data: str | bytes) -> str:
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return data


def segment_lines(text: str | bytes) -> list[str]:
    """Segment strings: MLLP framing and BOM removed, any of \\r, \\n, \\r\\n as separator, blank lines dropped."""
    cleaned = _decode(text).replace("\ufeff", "").replace("\x0b", "").replace("\x1c", "")
    return [line.strip() for line in re.split(r"\r\n|\r|\n", cleaned) if line.strip()]


# ---------------------------------------------------------------------------------------------------------
# Walking python-hl7's tree


def _raw_field(segment: Any, position: int) -> Any:
    """Field ``position`` of a python-hl7 segment (MSH counted as in the standard), or None if absent."""
    return segment[position] if 0 < position < len(segment) else None


def leaf(node: Any, *path: int) -> str:
    """The raw (still escaped) string at ``path`` (repetition, component, sub-component; 1-based) under a field.

    A path going deeper than the tree ends at the leaf only when the remaining indexes are all 1; a tree deeper
    than the path is followed down its first branch.
    """
    for index in path:
        if node is None:
            return ""
        if isinstance(node, str):
            if index != 1:
                return ""
            continue
        if index > len(node):
            return ""
        node = node[index - 1]
    while node is not None and not isinstance(node, str):
        node = node[0] if len(node) else None
    return node or ""


class Segment:
    """A python-hl7 segment with decoded, 1-based field access."""

    def __init__(self, raw: Any, sequence: int, enc: Encoding) -> None:
        self.raw = raw
        self.id = str(raw[0])
        self.sequence = sequence
        self.enc = enc

    def get(self, position: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        return unescape(leaf(_raw_field(self.raw, position), repetition, component, subcomponent), self.enc)

    def repetitions(self, position: int) -> list[Any]:
        """The repetitions of a field (empty ones included)."""
        node = _raw_field(self.raw, position)
        return list(node) if node is not None else []

    def text(self, position: int, repetition_separator: str = "~") -> str:
        """The whole field decoded; components joined with ^, sub-components with &."""
        node = _raw_field(self.raw, position)
        return repetition_separator.join(self._render(rep, 1) for rep in node) if node is not None else ""

    def _render(self, node: Any, depth: int) -> str:
        if isinstance(node, str):
            return unescape(node, self.enc)
        joiner = "^" if depth == 1 else "&"
        return joiner.join(self._render(child, depth + 1) for child in node)

    def error(self, code: int, message: str, position: int | None = None, **kwargs: Any) -> Hl7Error:
        return Hl7Error(code, message, self.id, position, sequence=self.sequence, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# Timestamps


def parse_timestamp(value: str, tz: tzinfo | None = None) -> datetime | None:
    """An HL7 TS/DTM ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` as an aware datetime; None if empty.

    Without an offset the time is taken to be in ``tz`` (UTC when None). Raises ValueError when malformed.
    """
    value = value.strip()
    if not value:
        return None
    match = _TIMESTAMP.fullmatch(value)
    if not match:
        raise ValueError("malformed HL7 timestamp")
    parts = match.groupdict()
    zone: tzinfo = _zone(parts["offset"]) if parts["offset"] else tz or UTC
    fraction = parts["fraction"] or ""
    return datetime(
        int(parts["year"]),
        int(parts["month"] or 1),
        int(parts["day"] or 1),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
        tzinfo=zone,
    )


def _zone(offset: str) -> tzinfo:
    """The fixed zone of a ``+/-ZZZZ`` offset; ValueError when out of range."""
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    if hours > 14 or minutes > 59:
        raise ValueError("malformed HL7 timezone offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def timestamp(segment: Segment, position: int, tz: tzinfo | None, *, component: int = 1) -> datetime | None:
    """A timestamp field of a segment; a 102 :class:`Hl7Error` when malformed."""
    try:
        return parse_timestamp(segment.get(position, component), tz)
    except ValueError:
        raise segment.error(102, f"{segment.id}-{position} is not a valid HL7 timestamp", position) from None


def format_timestamp(moment: datetime) -> str:
    """A datetime as an HL7 DTM to the second, with its offset when it has one."""
    return moment.strftime("%Y%m%d%H%M%S") + (moment.strftime("%z") if moment.utcoffset() is not None else "")
