"""HL7 v2 laboratory results: parse ORU^R01, build ACKs, split batch files.

Pure protocol code, no Django. The ``hl7`` package (python-hl7) splits a message into segments, fields,
repetitions, components and sub-components; this module walks that tree and decodes escape sequences
itself (python-hl7's own ``unescape`` logs the field's content on a malformed escape, and a field can hold
patient data).

Error messages (``Hl7Error.message``) name positions, never values: they go into ACKs and logs.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal

import hl7  # type: ignore[import-untyped]

AckCode = Literal["AA", "AE", "AR"]

DEFAULT_VERSION = "2.5.1"

#: HL7 table 0357, message error condition codes.
ERROR_TEXT: dict[int, str] = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    104: "Value too long",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}

#: Codes that reject the message as a whole (MSA-1 AR) rather than report an error in its content (AE).
REJECT_CODES = frozenset({200, 201, 202, 203})

#: HL7 table 0085, observation result status (OBX-11).
RESULT_STATUSES = frozenset("CDFINOPRSUWX")

#: HL7 table 0125, value type (OBX-2).
VALUE_TYPES = frozenset(
    {
        "AD", "CE", "CF", "CK", "CN", "CNE", "CP", "CWE", "CX", "DR", "DT", "DTM", "ED", "FT", "ID", "IS",
        "MA", "MO", "NA", "NM", "PN", "RP", "SN", "ST", "TM", "TN", "TS", "TX", "XAD", "XCN", "XON", "XPN", "XTN",
    }
)  # fmt: skip

_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
_SN_COMPARATORS = frozenset({"", "<", ">", "<=", ">=", "="})
_SN_SEPARATORS = frozenset({"", "-", "+", "/", ":"})
_LINE_TYPES = frozenset({"TX", "FT"})
_BATCH_WRAPPERS = ("FHS", "BHS", "BTS", "FTS")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_TIMESTAMP = re.compile(
    r"(?P<year>\d{4})(?:(?P<month>\d{2})(?:(?P<day>\d{2})(?:(?P<hour>\d{2})(?:(?P<minute>\d{2})"
    r"(?:(?P<second>\d{2})(?:\.(?P<fraction>\d{1,4}))?)?)?)?)?)?(?P<offset>[+-]\d{4})?"
)


class Hl7Error(Exception):
    """A message that cannot be used, with its HL7 table 0357 code and where the problem is.

    ``segment``/``sequence``/``field`` locate the problem (ERR-2: segment ID, 1-based occurrence of that
    segment in the message, field position). ``ack_code`` is the MSA-1 the error deserves: AR for an
    unsupported message type, event, processing id or version and for unreadable data, AE otherwise.
    """

    def __init__(
        self,
        code: int,
        message: str,
        segment: str | None = None,
        field: int | None = None,
        *,
        sequence: int | None = None,
        ack_code: AckCode | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.segment = segment
        self.field = field
        self.sequence = sequence if sequence is not None else (1 if segment else None)
        self.ack_code: AckCode = ack_code or ("AR" if code in REJECT_CODES else "AE")
        super().__init__(f"{code} {self.text}: {message}")

    @property
    def text(self) -> str:
        """The table 0357 wording of the code."""
        return ERROR_TEXT.get(self.code, "Error")

    @property
    def location(self) -> str:
        """ERR-2 (ERL) as components: ``SEG^sequence^field``; empty when the error has no segment."""
        if not self.segment:
            return ""
        parts = [self.segment, str(self.sequence or 1)]
        if self.field is not None:
            parts.append(str(self.field))
        return "^".join(parts)


@dataclass
class Observation:
    """One OBX segment."""

    set_id: str
    loinc_code: str  # OBX-3.1 when OBX-3.3 is LN (else OBX-3.4 when OBX-3.6 is LN), "" otherwise
    name: str
    value_type: str
    value: str
    unit: str
    reference_range: str
    abnormal_flags: str  # OBX-8 repetitions joined with "~" (table 0078: L, H, LL, HH, A, AA, N, ...)
    status: str
    observed_at: datetime | None
    code: str = ""  # OBX-3.1 whatever the coding system
    coding_system: str = ""  # OBX-3.3
    accession: str = ""  # of the OBR group this OBX belongs to
    notes: list[str] = field(default_factory=list)  # NTE-3 of the NTE segments following the OBX
    sequence: int = 0  # 1-based occurrence of this OBX in the message (ERR-2 locations)
    coded: Coded | None = None  # OBX-5 of a coded value type (CE, CWE, CNE, CF)
    accession_at: tuple[str, int, int] = ("SPM", 1, 2)  # where the accession was read (segment, sequence, field)


@dataclass(frozen=True)
class Coded:
    """A coded OBX-5 (CE/CWE/CNE): identifier, text and coding system, and the alternate triplet."""

    code: str
    text: str
    system: str
    alt_code: str = ""
    alt_text: str = ""
    alt_system: str = ""


@dataclass
class OruMessage:
    """The parts of an ORU^R01 that a laboratory result store needs."""

    control_id: str
    sending_application: str
    sending_facility: str
    message_type: str
    patient_mrn: str
    patient_family: str
    patient_given: str
    patient_birth_date: date | None
    accession: str  # of the first OBR group: SPM-2, else OBR-3, else OBR-2; "" when none is given
    observations: list[Observation]
    receiving_application: str = ""
    receiving_facility: str = ""
    version: str = ""
    processing_id: str = ""
    collected_at: datetime | None = None  # SPM-17.1, else OBR-7, of the first OBR group
    notes: list[str] = field(default_factory=list)  # NTE not attached to an OBX
    raw_msh: str = field(default="", repr=False, compare=False)  # the MSH segment as received, for the ACK


# ---------------------------------------------------------------------------------------------------------
# Encoding characters, escape sequences


@dataclass(frozen=True)
class _Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


_STANDARD = _Encoding()


def _encoding_of(msh: str) -> _Encoding:
    """The delimiters declared in an MSH segment (MSH-1, MSH-2)."""
    if len(msh) < 5 or not msh.startswith("MSH"):
        raise Hl7Error(100, "message does not start with an MSH segment", "MSH", ack_code="AR")
    sep = msh[3]
    end = msh.find(sep, 4)
    chars = msh[4:] if end < 0 else msh[4:end]
    if sep.isalnum() or sep.isspace() or not 2 <= len(chars) <= 5 or len(set(chars + sep)) != len(chars) + 1:
        raise Hl7Error(102, "MSH-1/MSH-2 encoding characters are invalid", "MSH", 2, ack_code="AR")
    chars = chars[:4].ljust(4, "\x00")  # a fifth character (v2.7 truncation) plays no part here
    return _Encoding(
        field=sep,
        component=chars[0],
        repetition=chars[1],
        escape=chars[2] if chars[2] != "\x00" else "",
        subcomponent=chars[3] if chars[3] != "\x00" else "&",
    )


def _unescape(value: str, enc: _Encoding) -> str:
    """Decode HL7 escape sequences (v2.5 §2.7): \\F\\ \\S\\ \\R\\ \\T\\ \\E\\, \\Xhh..\\, \\.br\\ and kin.

    Highlighting (\\H\\, \\N\\), character-set switches and unknown sequences are dropped.
    """
    esc = enc.escape
    if not esc or esc not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        end = value.find(esc, i + 1) if ch == esc else -1
        if end < 0:
            out.append(ch)
            i += 1
            continue
        out.append(_escape_replacement(value[i + 1 : end], enc))
        i = end + 1
    return "".join(out)


def _escape_replacement(seq: str, enc: _Encoding) -> str:
    simple = {
        "F": enc.field,
        "S": enc.component,
        "R": enc.repetition,
        "T": enc.subcomponent,
        "E": enc.escape,
        ".br": "\n",
        ".sp": "\n",
        ".ce": "\n",
    }
    if seq in simple:
        return simple[seq]
    if seq.startswith("X") and len(seq) > 1 and len(seq) % 2 == 1:
        try:
            raw = bytes.fromhex(seq[1:])
        except ValueError:
            return ""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if seq.startswith(".sp") and seq[3:].isdigit():
        return "\n" * min(int(seq[3:]), 100)
    return ""


def escape(value: str) -> str:
    """Encode text for a field of a message using the standard delimiters ``|^~\\&`` (line breaks → space)."""
    table = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\", "\r": " ", "\n": " "}
    return "".join(table.get(ch, ch) for ch in value)


def _reencode(raw: str, enc: _Encoding) -> str:
    """A raw field in the sender's encoding, re-encoded with the standard delimiters."""
    if enc == _STANDARD:
        return raw
    return "~".join(
        "^".join("&".join(escape(_unescape(sub, enc)) for sub in comp.split(enc.subcomponent)) for comp in rep)
        for rep in (r.split(enc.component) for r in raw.split(enc.repetition))
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


def _segments(text: str | bytes) -> list[str]:
    """Segment strings: MLLP framing and BOM removed, any of \\r, \\n, \\r\\n as separator, blank lines dropped."""
    cleaned = _decode(text).replace("\ufeff", "").replace("\x0b", "").replace("\x1c", "")
    return [line.strip() for line in re.split(r"\r\n|\r|\n", cleaned) if line.strip()]


def split_batch(text: str | bytes) -> list[str]:
    """Split a file of several messages into messages (\\r-separated, ending with \\r).

    A message starts at each MSH segment. FHS/BHS/BTS/FTS batch wrappers are dropped. Segments before the first
    MSH (other than wrappers) come back as a message of their own, so that parsing it reports the problem
    instead of the data vanishing.
    """
    messages: list[list[str]] = []
    for segment in _segments(text):
        if segment[:3] in _BATCH_WRAPPERS:
            continue
        if segment.startswith("MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return ["\r".join(segments) + "\r" for segments in messages]


# ---------------------------------------------------------------------------------------------------------
# Walking python-hl7's tree


def _raw_field(segment: Any, position: int) -> Any:
    """Field ``position`` of a python-hl7 segment (MSH counted as in the standard), or None if absent."""
    return segment[position] if 0 < position < len(segment) else None


def _leaf(node: Any, *path: int) -> str:
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


class _Segment:
    """A python-hl7 segment with decoded, 1-based field access."""

    def __init__(self, raw: Any, sequence: int, enc: _Encoding) -> None:
        self.raw = raw
        self.id = str(raw[0])
        self.sequence = sequence
        self.enc = enc

    def get(self, position: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        return _unescape(_leaf(_raw_field(self.raw, position), repetition, component, subcomponent), self.enc)

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
            return _unescape(node, self.enc)
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
    zone: tzinfo = tz or UTC
    if parts["offset"]:
        sign = -1 if parts["offset"][0] == "-" else 1
        hours, minutes = int(parts["offset"][1:3]), int(parts["offset"][3:5])
        if hours > 14 or minutes > 59:
            raise ValueError("malformed HL7 timezone offset")
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
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


def _timestamp(segment: _Segment, position: int, tz: tzinfo | None, *, component: int = 1) -> datetime | None:
    try:
        return parse_timestamp(segment.get(position, component), tz)
    except ValueError:
        raise segment.error(102, f"{segment.id}-{position} is not a valid HL7 timestamp", position) from None


# ---------------------------------------------------------------------------------------------------------
# ORU^R01


@dataclass
class _Group:
    obr: _Segment
    spm: _Segment | None = None
    observations: list[Observation] = field(default_factory=list)

    @property
    def accession(self) -> str:
        if self.spm is not None:
            for component in (1, 2):  # SPM-2 EIP: placer-assigned, then filler-assigned identifier
                if identifier := self.spm.get(2, component, 1).strip():
                    return identifier
        return self.obr.get(3).strip() or self.obr.get(2).strip()

    @property
    def accession_at(self) -> tuple[str, int, int]:
        """Where :attr:`accession` comes from, for ERR-2: SPM-2, else OBR-3, else OBR-2."""
        if self.spm is not None and (self.spm.get(2, 1, 1).strip() or self.spm.get(2, 2, 1).strip()):
            return ("SPM", self.spm.sequence, 2)
        return ("OBR", self.obr.sequence, 3 if self.obr.get(3).strip() else 2)


def parse_oru(text: str | bytes, *, tz: tzinfo | None = None) -> OruMessage:
    """Parse one ORU^R01 message; raise :class:`Hl7Error` for anything unusable.

    Segments may be separated by \\r, \\n or \\r\\n; MLLP framing and batch wrappers are stripped. Timestamps
    without an offset are taken to be in ``tz`` (UTC when None).
    """
    segments = [s for s in _segments(text) if s[:3] not in _BATCH_WRAPPERS]
    if not segments:
        raise Hl7Error(100, "empty message", "MSH", ack_code="AR")
    enc = _encoding_of(segments[0])
    for index, segment in enumerate(segments):
        if not _SEGMENT_ID.fullmatch(segment[:3]) or (len(segment) > 3 and segment[3] != enc.field):
            raise Hl7Error(100, f"line {index + 1} is not an HL7 segment")
        if index and segment.startswith("MSH"):
            raise Hl7Error(100, "more than one message; split the batch first", "MSH", sequence=2)
    try:
        parsed = hl7.parse("\r".join(segments))
    except Exception:
        raise Hl7Error(100, "message could not be parsed", "MSH", ack_code="AR") from None

    counts: dict[str, int] = {}
    walked: list[_Segment] = []
    for raw in parsed:
        seg_id = str(raw[0])
        counts[seg_id] = counts.get(seg_id, 0) + 1
        walked.append(_Segment(raw, counts[seg_id], enc))

    msh = walked[0]
    message_code, trigger = msh.get(9, 1).strip().upper(), msh.get(9, 2).strip().upper()
    if not message_code:
        raise msh.error(101, "MSH-9 message type is missing", 9)
    if message_code != "ORU":
        raise msh.error(200, "only ORU^R01 is accepted", 9)
    if trigger != "R01":
        raise msh.error(201, "only ORU^R01 is accepted", 9)
    control_id = msh.get(10).strip()
    if not control_id:
        raise msh.error(101, "MSH-10 message control id is missing", 10)
    processing_id = msh.get(11).strip().upper()
    if processing_id and processing_id[0] not in "PTD":
        raise msh.error(202, "MSH-11 processing id must be P, T or D", 11)
    version = msh.get(12).strip()
    if version and not re.fullmatch(r"2\.\d+(?:\.\d+)?", version):
        raise msh.error(203, "MSH-12 version must be HL7 v2.x", 12)

    pid: _Segment | None = None
    groups: list[_Group] = []
    message_notes: list[str] = []
    last: Observation | None = None
    for seg in walked[1:]:
        if seg.id == "PID":
            if pid is not None:
                raise seg.error(100, "more than one PID segment; send one patient per message")
            if groups:
                raise seg.error(100, "PID after OBR")
            pid = seg
        elif seg.id == "OBR":
            if pid is None:
                if not any(other.id == "PID" for other in walked):
                    raise Hl7Error(100, "no PID segment", "PID")
                raise seg.error(100, "OBR before PID")
            groups.append(_Group(seg))
            last = None
        elif seg.id == "SPM":
            if not groups:
                raise seg.error(100, "SPM before OBR")
            if groups[-1].spm is None:
                groups[-1].spm = seg
            last = None
        elif seg.id == "OBX":
            if not groups:
                raise seg.error(100, "OBX before OBR")
            last = _observation(seg, tz)
            groups[-1].observations.append(last)
        elif seg.id == "NTE":
            note = seg.text(3, "\n")
            (last.notes if last is not None else message_notes).append(note)
        elif seg.id == "ORC":
            last = None

    if pid is None:
        raise Hl7Error(100, "no PID segment", "PID")
    mrn = _patient_identifier(pid)
    if not mrn:
        raise pid.error(101, "PID-3 patient identifier is missing", 3)
    if not groups:
        raise Hl7Error(100, "no OBR segment", "OBR")
    observations: list[Observation] = []
    for group in groups:
        accession = group.accession
        for observation in group.observations:
            observation.accession = accession
            observation.accession_at = group.accession_at
            observations.append(observation)
    if not observations:
        raise Hl7Error(100, "no OBX segment", "OBX")

    first = groups[0]
    collected_at = _timestamp(first.spm, 17, tz, component=1) if first.spm is not None else None
    if collected_at is None:
        collected_at = _timestamp(first.obr, 7, tz)
    try:
        birth = parse_timestamp(pid.get(7), None)
    except ValueError:
        raise pid.error(102, "PID-7 is not a valid HL7 date", 7) from None

    return OruMessage(
        control_id=control_id,
        sending_application=msh.get(3, 1) or msh.get(3, 2),
        sending_facility=msh.get(4, 1) or msh.get(4, 2),
        message_type=f"{message_code}^{trigger}",
        patient_mrn=mrn,
        patient_family=pid.get(5, 1, 1),
        patient_given=pid.get(5, 2),
        patient_birth_date=birth.date() if birth is not None else None,
        accession=first.accession,
        observations=observations,
        receiving_application=msh.get(5, 1) or msh.get(5, 2),
        receiving_facility=msh.get(6, 1) or msh.get(6, 2),
        version=version,
        processing_id=processing_id,
        collected_at=collected_at,
        notes=message_notes,
        raw_msh=segments[0],
    )


def _patient_identifier(pid: _Segment) -> str:
    """PID-3 CX.1: of the repetition typed MR (CX.5) if there is one, else of the first repetition that has one."""
    count = len(pid.repetitions(3))
    ids = [
        (pid.get(3, 1, repetition=n).strip(), pid.get(3, 5, repetition=n).strip().upper()) for n in range(1, count + 1)
    ]
    ids = [(value, kind) for value, kind in ids if value]
    for value, kind in ids:
        if kind == "MR":
            return value
    return ids[0][0] if ids else ""


def _observation(seg: _Segment, tz: tzinfo | None) -> Observation:
    value_type = seg.get(2).strip().upper()
    code, name, system = seg.get(3, 1).strip(), seg.get(3, 2).strip(), seg.get(3, 3).strip()
    alt_code, alt_name, alt_system = seg.get(3, 4).strip(), seg.get(3, 5).strip(), seg.get(3, 6).strip()
    if not code and not alt_code:
        raise seg.error(101, "OBX-3 observation identifier is missing", 3)
    loinc = code if system.upper() == "LN" else alt_code if alt_system.upper() == "LN" else ""

    value = _value(seg, value_type)
    coded = None
    if value_type in _CODED_TYPES:
        parts = [seg.get(5, n).strip() for n in range(1, 7)]
        if any(parts):
            coded = Coded(*parts)
    if value_type and value_type not in VALUE_TYPES:
        raise seg.error(103, "OBX-2 value type is not in HL7 table 0125", 2)
    if value and not value_type:
        raise seg.error(101, "OBX-2 value type is missing", 2)

    status = seg.get(11).strip().upper()
    if not status:
        raise seg.error(101, "OBX-11 result status is missing", 11)
    if status not in RESULT_STATUSES:
        raise seg.error(103, "OBX-11 result status is not in HL7 table 0085", 11)

    return Observation(
        set_id=seg.get(1).strip(),
        loinc_code=loinc,
        name=name or alt_name,
        value_type=value_type,
        value=value,
        unit=seg.get(6, 1).strip(),
        reference_range=seg.text(7).strip(),
        abnormal_flags="~".join(f for f in (_unescape(_leaf(r), seg.enc).strip() for r in seg.repetitions(8)) if f),
        status=status,
        observed_at=_timestamp(seg, 14, tz),
        code=code or alt_code,
        coding_system=system if code else alt_system,
        sequence=seg.sequence,
        coded=coded,
    )


def _value(seg: _Segment, value_type: str) -> str:
    """OBX-5 as text: NM checked, SN rendered (``<5``, ``1:128``), coded types as their text (else code)."""
    if value_type == "NM":
        value = seg.get(5).strip()
        if value and not _NUMBER.fullmatch(value):
            raise seg.error(102, "OBX-5 is not numeric but OBX-2 is NM", 5)
        return value
    if value_type == "SN":
        # SN: comparator ^ number ^ separator/suffix ^ number (v2.5 §2.A.74): "<^5", ">^11.0", "^1^-^3", "^1^:^128"
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
    if value_type in _CODED_TYPES:
        return (seg.get(5, 2) or seg.get(5, 1)).strip()
    return seg.text(5, "\n" if value_type in _LINE_TYPES else "~")


# ---------------------------------------------------------------------------------------------------------
# ACK


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
        header = _read_header(original.raw_msh) if original.raw_msh else None
        return header or _Header(
            sending_application=escape(original.sending_application),
            sending_facility=escape(original.sending_facility),
            receiving_application=escape(original.receiving_application),
            receiving_facility=escape(original.receiving_facility),
            trigger=original.message_type.partition("^")[2],
            control_id=escape(original.control_id),
            processing_id=escape(original.processing_id),
            version=escape(original.version),
        )
    msh = next((s for s in _segments(original) if s.startswith("MSH")), None)
    if msh is None:
        return None
    try:
        enc = _encoding_of(msh)
    except Hl7Error:
        return None
    fields = msh.split(enc.field)  # fields[n - 1] is MSH-n for n >= 2

    def raw(position: int) -> str:
        return fields[position - 1] if position - 1 < len(fields) else ""

    def first(position: int, component: int = 1) -> str:
        parts = raw(position).split(enc.repetition)[0].split(enc.component)
        value = parts[component - 1] if component <= len(parts) else ""
        return escape(_unescape(value.split(enc.subcomponent)[0], enc).strip())

    return _Header(
        sending_application=_reencode(raw(3), enc),
        sending_facility=_reencode(raw(4), enc),
        receiving_application=_reencode(raw(5), enc),
        receiving_facility=_reencode(raw(6), enc),
        trigger=first(9, 2),
        control_id=first(10),
        processing_id=first(11),
        version=first(12),
    )


def control_id_of(text: str | bytes) -> str:
    """MSH-10 of a message, read leniently ("" when unreadable). Not patient data: safe to log."""
    header = _read_header(text)
    return _unescape(header.control_id, _STANDARD) if header else ""


def _format_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + (moment.strftime("%z") if moment.utcoffset() is not None else "")


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
    version = header.version if re.fullmatch(r"2\.\d+(?:\.\d+)?", header.version) else DEFAULT_VERSION
    numbers = version_numbers(version)
    msh = [
        "MSH",
        "^~\\&",
        escape(sending_application) if sending_application is not None else header.receiving_application,
        escape(sending_facility) if sending_facility is not None else header.receiving_facility,
        header.sending_application,
        header.sending_facility,
        _format_timestamp(now),
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
        error_code = f"{error.code}^{escape(error.text)}^HL70357"
        if numbers >= (2, 5):
            segments.append(["ERR", "", error.location, error_code, "E", "", "", "", escape(error.message)])
        else:
            located = error.segment is not None
            eld = [
                error.segment or "",
                str(error.sequence) if located and error.sequence else "",
                str(error.field) if located and error.field is not None else "",
                error_code.replace("^", "&"),
            ]
            segments.append(["ERR", "^".join(eld)])
            if numbers >= (2, 2):
                msa += ["", "", error_code]  # MSA-6 error condition (v2.2 to v2.4)
    return "".join("|".join(fields).rstrip("|") + "\r" for fields in segments)


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


def batch_header(text: str | bytes) -> tuple[bool, bool, str]:
    """(has FHS, has BHS, BHS-11 batch control id) of a file or frame, read leniently."""
    has_file = has_batch = False
    batch_id = ""
    for segment in _segments(text):
        if segment.startswith("FHS"):
            has_file = True
        elif segment.startswith("BHS") and not has_batch:
            has_batch = True
            fields = segment.split(segment[3:4] or "|")  # fields[n - 1] is BHS-n, as for MSH
            batch_id = escape(_unescape(fields[10].split("^")[0], _STANDARD)) if len(fields) > 10 else ""
        elif segment.startswith("MSH") and has_batch:
            break
    return has_file, has_batch, batch_id


def wrap_batch(acks: list[str], *, text: str | bytes, now: datetime, control_id: str) -> str:
    """ACKs for the messages of a batch, in a batch of their own: BHS (BHS-11 a new id, BHS-12 the original
    BHS-11) ... BTS (count); inside FHS ... FTS when the original was a file. Acknowledgement of a batch is
    per message (HL7 v2.5 §2.10.3)."""
    has_file, _has_batch, batch_id = batch_header(text)
    moment = _format_timestamp(now)
    segments = [f"BHS|^~\\&|LABFLOW||||{moment}||||{escape(control_id)}|{batch_id}".rstrip("|") + "\r"]
    segments += acks
    segments.append(f"BTS|{len(acks)}\r")
    if has_file:
        segments = [f"FHS|^~\\&|LABFLOW||||{moment}||||{escape(control_id)}\r", *segments, "FTS|1\r"]
    return "".join(segments)


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
