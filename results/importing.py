"""Instrument and LIS import: HL7 v2 ORU^R01 (MLLP or files) and CSV, through `results_enter`.

A message (or a CSV specimen group) is all or nothing: any bad observation writes nothing from it."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from labflow.errors import Conflict
from monitoring.models import LabTest
from patients.models import Patient
from results.choices import ResultSource
from results.hl7 import Hl7Error, OruMessage, build_ack, parse_oru, split_batch
from results.models import Result
from results.services import Catalogue, ResultEntry, build_results, entry_context, results_store
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
        self.prefetch(accessions=[accession])
        return self.specimens[accession]

    def patient(self, mrn: str) -> Patient | None:
        self.prefetch(mrns=[mrn])
        return self.patients[mrn]


@dataclass
class MessageOutcome:
    ack: str
    stored: int
    error: str = ""


def _entries_for(message: OruMessage, lookup: Lookup) -> list[ResultEntry]:
    patient = lookup.patient(message.patient_mrn)
    if patient is None:
        raise Hl7Error(204, "Unknown patient identifier.", "PID", 3)
    entries = []
    for index, obs in enumerate(message.observations, start=1):
        accession = obs.accession or message.accession
        specimen = lookup.specimen(accession) if accession else None
        if specimen is None:
            raise Hl7Error(204, "Unknown specimen (accession number).", "SPM", 2)
        if specimen.patient_id != patient.pk:
            raise Hl7Error(204, "The specimen belongs to another patient.", "SPM", 2)
        test = lookup.tests.get(obs.loinc_code)
        if test is None:
            raise Hl7Error(204, f"Unknown test code {obs.code or obs.loinc_code!r}.", "OBX", 3, sequence=index)
        entries.append(ResultEntry(specimen, test, obs.value, obs.unit, obs.observed_at))
    return entries


def _reason(problem: Exception) -> str:
    if isinstance(problem, ValidationError) and hasattr(problem, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in problem.message_dict.items())
    if isinstance(problem, ValidationError):
        return " ".join(problem.messages)
    return str(problem)


def _ack(original: str | OruMessage, now: datetime, error: Hl7Error | None = None, text: str = "") -> str:
    code = error.ack_code if error else "AA"
    return build_ack(original_text_or_message=original, code=code, text=error.message if error else text,
                     error=error, now=now, control_id=uuid.uuid4().hex[:20])  # fmt: skip


def import_oru_messages(
    texts: Sequence[str], *, user: User, now: datetime, lookup: Lookup | None = None
) -> list[MessageOutcome]:
    """Store a run of ORU^R01 messages and answer an ACK for each: AA, or AE/AR with the reason in MSA-3
    and ERR. Each message is all or nothing; the stored ones are inserted together, in one transaction.
    A resent message (same MSH-10) is acknowledged again and stored once."""
    lookup = lookup or Lookup()
    outcomes: dict[int, MessageOutcome] = {}
    parsed: dict[int, OruMessage] = {}
    for index, text in enumerate(texts):
        try:
            parsed[index] = parse_oru(text)
        except Hl7Error as error:
            outcomes[index] = MessageOutcome(_ack(text, now, error), 0, error.message)
    lookup.prefetch(
        accessions=[o.accession or m.accession for m in parsed.values() for o in m.observations],
        mrns=[m.patient_mrn for m in parsed.values()],
    )
    control_ids = {m.control_id for m in parsed.values() if m.control_id}
    stored_ids = set(
        Result.objects.filter(source=ResultSource.HL7, message_control_id__in=control_ids)
        .values_list("message_control_id", flat=True)
        .distinct()
    )
    entries: dict[int, list[ResultEntry]] = {}
    for index, message in parsed.items():
        if message.control_id and message.control_id in stored_ids:
            outcomes[index] = MessageOutcome(_ack(message, now, text="Duplicate: already stored."), 0)
            continue
        try:
            entries[index] = _entries_for(message, lookup)
        except Hl7Error as error:
            outcomes[index] = MessageOutcome(_ack(message, now, error), 0, error.message)
        stored_ids.add(message.control_id)
    context = entry_context([e for batch in entries.values() for e in batch], lookup.catalogue)
    rows: list[Result] = []
    for index, batch in entries.items():
        message = parsed[index]
        try:
            built = build_results(batch, context=context, user=user, now=now, source=ResultSource.HL7,
                                  message_control_id=message.control_id[:60])  # fmt: skip
        except (ValidationError, Conflict) as problem:
            refusal = Hl7Error(207, _reason(problem), "OBX", 5)
            outcomes[index] = MessageOutcome(_ack(message, now, refusal), 0, refusal.message)
            continue
        rows += built
        outcomes[index] = MessageOutcome(_ack(message, now), len(built))
    results_store(rows)
    return [outcomes[index] for index in range(len(texts))]


def import_oru_message(text: str, *, user: User, now: datetime, lookup: Lookup | None = None) -> MessageOutcome:
    """One message, e.g. from the MLLP listener."""
    (outcome,) = import_oru_messages([text], user=user, now=now, lookup=lookup)
    return outcome


CSV_COLUMNS = ("accession", "mrn", "loinc", "value", "unit", "observed_at")


@dataclass
class CsvGroup:
    accession: str
    mrn: str
    lines: list[int]
    rows: list[dict[str, str]]


def read_csv(path: Path) -> Iterator[CsvGroup]:
    """Rows grouped by specimen (consecutive rows with the same accession)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValidationError({"file": f"{path.name}: missing columns {', '.join(sorted(missing))}."})
        group: CsvGroup | None = None
        for line, row in enumerate(reader, start=2):
            if group is None or row["accession"] != group.accession:
                if group is not None:
                    yield group
                group = CsvGroup(row["accession"].strip(), row["mrn"].strip(), [], [])
            group.lines.append(line)
            group.rows.append(row)
        if group is not None:
            yield group


def _csv_entries(group: CsvGroup, lookup: Lookup) -> list[ResultEntry]:
    specimen = lookup.specimen(group.accession)
    where = f"line {group.lines[0]}"
    if specimen is None:
        raise ValidationError({"accession": f"{where}: unknown accession {group.accession!r}."})
    if specimen.patient.mrn != group.mrn:
        raise ValidationError({"mrn": f"{where}: the specimen belongs to another patient."})
    entries = []
    for line, row in zip(group.lines, group.rows, strict=True):
        test = lookup.tests.get(row["loinc"].strip())
        if test is None:
            raise ValidationError({"loinc": f"line {line}: unknown test code {row['loinc']!r}."})
        observed = parse_datetime(row["observed_at"].strip()) if row.get("observed_at", "").strip() else None
        if observed is not None and timezone.is_naive(observed):
            observed = timezone.make_aware(observed)
        entries.append(ResultEntry(specimen, test, row["value"], row["unit"], observed))
    return entries


def import_csv_groups(
    groups: Sequence[CsvGroup], *, user: User, now: datetime, lookup: Lookup
) -> tuple[int, list[str]]:
    """Store each specimen's rows all or nothing; returns the number stored and one reason per refused group."""
    lookup.prefetch(accessions=[g.accession for g in groups])
    refused: list[str] = []
    entries: list[list[ResultEntry]] = []
    for group in groups:
        try:
            entries.append(_csv_entries(group, lookup))
        except ValidationError as error:
            refused.append(_reason(error))
    context = entry_context([e for batch in entries for e in batch], lookup.catalogue)
    rows: list[Result] = []
    for batch in entries:
        try:
            rows += build_results(batch, context=context, user=user, now=now, source=ResultSource.CSV)
        except (ValidationError, Conflict) as error:
            refused.append(f"{batch[0].specimen.accession}: {_reason(error)}")
    return len(results_store(rows)), refused


def hl7_messages(path: Path) -> list[str]:
    return split_batch(path.read_bytes())
