"""The ADT patient feed over the results' MLLP listener: route a frame by MSH-9, apply ADT events, answer ACKs.

One ADT message is one transaction (`patients.services.adt_apply`): AA when applied, AE/AR with an ERR naming
the position and the reason when refused, and then nothing of it is written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User

from patients.adt import AdtRefusal
from patients.services import adt_apply
from results.hl7.ack import build_ack
from results.hl7.adt import parse_adt
from results.hl7.encoding import encoding_of, unescape
from results.hl7.errors import Hl7Error
from results.hl7.segments import segment_lines
from results.importing import Lookup, import_hl7_frame


@dataclass(frozen=True)
class AdtOutcome:
    ack: str
    applied: bool
    error: str = ""  # why refused: positions and codes, never values


def message_code_of(text: str) -> str:
    """MSH-9.1 of the first message of a frame, upper case, read leniently ("" when unreadable)."""
    msh = next((s for s in segment_lines(text) if s.startswith("MSH")), None)
    if msh is None:
        return ""
    try:
        enc = encoding_of(msh)
    except Hl7Error:
        return ""
    fields = msh.split(enc.field)
    value = fields[8] if len(fields) > 8 else ""  # fields[n - 1] is MSH-n
    return unescape(value.split(enc.repetition)[0].split(enc.component)[0], enc).strip().upper()


def _ack(text: str, now: datetime, error: Hl7Error | None = None) -> str:
    return build_ack(original_text_or_message=text, code=error.ack_code if error else "AA", error=error,
                     text=error.message if error else "", now=now, control_id=uuid.uuid4().hex[:20])  # fmt: skip


def import_adt_message(text: str, *, now: datetime) -> AdtOutcome:
    """Apply one ADT message to the patient register and answer it. Run under the listener's pghistory context."""
    try:
        event = parse_adt(text, mrn_authority=settings.HL7_MRN_AUTHORITY)
        adt_apply(event=event, now=now)
    except Hl7Error as error:
        return AdtOutcome(_ack(text, now, error), False, error.message)
    except AdtRefusal as refusal:
        where = refusal.where
        refused = Hl7Error(refusal.code, refusal.message, where.segment if where else None,
                           where.field if where else None, sequence=where.sequence if where else None)  # fmt: skip
        return AdtOutcome(_ack(text, now, refused), False, refused.message)
    return AdtOutcome(_ack(text, now), True)


def handle_hl7_frame(text: str, *, user: User, now: datetime, lookup: Lookup | None = None) -> tuple[str, str, int]:
    """One MLLP frame, routed by MSH-9: ADT to the patient register, anything else to the results import (which
    answers a type it does not take with AR). Returns the reply, the route ("adt" or "oru") and the count of
    results stored or patients written."""
    if message_code_of(text) == "ADT":
        outcome = import_adt_message(text, now=now)
        return outcome.ack, "adt", int(outcome.applied)
    reply, stored = import_hl7_frame(text, user=user, now=now, lookup=lookup)
    return reply, "oru", stored
