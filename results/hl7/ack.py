"""Acknowledgements: original-mode ACK messages for any HL7 v2 version, and the parse-process-answer glue."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from results.hl7.encoding import STANDARD, encoding_of, escape, reencode, unescape
from results.hl7.errors import AckCode, Hl7Error
from results.hl7.messages import OruMessage
from results.hl7.parsing import parse_oru
from results.hl7.segments import format_timestamp, segment_lines
from results.hl7.validation import V2_VERSION

DEFAULT_VERSION = "2.5.1"


# ---------------------------------------------------------------------------------------------------------
# The original's header


@dataclass(frozen=True)
class _Header:
    """MSH fields of an original message, re-encoded with the standard delimiters."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""


def _read_header(original: str | bytes | OruMessage | None) -> _Header | None:
    """Leniently read the MSH of anything: it must work for a message that failed to parse."""
    if original is None:
        return None
    if isinstance(original, OruMessage):
        return _message_header(original)
    return _text_header(original)


def _message_header(message: OruMessage) -> _Header:
    """The MSH a parsed message was received with, else one rebuilt from its fields."""
    header = _read_header(message.raw_msh) if message.raw_msh else None
    return header or _Header(
        sending_application=escape(message.sending_application),
        sending_facility=escape(message.sending_facility),
        receiving_application=escape(message.receiving_application),
        receiving_facility=escape(message.receiving_facility),
        trigger=message.message_type.partition("^")[2],
        control_id=escape(message.control_id),
        processing_id=escape(message.processing_id),
        version=escape(message.version),
    )


def _text_header(text: str | bytes) -> _Header | None:
    """The first MSH of a text, split by hand (python-hl7 may not manage); None when there is none readable."""
    msh = next((s for s in segment_lines(text) if s.startswith("MSH")), None)
    if msh is None:
        return None
    try:
        enc = encoding_of(msh)
    except Hl7Error:
        return None
    fields = msh.split(enc.field)  # fields[n - 1] is MSH-n for n >= 2

    def raw(position: int) -> str:
        return fields[position - 1] if position - 1 < len(fields) else ""

    def first(position: int, component: int = 1) -> str:
        parts = raw(position).split(enc.repetition)[0].split(enc.component)
        value = parts[component - 1] if component <= len(parts) else ""
        return escape(unescape(value.split(enc.subcomponent)[0], enc).strip())

    return _Header(
        sending_application=reencode(raw(3), enc),
        sending_facility=reencode(raw(4), enc),
        receiving_application=reencode(raw(5), enc),
        receiving_facility=reencode(raw(6), enc),
        trigger=first(9, 2),
        control_id=first(10),
        processing_id=first(11),
        version=first(12),
    )


def control_id_of(text: str | bytes) -> str:
    """MSH-10 of a message, read leniently ("" when unreadable). Not patient data: safe to log."""
    header = _read_header(text)
    return unescape(header.control_id, STANDARD) if header else ""


# ---------------------------------------------------------------------------------------------------------
# ACK


def build_ack(
    *,
    original_text_or_message: str | bytes | OruMessage | None,
    code: AckCode,
    text: str = "",
    error: Hl7Error | None = None,
    now: datetime,
    control_id: str,
    sending_application: str | None = None,
    sending_facility: str | None = None,
) -> str:
    """An original-mode ACK valid for the original's own version (v2.1 to v2.8), \r-separated, ending with \r.

    MSH-3/4 of the ACK are the original's MSH-5/6 (unless ``sending_application``/``sending_facility`` are
    given), MSH-5/6 the original's MSH-3/4; MSH-10 ``control_id``; MSH-11/12 copied (defaults P and 2.5.1; a
    version that is not 2.x is answered in 2.5.1). MSH-9 by version: ``ACK`` (v2.1), ``ACK^<trigger>``
    (v2.2 to v2.3: message type and trigger event), ``ACK^<trigger>^ACK`` (from v2.3.1, which added the message
    structure). MSA-2 is the original MSH-10; when no MSH can be read from the original at all, MSA-2 is empty
    and the code is AR whatever was asked. MSA-3 is ``text``, else the error's message (neither carries values
    or names: callers pass positions and codes only).

    The error, by version: from v2.5 ``ERR||SEG^sequence^field|code^text^HL70357|E||||message`` (ERR-1 is
    withdrawn there, ERR-2 locates, ERR-3 codes, ERR-4 is the severity, ERR-8 the user message); before v2.5,
    which know only ERR-1 (ELD), ``ERR|SEG^sequence^field^code&text&HL70357`` and MSA-6 ``code^text^HL70357``.
    """
    header = _read_header(original_text_or_message)
    if header is None:
        header, code = _Header(), "AR"
    version = header.version if V2_VERSION.fullmatch(header.version) else DEFAULT_VERSION
    msh = [
        "MSH",
        "^~\\&",
        escape(sending_application) if sending_application is not None else header.receiving_application,
        escape(sending_facility) if sending_facility is not None else header.receiving_facility,
        header.sending_application,
        header.sending_facility,
        format_timestamp(now),
        "",
        ack_message_type(version, header.trigger or "R01"),
        escape(control_id),
        header.processing_id or "P",
        version,
    ]
    message_text = text or (error.message if error is not None else "")
    msa = ["MSA", code, header.control_id, escape(message_text)]
    segments = [msh, msa]
    if error is not None:
        segments.append(_error_segment(error, version_numbers(version), msa))
    return "".join("|".join(fields).rstrip("|") + "\r" for fields in segments)


def _error_segment(error: Hl7Error, numbers: tuple[int, ...], msa: list[str]) -> list[str]:
    """The ERR segment of ``error`` in the version ``numbers``; before v2.5 (from v2.2), also fills MSA-6."""
    error_code = f"{error.code}^{escape(error.text)}^HL70357"
    if numbers >= (2, 5):
        return ["ERR", "", error.location, error_code, "E", "", "", "", escape(error.message)]
    located = error.segment is not None
    eld = [
        error.segment or "",
        str(error.sequence) if located and error.sequence else "",
        str(error.field) if located and error.field is not None else "",
        error_code.replace("^", "&"),
    ]
    if numbers >= (2, 2):
        msa += ["", "", error_code]  # MSA-6 error condition (v2.2 to v2.4)
    return ["ERR", "^".join(eld)]


def version_numbers(version: str) -> tuple[int, ...]:
    """``"2.5.1"`` → (2, 5, 1); the default version's numbers when unreadable."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    return numbers if numbers else version_numbers(DEFAULT_VERSION)


def ack_message_type(version: str, trigger: str) -> str:
    """MSH-9 of an ACK in ``version``: ACK (v2.1), ACK^R01 (v2.2 to v2.3), ACK^R01^ACK (from v2.3.1)."""
    numbers = version_numbers(version)
    if numbers < (2, 2):
        return "ACK"
    if numbers < (2, 3, 1):
        return f"ACK^{trigger}"
    return f"ACK^{trigger}^ACK"


def new_control_id(now: datetime | None = None) -> str:
    """A fresh MSH-10 of 20 characters: a UTC timestamp and 6 random hex digits."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)


def acknowledge(
    text: str | bytes,
    process: Callable[[OruMessage], object],
    *,
    now: datetime | None = None,
    control_id: str | None = None,
    tz: tzinfo | None = None,
) -> str:
    """Parse, hand the message to ``process`` and answer with an ACK — the glue for an MLLP handler.

    AA when ``process`` returns (a str it returns becomes MSA-3). An :class:`Hl7Error` raised by parsing or by
    ``process`` (e.g. 204 unknown accession) becomes AE/AR with an ERR segment. Any other exception propagates:
    the MLLP server answers it with AE/207.
    """
    moment = now or datetime.now(UTC)
    ack_id = control_id or new_control_id(moment)
    try:
        message = parse_oru(text, tz=tz)
    except Hl7Error as exc:
        return build_ack(original_text_or_message=text, code=exc.ack_code, error=exc, now=moment, control_id=ack_id)
    try:
        result = process(message)
    except Hl7Error as exc:
        return build_ack(original_text_or_message=message, code=exc.ack_code, error=exc, now=moment, control_id=ack_id)
    return build_ack(
        original_text_or_message=message,
        code="AA",
        text=result if isinstance(result, str) else "",
        now=moment,
        control_id=ack_id,
    )
