"""Instrument and LIS import: HL7 v2 ORU^R01 (MLLP or files) and CSV, through `results_enter`.

A message (or a CSV specimen group) is all or nothing: any bad observation writes nothing from it."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from labflow.errors import Conflict
from monitoring.models import LabTest
from patients.models import Patient
from results.choices import ResultSource
from results.hl7 import Hl7Error, OruMessage, build_ack, parse_oru, split_batch
from results.models import Result
from results.services import Catalogue, ResultEntry, results_enter
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
    """Catalogue, tests by LOINC, and caches of patients and specimens for a run of imports."""

    catalogue: Catalogue = field(default_factory=Catalogue)
    tests: dict[str, LabTest] = field(default_factory=dict)
    specimens: dict[str, Specimen | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tests = {spec.lab_test.loinc_code: spec.lab_test for spec in self.catalogue.specs.values()}

    def prefetch(self, accessions: Iterable[str]) -> None:
        wanted = [a for a in set(accessions) if a not in self.specimens]
        for specimen in Specimen.objects.filter(accession__in=wanted).select_related("patient"):
            self.specimens[specimen.accession] = specimen
        for accession in wanted:
            self.specimens.setdefault(accession, None)

    def specimen(self, accession: str) -> Specimen | None:
        if accession not in self.specimens:
            self.prefetch([accession])
        return self.specimens[accession]


@dataclass
class MessageOutcome:
    ack: str
    stored: int
    error: str = ""


def _entries_for(message: OruMessage, lookup: Lookup) -> list[ResultEntry]:
    patient = Patient.objects.filter(mrn=message.patient_mrn).first()
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


def import_oru_message(text: str, *, user: User, now: datetime, lookup: Lookup | None = None) -> MessageOutcome:
    """Store one ORU^R01 and answer its ACK: AA, or AE/AR with the reason in MSA-3 and ERR."""
    lookup = lookup or Lookup()
    control_id = uuid.uuid4().hex[:20]
    try:
        message = parse_oru(text)
    except Hl7Error as error:
        ack = build_ack(original_text_or_message=text, code=error.ack_code, text=error.message, error=error,
                        now=now, control_id=control_id)  # fmt: skip
        return MessageOutcome(ack=ack, stored=0, error=error.message)
    if (
        message.control_id
        and Result.objects.filter(source=ResultSource.HL7, message_control_id=message.control_id).exists()
    ):
        # A resend after a lost ACK: already stored, so acknowledge again and store nothing twice.
        ack = build_ack(original_text_or_message=message, code="AA", text="Duplicate: already stored.", now=now,
                        control_id=control_id)  # fmt: skip
        return MessageOutcome(ack=ack, stored=0)
    try:
        with transaction.atomic():
            rows = results_enter(
                entries=_entries_for(message, lookup),
                user=user,
                now=now,
                source=ResultSource.HL7,
                message_control_id=message.control_id[:60],
                catalogue=lookup.catalogue,
            )
    except (Hl7Error, ValidationError, Conflict) as problem:
        refusal = problem if isinstance(problem, Hl7Error) else Hl7Error(207, _reason(problem), "OBX", 5)
        ack = build_ack(original_text_or_message=message, code=refusal.ack_code, text=refusal.message, error=refusal,
                        now=now, control_id=control_id)  # fmt: skip
        return MessageOutcome(ack=ack, stored=0, error=refusal.message)
    ack = build_ack(original_text_or_message=message, code="AA", now=now, control_id=control_id)
    return MessageOutcome(ack=ack, stored=len(rows))


def _reason(problem: Exception) -> str:
    if isinstance(problem, ValidationError):
        return (
            "; ".join(f"{k}: {' '.join(v)}" for k, v in problem.message_dict.items())
            if hasattr(problem, "error_dict")
            else " ".join(problem.messages)
        )
    return str(problem)


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


def import_csv_group(group: CsvGroup, *, user: User, now: datetime, lookup: Lookup) -> int:
    """Store one specimen's rows (all or nothing); raises ValidationError naming the line and field."""
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
    with transaction.atomic():
        return len(
            results_enter(entries=entries, user=user, now=now, source=ResultSource.CSV, catalogue=lookup.catalogue)
        )


def hl7_messages(path: Path) -> list[str]:
    return split_batch(path.read_bytes())
