"""Instrument and LIS import: HL7 v2 ORU^R01 (MLLP or files), through `results_enter` (CSV: results/csv_import.py).

A message is all or nothing: any bad observation writes nothing from it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from core.errors import Conflict
from monitoring.models import LabTest
from patients.models import Patient
from patients.selectors import patient_record_ids
from results.choices import MessageOutcome as MessageOutcomeCode
from results.choices import ResultSource
from results.hl7.ack import build_ack
from results.hl7.batch import batch_header, split_batch, wrap_batch
from results.hl7.errors import Hl7Error
from results.hl7.messages import Observation, OruMessage
from results.hl7.parsing import parse_oru
from results.selectors import Catalogue
from results.services import (
    LabPlacement,
    LabReport,
    ResultEntry,
    build_results,
    entry_context,
    lab_results_store,
    place_lab_results,
)
from specimens.models import Specimen

INTERFACE_USERNAME = "lis-interface"


def interface_user(username: str = INTERFACE_USERNAME) -> User:
    """The account that imported results are entered by (it cannot log in; humans verify)."""
    user, created = User.objects.get_or_create(username=username, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@dataclass
class Lookup:
    """Catalogue, tests by LOINC, and caches of specimens and patients for a run of imports."""

    catalogue: Catalogue = field(default_factory=Catalogue)
    tests: dict[str, LabTest] = field(default_factory=dict)
    specimens: dict[str, Specimen | None] = field(default_factory=dict)
    patients: dict[str, Patient | None] = field(default_factory=dict)
    records: dict[int, set[int]] = field(default_factory=dict)  # a patient's id → it and the records merged into it

    def __post_init__(self) -> None:
        self.tests = {spec.lab_test.loinc_code: spec.lab_test for spec in self.catalogue.specs.values()}

    def prefetch(self, accessions: Iterable[str] = (), mrns: Iterable[str] = ()) -> None:
        wanted = [a for a in set(accessions) if a and a not in self.specimens]
        if wanted:
            for specimen in Specimen.objects.filter(accession__in=wanted).select_related("patient"):
                self.specimens[specimen.accession] = specimen
            for accession in wanted:
                self.specimens.setdefault(accession, None)
        wanted = [m for m in set(mrns) if m and m not in self.patients]
        if wanted:
            for patient in Patient.objects.filter(mrn__in=wanted):
                self.patients[patient.mrn] = patient
            for mrn in wanted:
                self.patients.setdefault(mrn, None)

    def specimen(self, accession: str) -> Specimen | None:
        if accession not in self.specimens:  # asked once per observation: mostly prefetched
            self.prefetch(accessions=[accession])
        return self.specimens[accession]

    def patient(self, mrn: str) -> Patient | None:
        if mrn not in self.patients:
            self.prefetch(mrns=[mrn])
        return self.patients[mrn]

    def is_records_of(self, patient: Patient, patient_id: int) -> bool:
        """Whether `patient_id` is the patient's record or one merged into it (ADT A40): asked only on a mismatch."""
        if patient_id == patient.pk:
            return True
        if patient.pk not in self.records:
            self.records[patient.pk] = set(patient_record_ids(patient))
        return patient_id in self.records[patient.pk]


@dataclass
class MessageOutcome:
    ack: str
    stored: int
    error: str = ""  # why the message was refused: positions and codes, never values or names
    duplicate: bool = False


#: OBX-11 statuses that carry nothing to store (HL7 0085: I pending, O order detail, N not asked); U (now final,
#: value not sent again) changes nothing either: LabFlow's own verification decides what is final.
SKIPPED_STATUSES = frozenset("ION")


def _lab_report(obs: Observation) -> LabReport:
    return LabReport(
        reference_range=obs.reference_range,
        flags=obs.abnormal_flags,
        status=obs.status,
        observed_at=obs.observed_at,
        comment="\n".join(note for note in obs.notes if note.strip()),
    )


def _entries_for(message: OruMessage, lookup: Lookup) -> tuple[list[ResultEntry], list[int]]:
    """The entries of a message and, for each, the OBX it came from (ERR-2 locations)."""
    patient = lookup.patient(message.patient_mrn)
    if patient is None:
        raise Hl7Error(204, "Unknown patient identifier.", "PID", 3)
    entries, sequences = [], []
    for obs in message.observations:
        if obs.status in SKIPPED_STATUSES or (obs.status == "U" and not obs.value):
            continue
        accession = obs.accession or message.accession
        segment, sequence, position = obs.accession_at
        specimen = lookup.specimen(accession) if accession else None
        if specimen is None:
            raise Hl7Error(204, "Unknown specimen (accession number).", segment, position, sequence=sequence)
        if not lookup.is_records_of(patient, specimen.patient_id):
            raise Hl7Error(204, "The specimen belongs to another patient.", segment, position, sequence=sequence)
        test = lookup.tests.get(obs.loinc_code)
        if test is None:
            raise Hl7Error(204, f"Unknown test code {obs.code or obs.loinc_code!r}.", "OBX", 3, sequence=obs.sequence)
        coded = obs.coded
        entries.append(
            ResultEntry(
                specimen,
                test,
                obs.value,
                obs.unit,
                obs.observed_at,
                value_type=obs.value_type,
                code=coded.code if coded else "",
                code_system=coded.system if coded else "",
                alt_code=coded.alt_code if coded else "",
                alt_system=coded.alt_system if coded else "",
                lab=_lab_report(obs),
            )
        )
        sequences.append(obs.sequence)
    return entries, sequences


def _reason(problem: Exception) -> str:
    if isinstance(problem, ValidationError) and hasattr(problem, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in problem.message_dict.items())
    if isinstance(problem, ValidationError):
        return " ".join(problem.messages)
    return str(problem)


#: ValidationError codes of `results.values.parse_value` → (HL7 0357 code, field of the OBX, wording without the value).
_REFUSALS: dict[str, tuple[int, int, str]] = {
    "required": (101, 5, "value is missing"),
    "not_a_number": (102, 5, "value is not a number"),
    "out_of_range": (102, 5, "value is outside the range a lab value can take"),
    "range_or_ratio": (102, 5, "a range or ratio is not accepted: the test is resulted as one number"),
    "coded_for_number": (102, 2, "a coded value is not accepted: the test is resulted as a number"),
    "unknown_answer": (103, 5, "the answer is not one of the test's catalogued answers"),
    "answer_disagrees": (102, 5, "the code and the text of the answer name different answers"),
    "twice": (205, 3, "the test appears twice for one specimen"),
    "specimen": (207, 3, "the specimen was rejected or disposed of"),
}
_ENTRY_KEY = re.compile(r"results\[(\d+)\]\.(\w+)")


def _refusal(problem: Exception, entries: Sequence[ResultEntry], sequences: Sequence[int]) -> Hl7Error:
    """An ACK-safe error for a refused entry: the OBX it came from and what is wrong, never the value."""
    if not isinstance(problem, ValidationError) or not hasattr(problem, "error_dict"):
        return Hl7Error(207, "The results could not be stored.", "OBX", 5, sequence=sequences[0] if sequences else 1)
    key, errors = next(iter(problem.error_dict.items()))
    match = _ENTRY_KEY.fullmatch(key)
    index = int(match.group(1)) if match else 0
    entry, sequence = entries[index], sequences[index]
    code = errors[0].code or ""
    if code == "unit":  # UnitError names the two units, which are no result values
        return Hl7Error(103, f"OBX {sequence} ({entry.lab_test.name}): {errors[0].messages[0]}", "OBX", 6,
                        sequence=sequence)  # fmt: skip
    hl7_code, position, wording = _REFUSALS.get(code, (207, 5, "the result could not be stored"))
    return Hl7Error(hl7_code, f"OBX {sequence} ({entry.lab_test.name}): {wording}.", "OBX", position,
                    sequence=sequence)  # fmt: skip


def _ack(original: str | OruMessage, now: datetime, error: Hl7Error | None = None, text: str = "") -> str:
    code = error.ack_code if error else "AA"
    return build_ack(original_text_or_message=original, code=code, text=error.message if error else text,
                     error=error, now=now, control_id=uuid.uuid4().hex[:20])  # fmt: skip


_CLAIM = """
INSERT INTO results_inboundmessage
    (sending_application, sending_facility, control_id, message_type, version, received_at, outcome, results_stored)
SELECT m.sending_application, m.sending_facility, m.control_id, m.message_type, m.version, %s, 'AA', 0
FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[])
    WITH ORDINALITY AS m(sending_application, sending_facility, control_id, message_type, version, n)
ORDER BY m.n
ON CONFLICT (sending_application, sending_facility, control_id) DO UPDATE
    SET message_type = EXCLUDED.message_type, version = EXCLUDED.version, received_at = EXCLUDED.received_at,
        outcome = 'AA', results_stored = 0
    WHERE results_inboundmessage.outcome <> 'AA'
RETURNING id, sending_application, sending_facility, control_id
"""

MessageKey = tuple[str, str, str]  # MSH-3, MSH-4, MSH-10


def _stored_key(message: OruMessage) -> MessageKey:
    """The message's key as InboundMessage stores it (cut to the columns' lengths)."""
    return message.sending_application[:180], message.sending_facility[:180], message.control_id[:199]


def _claim(messages: Iterable[OruMessage], now: datetime) -> dict[MessageKey, int]:
    """Record messages once per sender and control id (MSH-3, MSH-4, MSH-10), in one statement in the caller's
    transaction, in the order given; returns the InboundMessage id of each key claimed. A key missing from the
    answer was already accepted (a true duplicate). A concurrent receiver of the same message waits on the unique
    index until this transaction ends, then finds it accepted. A message refused before (AE/AR) is claimed again:
    a sender may resend it once the cause is fixed. Give each key once (one statement cannot claim a row twice)."""
    messages = list(messages)
    if not messages:
        return {}
    keys = [_stored_key(m) for m in messages]
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM,
            [
                now,
                [key[0] for key in keys],
                [key[1] for key in keys],
                [key[2] for key in keys],
                [m.message_type[:20] for m in messages],
                [m.version[:10] for m in messages],
            ],
        )
        return {(application, facility, control_id): pk for pk, application, facility, control_id in cursor}


_RECORD_OUTCOMES = """
UPDATE results_inboundmessage SET outcome = o.outcome, results_stored = o.results_stored
FROM unnest(%s::bigint[], %s::varchar[], %s::integer[]) AS o(id, outcome, results_stored)
WHERE results_inboundmessage.id = o.id
"""


def _record_outcomes(outcomes: dict[int, tuple[str, int]]) -> None:
    """Set InboundMessage.outcome and results_stored of claimed messages, by id, in one statement."""
    if not outcomes:
        return
    ids = list(outcomes)
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_OUTCOMES,
            [ids, [outcomes[pk][0] for pk in ids], [outcomes[pk][1] for pk in ids]],
        )


def _parse_messages(texts: Sequence[str], now: datetime) -> tuple[dict[int, OruMessage], dict[int, MessageOutcome]]:
    """The messages that parse, by index; an outcome (their AE/AR ACK) for those that do not."""
    outcomes: dict[int, MessageOutcome] = {}
    parsed: dict[int, OruMessage] = {}
    for index, text in enumerate(texts):
        try:
            parsed[index] = parse_oru(text)
        except Hl7Error as error:
            outcomes[index] = MessageOutcome(_ack(text, now, error), 0, error.message)
    return parsed, outcomes


def import_oru_messages(
    texts: Sequence[str], *, user: User, now: datetime, lookup: Lookup | None = None
) -> list[MessageOutcome]:
    """Store a run of ORU^R01 messages in one transaction and answer an ACK for each: AA, or AE/AR with ERR.

    Each message is all or nothing. A message is recognised by MSH-3 + MSH-4 + MSH-10 (InboundMessage's unique
    constraint): a true duplicate is answered AA and stored once; another sender's message that reuses a
    control id is stored. OBX-11 decides what a report does (:func:`results.services.place_lab_results`)."""
    lookup = lookup or Lookup()
    parsed, outcomes = _parse_messages(texts, now)
    lookup.prefetch(
        accessions=[o.accession or m.accession for m in parsed.values() for o in m.observations],
        mrns=[m.patient_mrn for m in parsed.values()],
    )
    with transaction.atomic():
        first_with: dict[MessageKey, int] = {}  # stored key -> the first message of this run that has it
        for index, message in parsed.items():
            first_with.setdefault(_stored_key(message), index)
        claimed = _claim((parsed[index] for index in first_with.values()), now)
        claims: dict[int, int] = {}
        first_of: dict[tuple[str, str, str], int] = {}
        entries: dict[int, tuple[list[ResultEntry], list[int]]] = {}
        for index, message in parsed.items():
            key = (message.sending_application, message.sending_facility, message.control_id)
            stored_key = _stored_key(message)
            claim = claimed.get(stored_key) if first_with[stored_key] == index else None
            if claim is None:
                if key in first_of:  # the same message twice in this run: answered as the first one is
                    continue
                outcomes[index] = MessageOutcome(_ack(message, now, text="Duplicate: already stored."), 0,
                                                 duplicate=True)  # fmt: skip
                continue
            first_of[key], claims[index] = index, claim
            try:
                entries[index] = _entries_for(message, lookup)
            except Hl7Error as error:
                outcomes[index] = MessageOutcome(_ack(message, now, error), 0, error.message)
        context = entry_context([e for batch, _ in entries.values() for e in batch], lookup.catalogue)
        placement = LabPlacement()
        for index, (batch, sequences) in entries.items():
            message = parsed[index]
            if {(e.specimen.pk, e.lab_test.pk) for e in batch} & placement.keys():
                # a later report of a result this run has not stored yet
                lab_results_store(placement, user=user, now=now)
            try:
                built = build_results(batch, context=context, user=user, now=now, source=ResultSource.HL7,
                                      message_control_id=message.control_id[:60], versions_by_caller=True)  # fmt: skip
            except (ValidationError, Conflict) as problem:
                refusal = _refusal(problem, batch, sequences)
                outcomes[index] = MessageOutcome(_ack(message, now, refusal), 0, refusal.message)
                continue
            for row in built:
                row.inbound_message_id = claims[index]
            placed = place_lab_results(built, context=context, placement=placement)
            outcomes[index] = MessageOutcome(_ack(message, now), len(placed))
        lab_results_store(placement, user=user, now=now)
        recorded: dict[int, tuple[str, int]] = {}
        for index, claim in claims.items():
            outcome = outcomes[index]
            if outcome.error or outcome.stored:
                code = MessageOutcomeCode.ACCEPTED if not outcome.error else _msa_code(outcome.ack)
                recorded[claim] = (str(code), outcome.stored)  # the value, not the enum member
        _record_outcomes(recorded)
        for index, message in parsed.items():
            if index not in outcomes:  # a repeat within this run
                first = first_of[(message.sending_application, message.sending_facility, message.control_id)]
                outcomes[index] = replace(outcomes[first], stored=0, duplicate=not outcomes[first].error)
    return [outcomes[index] for index in range(len(texts))]


def _msa_code(ack: str) -> str:
    """MSA-1 of an ACK this module built."""
    for segment in ack.split("\r"):
        if segment.startswith("MSA|"):
            return segment[4:6]
    return MessageOutcomeCode.ERROR


def import_oru_message(text: str, *, user: User, now: datetime, lookup: Lookup | None = None) -> MessageOutcome:
    """One message, e.g. from the MLLP listener."""
    (outcome,) = import_oru_messages([text], user=user, now=now, lookup=lookup)
    return outcome


def import_hl7_frame(text: str, *, user: User, now: datetime, lookup: Lookup | None = None) -> tuple[str, int]:
    """What arrives in one MLLP frame: a message, or an FHS/BHS batch of messages answered by a batch of ACKs
    (BHS ... BTS, inside FHS ... FTS for a file). Returns the reply and the number of results stored."""
    has_file, has_batch, _ = batch_header(text)
    if not (has_file or has_batch):
        outcome = import_oru_message(text, user=user, now=now, lookup=lookup)
        return outcome.ack, outcome.stored
    outcomes = import_oru_messages(split_batch(text), user=user, now=now, lookup=lookup)
    reply = wrap_batch([o.ack for o in outcomes], text=text, now=now, control_id=uuid.uuid4().hex[:20])
    return reply, sum(o.stored for o in outcomes)


def hl7_messages(path: Path) -> list[str]:
    return split_batch(path.read_bytes())
