"""Batch files (FHS/BHS ... BTS/FTS): split them into messages, read their header, answer them with a batch."""

from __future__ import annotations

from datetime import datetime

from results.hl7.encoding import STANDARD, escape, unescape
from results.hl7.segments import BATCH_WRAPPERS, format_timestamp, segment_lines


def split_batch(text: str | bytes) -> list[str]:
    """Split a file of several messages into messages (\\r-separated, ending with \\r).

    A message starts at each MSH segment. FHS/BHS/BTS/FTS batch wrappers are dropped. Segments before the first
    MSH (other than wrappers) come back as a message of their own, so that parsing it reports the problem
    instead of the data vanishing.
    """
    messages: list[list[str]] = []
    for segment in segment_lines(text):
        if segment[:3] in BATCH_WRAPPERS:
            continue
        if segment.startswith("MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return ["\r".join(segments) + "\r" for segments in messages]


def batch_header(text: str | bytes) -> tuple[bool, bool, str]:
    """(has FHS, has BHS, BHS-11 batch control id) of a file or frame, read leniently."""
    has_file = has_batch = False
    batch_id = ""
    for segment in segment_lines(text):
        if segment.startswith("FHS"):
            has_file = True
        elif segment.startswith("BHS") and not has_batch:
            has_batch = True
            fields = segment.split(segment[3:4] or "|")  # fields[n - 1] is BHS-n, as for MSH
            batch_id = escape(unescape(fields[10].split("^")[0], STANDARD)) if len(fields) > 10 else ""
        elif segment.startswith("MSH") and has_batch:
            break
    return has_file, has_batch, batch_id


def wrap_batch(acks: list[str], *, text: str | bytes, now: datetime, control_id: str) -> str:
    """ACKs for the messages of a batch, in a batch of their own: BHS (BHS-11 a new id, BHS-12 the original
    BHS-11) ... BTS (count); inside FHS ... FTS when the original was a file. Acknowledgement of a batch is
    per message (HL7 v2.5 §2.10.3)."""
    has_file, _has_batch, batch_id = batch_header(text)
    moment = format_timestamp(now)
    segments = [f"BHS|^~\\&|LABFLOW||||{moment}||||{escape(control_id)}|{batch_id}".rstrip("|") + "\r"]
    segments += acks
    segments.append(f"BTS|{len(acks)}\r")
    if has_file:
        segments = [f"FHS|^~\\&|LABFLOW||||{moment}||||{escape(control_id)}\r", *segments, "FTS|1\r"]
    return "".join(segments)
