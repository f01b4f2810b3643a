"""Parse one ORU^R01 message into an :class:`OruMessage`: segments, OBR groups, observations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

import hl7  # type: ignore[import-untyped]

from results.hl7.encoding import Encoding, encoding_of, unescape
from results.hl7.errors import Hl7Error
from results.hl7.messages import Coded, Observation, OruMessage
from results.hl7.segments import BATCH_WRAPPERS, Segment, leaf, parse_timestamp, segment_lines, timestamp
from results.hl7.validation import (
    CODED_TYPES,
    check_message_header,
    check_segment_lines,
    check_value_type,
    numeric_value,
    result_status,
    structured_numeric_value,
)

_LINE_TYPES = frozenset({"TX", "FT"})


def parse_oru(text: str | bytes, *, tz: tzinfo | None = None) -> OruMessage:
    """Parse one ORU^R01 message; raise :class:`Hl7Error` for anything unusable.

    Segments may be separated by \\r, \\n or \\r\\n; MLLP framing and batch wrappers are stripped. Timestamps
    without an offset are taken to be in ``tz`` (UTC when None).
    """
    segments = _message_segments(text)
    walked = _walk(segments, encoding_of(segments[0]))
    msh = walked[0]
    header = check_message_header(msh)
    body = _Body(walked, tz)
    body.read()
    pid, mrn = _patient(body.pid)
    observations = _observations(body.groups)
    first = body.groups[0]
    collected_at = _collected_at(first, tz)
    birth = _birth_date(pid)
    return OruMessage(
        control_id=header.control_id,
        sending_application=msh.get(3, 1) or msh.get(3, 2),
        sending_facility=msh.get(4, 1) or msh.get(4, 2),
        message_type=f"{header.message_code}^{header.trigger}",
        patient_mrn=mrn,
        patient_family=pid.get(5, 1, 1),
        patient_given=pid.get(5, 2),
        patient_birth_date=birth,
        accession=first.accession,
        observations=observations,
        receiving_application=msh.get(5, 1) or msh.get(5, 2),
        receiving_facility=msh.get(6, 1) or msh.get(6, 2),
        version=header.version,
        processing_id=header.processing_id,
        collected_at=collected_at,
        notes=body.notes,
        raw_msh=segments[0],
    )


# ---------------------------------------------------------------------------------------------------------
# Text → python-hl7 tree → segments numbered by occurrence


def _message_segments(text: str | bytes) -> list[str]:
    """The segment strings of one message, batch wrappers dropped; at least one."""
    segments = [s for s in segment_lines(text) if s[:3] not in BATCH_WRAPPERS]
    if not segments:
        raise Hl7Error(100, "empty message", "MSH", ack_code="AR")
    return segments


def _walk(segments: list[str], enc: Encoding) -> list[Segment]:
    """The segments parsed by python-hl7, each with its 1-based occurrence among segments of its ID."""
    check_segment_lines(segments, enc)
    try:
        parsed = hl7.parse("\r".join(segments))
    except Exception:
        raise Hl7Error(100, "message could not be parsed", "MSH", ack_code="AR") from None
    counts: dict[str, int] = {}
    walked: list[Segment] = []
    for raw in parsed:
        seg_id = str(raw[0])
        counts[seg_id] = counts.get(seg_id, 0) + 1
        walked.append(Segment(raw, counts[seg_id], enc))
    return walked


# ---------------------------------------------------------------------------------------------------------
# The segments after MSH: the patient, OBR groups and their observations, notes


@dataclass
class _Group:
    """An OBR with its SPM and OBX segments."""

    obr: Segment
    spm: Segment | None = None
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


@dataclass
class _Body:
    """Reads the segments after MSH in order, checking that they come in an order that makes sense.

    An NTE belongs to the OBX just before it; after an OBR, SPM or ORC (or before any OBX) it is a message note.
    Segments of other IDs (PV1, ...) are skipped.
    """

    walked: list[Segment]
    tz: tzinfo | None
    pid: Segment | None = None
    groups: list[_Group] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # NTE not attached to an OBX
    last: Observation | None = None  # the OBX an NTE would belong to

    def read(self) -> None:
        readers: dict[str, Callable[[Segment], None]] = {
            "PID": self._pid,
            "OBR": self._obr,
            "SPM": self._spm,
            "OBX": self._obx,
            "NTE": self._nte,
            "ORC": self._orc,
        }
        for seg in self.walked[1:]:
            if reader := readers.get(seg.id):
                reader(seg)

    def _pid(self, seg: Segment) -> None:
        if self.pid is not None:
            raise seg.error(100, "more than one PID segment; send one patient per message")
        if self.groups:
            raise seg.error(100, "PID after OBR")
        self.pid = seg

    def _obr(self, seg: Segment) -> None:
        if self.pid is None:
            if not any(other.id == "PID" for other in self.walked):
                raise Hl7Error(100, "no PID segment", "PID")
            raise seg.error(100, "OBR before PID")
        self.groups.append(_Group(seg))
        self.last = None

    def _spm(self, seg: Segment) -> None:
        if not self.groups:
            raise seg.error(100, "SPM before OBR")
        if self.groups[-1].spm is None:
            self.groups[-1].spm = seg
        self.last = None

    def _obx(self, seg: Segment) -> None:
        if not self.groups:
            raise seg.error(100, "OBX before OBR")
        self.last = _observation(seg, self.tz)
        self.groups[-1].observations.append(self.last)

    def _nte(self, seg: Segment) -> None:
        note = seg.text(3, "\n")
        (self.last.notes if self.last is not None else self.notes).append(note)

    def _orc(self, seg: Segment) -> None:
        self.last = None


def _patient(pid: Segment | None) -> tuple[Segment, str]:
    """The PID segment and its patient identifier, both required."""
    if pid is None:
        raise Hl7Error(100, "no PID segment", "PID")
    mrn = _patient_identifier(pid)
    if not mrn:
        raise pid.error(101, "PID-3 patient identifier is missing", 3)
    return pid, mrn


def _patient_identifier(pid: Segment) -> str:
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


def _observations(groups: list[_Group]) -> list[Observation]:
    """The observations of all groups, each given its group's accession; at least one group and one OBX."""
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
    return observations


def _collected_at(group: _Group, tz: tzinfo | None) -> datetime | None:
    """SPM-17.1, else OBR-7."""
    collected_at = timestamp(group.spm, 17, tz, component=1) if group.spm is not None else None
    if collected_at is None:
        collected_at = timestamp(group.obr, 7, tz)
    return collected_at


def _birth_date(pid: Segment) -> date | None:
    """PID-7 as a date."""
    try:
        birth = parse_timestamp(pid.get(7), None)
    except ValueError:
        raise pid.error(102, "PID-7 is not a valid HL7 date", 7) from None
    return birth.date() if birth is not None else None


# ---------------------------------------------------------------------------------------------------------
# OBX


def _observation(seg: Segment, tz: tzinfo | None) -> Observation:
    value_type = seg.get(2).strip().upper()
    code, name, system = seg.get(3, 1).strip(), seg.get(3, 2).strip(), seg.get(3, 3).strip()
    alt_code, alt_name, alt_system = seg.get(3, 4).strip(), seg.get(3, 5).strip(), seg.get(3, 6).strip()
    if not code and not alt_code:
        raise seg.error(101, "OBX-3 observation identifier is missing", 3)
    loinc = code if system.upper() == "LN" else alt_code if alt_system.upper() == "LN" else ""

    value = _value(seg, value_type)
    coded = _coded(seg) if value_type in CODED_TYPES else None
    check_value_type(seg, value_type, value)
    status = result_status(seg)

    return Observation(
        set_id=seg.get(1).strip(),
        loinc_code=loinc,
        name=name or alt_name,
        value_type=value_type,
        value=value,
        unit=seg.get(6, 1).strip(),
        reference_range=seg.text(7).strip(),
        abnormal_flags="~".join(f for f in (unescape(leaf(r), seg.enc).strip() for r in seg.repetitions(8)) if f),
        status=status,
        observed_at=timestamp(seg, 14, tz),
        code=code or alt_code,
        coding_system=system if code else alt_system,
        sequence=seg.sequence,
        coded=coded,
    )


def _value(seg: Segment, value_type: str) -> str:
    """OBX-5 as text: NM checked, SN rendered (``<5``, ``1:128``), coded types as their text (else code)."""
    if value_type == "NM":
        return numeric_value(seg)
    if value_type == "SN":
        return structured_numeric_value(seg)
    if value_type in CODED_TYPES:
        return (seg.get(5, 2) or seg.get(5, 1)).strip()
    return seg.text(5, "\n" if value_type in _LINE_TYPES else "~")


def _coded(seg: Segment) -> Coded | None:
    """OBX-5 of a coded value type as its six components; None when all are empty."""
    parts = [seg.get(5, n).strip() for n in range(1, 7)]
    return Coded(*parts) if any(parts) else None
