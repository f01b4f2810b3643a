"""Parse one HL7 v2 ADT message (A01, A02, A03, A04, A08, A31, A40) into a :class:`patients.adt.AdtEvent`.

Fields read (docs/interfaces.md, "ADT in"): MSH-9/10/11/12, EVN-2, PID-3 (the repetition of the configured
assigning authority), PID-5, PID-7, PID-8, PV1-3.1, OBX body weight (LOINC 29463-7, 3141-9) and height (8302-2)
in kg/g and cm/m, MRG-1 (A40). Error messages name positions, never values.
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from patients.adt import EVENTS, MERGE_EVENTS, AdtEvent, AdtPatient, Where
from results.hl7.encoding import encoding_of
from results.hl7.errors import Hl7Error
from results.hl7.parsing import _birth_date, _message_segments, _walk
from results.hl7.segments import Segment, timestamp
from results.hl7.validation import check_message_header

ADT: dict[str, frozenset[str]] = {"ADT": EVENTS}

#: LOINC codes of the body measurements an ADT OBX may carry, and the unit factors to kg / cm.
WEIGHT_CODES = frozenset({"29463-7", "3141-9"})
HEIGHT_CODES = frozenset({"8302-2"})
WEIGHT_UNITS = {"KG": Decimal(1), "G": Decimal("0.001")}
HEIGHT_UNITS = {"CM": Decimal(1), "M": Decimal(100)}
SEXES = frozenset("FMOU")  # HL7 table 0001
_TENTH = Decimal("0.1")


def identifier_of_authority(seg: Segment, position: int, authority: str) -> str:
    """The CX.1 of the repetitions of a CX field whose assigning authority (CX.4.1) is ``authority``.

    Refused when no repetition has it (the sender did not send our MRN) or when two of them differ."""
    label = f"{seg.id}-{position}"
    if not authority:
        raise seg.error(207, "no MRN assigning authority is configured (HL7_MRN_AUTHORITY)", position)
    found = {
        seg.get(position, 1, repetition=n).strip()
        for n in range(1, len(seg.repetitions(position)) + 1)
        if seg.get(position, 4, repetition=n).strip().upper() == authority.upper()
    } - {""}
    if not found:
        raise seg.error(101, f"{label} has no identifier of the configured assigning authority", position)
    if len(found) > 1:
        raise seg.error(205, f"{label} has conflicting identifiers of the configured assigning authority", position)
    return found.pop()


def _only(walked: list[Segment], seg_id: str, required: bool) -> Segment | None:
    found = [seg for seg in walked if seg.id == seg_id]
    if len(found) > 1:
        raise found[1].error(100, f"more than one {seg_id} segment; send one patient per message")
    if required and not found:
        raise Hl7Error(100, f"no {seg_id} segment", seg_id)
    return found[0] if found else None


def _measurement(obx: Segment, units: dict[str, Decimal], what: str) -> Decimal:
    unit = obx.get(6).strip().upper()
    if unit not in units:
        raise obx.error(103, f"OBX-6 {what} unit must be one of {', '.join(u.lower() for u in units)}", 6)
    try:
        value = Decimal(obx.get(5).strip()) * units[unit]
    except InvalidOperation:
        raise obx.error(102, f"OBX-5 {what} is not a number", 5) from None
    if not value.is_finite():
        raise obx.error(102, f"OBX-5 {what} is not a number", 5)
    return value.quantize(_TENTH, rounding=ROUND_HALF_UP)


def _measurements(walked: list[Segment]) -> tuple[tuple[Decimal, Where] | None, tuple[Decimal, Where] | None]:
    """The body weight and height the OBX segments carry (the last of each); other observations are ignored."""
    weight = height = None
    for obx in (seg for seg in walked if seg.id == "OBX"):
        code, system = obx.get(3, 1).strip(), obx.get(3, 3).strip().upper()
        if system != "LN" or obx.get(11).strip().upper() not in ("", "F", "C"):
            continue
        where = Where("OBX", 5, obx.sequence)
        if code in WEIGHT_CODES:
            weight = (_measurement(obx, WEIGHT_UNITS, "body weight"), where)
        elif code in HEIGHT_CODES:
            height = (_measurement(obx, HEIGHT_UNITS, "body height"), where)
    return weight, height


def parse_adt(text: str | bytes, *, mrn_authority: str, tz: tzinfo | None = None) -> AdtEvent:
    """Parse one ADT message; raise :class:`Hl7Error` for anything unusable (nothing is looked up here)."""
    segments = _message_segments(text)
    walked = _walk(segments, encoding_of(segments[0]))
    msh = walked[0]
    header = check_message_header(msh, ADT)
    pid = _only(walked, "PID", required=True)
    if pid is None:  # _only raised already; this tells the type checker
        raise Hl7Error(100, "no PID segment", "PID")
    pv1 = _only(walked, "PV1", required=False)
    evn = _only(walked, "EVN", required=False)
    mrg = _only(walked, "MRG", required=header.trigger in MERGE_EVENTS)
    mrn = identifier_of_authority(pid, 3, mrn_authority)
    sex = pid.get(8).strip().upper()
    if sex and sex not in SEXES:
        raise pid.error(103, "PID-8 sex is not in HL7 table 0001 (F, M, O, U)", 8)
    weight, height = _measurements(walked)
    event_at = (timestamp(evn, 2, tz) if evn is not None else None) or timestamp(msh, 7, tz)
    patient = AdtPatient(
        mrn=mrn,
        authority=mrn_authority,
        family_name=pid.get(5, 1).strip(),
        given_name=pid.get(5, 2).strip(),
        birth_date=_birth_date(pid),
        sex=sex,
        weight_kg=weight[0] if weight else None,
        height_cm=height[0] if height else None,
        ward=pv1.get(3, 1).strip() if pv1 is not None else "",
        weight_at=weight[1] if weight else Where("OBX", 5),
        height_at=height[1] if height else Where("OBX", 5),
    )
    prior = identifier_of_authority(mrg, 1, mrn_authority) if mrg is not None else ""
    return AdtEvent(trigger=header.trigger, patient=patient, event_at=event_at, prior_mrn=prior)
