"""The checks a message must pass, and the HL7 tables they use. Each raises :class:`Hl7Error` at the first problem.

Error messages name positions, never values: they go into ACKs and logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from results.hl7.encoding import Encoding
from results.hl7.errors import Hl7Error
from results.hl7.segments import Segment

#: HL7 table 0085, observation result status (OBX-11).
RESULT_STATUSES = frozenset("CDFINOPRSUWX")

#: HL7 table 0125, value type (OBX-2).
VALUE_TYPES = frozenset(
    {
        "AD", "CE", "CF", "CK", "CN", "CNE", "CP", "CWE", "CX", "DR", "DT", "DTM", "ED", "FT", "ID", "IS",
        "MA", "MO", "NA", "NM", "PN", "RP", "SN", "ST", "TM", "TN", "TS", "TX", "XAD", "XCN", "XON", "XPN", "XTN",
    }
)  # fmt: skip

#: Value types whose OBX-5 is a code (identifier ^ text ^ coding system ...).
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})

#: MSH-12 values LabFlow understands: HL7 v2.x.
V2_VERSION = re.compile(r"2\.\d+(?:\.\d+)?")

_SN_COMPARATORS = frozenset({"", "<", ">", "<=", ">=", "="})
_SN_SEPARATORS = frozenset({"", "-", "+", "/", ":"})
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


# ---------------------------------------------------------------------------------------------------------
# The message as a whole


def check_segment_lines(segments: list[str], enc: Encoding) -> None:
    """Every line is a segment (an ID, then the field separator) and only the first one is an MSH."""
    for index, segment in enumerate(segments):
        if not _SEGMENT_ID.fullmatch(segment[:3]) or (len(segment) > 3 and segment[3] != enc.field):
            raise Hl7Error(100, f"line {index + 1} is not an HL7 segment")
        if index and segment.startswith("MSH"):
            raise Hl7Error(100, "more than one message; split the batch first", "MSH", sequence=2)


@dataclass(frozen=True)
class MessageHeader:
    """The MSH fields that :func:`check_message_header` vouches for."""

    message_code: str  # MSH-9.1, upper case
    trigger: str  # MSH-9.2, upper case
    control_id: str  # MSH-10
    processing_id: str  # MSH-11, upper case
    version: str  # MSH-12


#: What the results parser accepts: message code → trigger events.
ORU_R01: dict[str, frozenset[str]] = {"ORU": frozenset({"R01"})}


def check_message_header(msh: Segment, accepted: dict[str, frozenset[str]] | None = None) -> MessageHeader:
    """MSH-9 is one of ``accepted`` (ORU^R01 by default), MSH-10 is given, MSH-11 is P, T or D (or empty), MSH-12
    is v2.x (or empty)."""
    accepted = accepted or ORU_R01
    wording = "only " + ", ".join(f"{code}^{t}" for code, triggers in accepted.items() for t in sorted(triggers))
    message_code, trigger = msh.get(9, 1).strip().upper(), msh.get(9, 2).strip().upper()
    if not message_code:
        raise msh.error(101, "MSH-9 message type is missing", 9)
    if message_code not in accepted:
        raise msh.error(200, f"{wording} is accepted", 9)
    if trigger not in accepted[message_code]:
        raise msh.error(201, f"{wording} is accepted", 9)
    control_id = msh.get(10).strip()
    if not control_id:
        raise msh.error(101, "MSH-10 message control id is missing", 10)
    processing_id = msh.get(11).strip().upper()
    if processing_id and processing_id[0] not in "PTD":
        raise msh.error(202, "MSH-11 processing id must be P, T or D", 11)
    version = msh.get(12).strip()
    if version and not V2_VERSION.fullmatch(version):
        raise msh.error(203, "MSH-12 version must be HL7 v2.x", 12)
    return MessageHeader(message_code, trigger, control_id, processing_id, version)


# ---------------------------------------------------------------------------------------------------------
# OBX


def check_value_type(seg: Segment, value_type: str, value: str) -> None:
    """OBX-2 is in table 0125, and given when OBX-5 is."""
    if value_type and value_type not in VALUE_TYPES:
        raise seg.error(103, "OBX-2 value type is not in HL7 table 0125", 2)
    if value and not value_type:
        raise seg.error(101, "OBX-2 value type is missing", 2)


def result_status(seg: Segment) -> str:
    """OBX-11, upper case: required, and in table 0085."""
    status = seg.get(11).strip().upper()
    if not status:
        raise seg.error(101, "OBX-11 result status is missing", 11)
    if status not in RESULT_STATUSES:
        raise seg.error(103, "OBX-11 result status is not in HL7 table 0085", 11)
    return status


def numeric_value(seg: Segment) -> str:
    """OBX-5 of an NM observation: a decimal number, or empty."""
    value = seg.get(5).strip()
    if value and not _NUMBER.fullmatch(value):
        raise seg.error(102, "OBX-5 is not numeric but OBX-2 is NM", 5)
    return value


def structured_numeric_value(seg: Segment) -> str:
    """OBX-5 of an SN observation rendered as text: ``<5``, ``>11.0``, ``1-3``, ``1:128``.

    SN: comparator ^ number ^ separator/suffix ^ number (v2.5 §2.A.74): "<^5", ">^11.0", "^1^-^3", "^1^:^128".
    """
    comparator, first, separator, second = (seg.get(5, n).strip() for n in (1, 2, 3, 4))
    for number in (first, second):
        if number and not _NUMBER.fullmatch(number):
            raise seg.error(102, "OBX-5 is not a valid structured numeric", 5)
    if comparator not in _SN_COMPARATORS or separator not in _SN_SEPARATORS:
        raise seg.error(102, "OBX-5 structured numeric has an unknown comparator or separator", 5)
    if (separator or second) and not (first and separator and (second or separator == "+")):
        raise seg.error(102, "OBX-5 structured numeric range or ratio needs two numbers", 5)
    if not first and (comparator or separator):
        raise seg.error(102, "OBX-5 structured numeric has no number", 5)
    return f"{'' if comparator == '=' else comparator}{first}{separator}{second}"
