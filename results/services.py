"""Writes on results: entry and import, flags, delta check, CTCAE grade, verification, amendment,
review, critical calls. Alerts for critical values and high-grade toxicity are raised in the
verifying transaction, not at the next sweep."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.module_loading import import_string

from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.findings import Finding
from alerts.models import Alert
from alerts.services import (
    AlertCondition,
    alert_acknowledge,
    alert_raise_findings,
    alerts_raise,
    alerts_resolve_for_subjects,
    alerts_withdraw_findings,
)
from core.errors import Conflict
from monitoring.choices import AWAITING_RESULT
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import monitoring_test_record_result
from patients.models import Patient
from results import ctcae
from results.choices import (
    LAB_NOT_FINAL,
    LAB_NOT_OBTAINED,
    LAB_RETRACT_STATUSES,
    VERIFIED,
    ResultFlag,
    ResultSource,
    ResultStatus,
    ValueType,
)
from results.models import CriticalCall, ReferenceRange, Result, ResultAnswer, ResultSpec
from results.units import UnitError, convert
from specimens.choices import SpecimenStatus
from specimens.models import Specimen

MAX_VALUE = Decimal(10) ** 9  # value_numeric holds 10 integer digits


class ResultConflict(Conflict):
    """The result is not in a state that allows this step (HTTP 409)."""


@dataclass(frozen=True)
class LabReport:
    """What a laboratory sent beside the value (HL7 OBX-7, OBX-8, OBX-11, OBX-14, NTE), kept as sent."""

    reference_range: str = ""
    flags: str = ""
    status: str = ""  # OBX-11, HL7 table 0085
    observed_at: datetime | None = None
    comment: str = ""


NO_LAB_REPORT = LabReport()


@dataclass(frozen=True)
class ResultEntry:
    specimen: Specimen
    lab_test: LabTest
    value: str  # as text: "5.9", "<5", "1:128", "Reactive"; for a coded value its text (else its code)
    unit: str
    observed_at: datetime | None = None
    value_type: str = ""  # HL7 OBX-2 as received; "" when typed in or read from a CSV file
    code: str = ""  # coded values (CE/CWE): identifier and coding system, then the alternate pair
    code_system: str = ""
    alt_code: str = ""
    alt_system: str = ""
    lab: LabReport = NO_LAB_REPORT


@dataclass(frozen=True)
class Interpretation:
    reference_low: Decimal | None
    reference_high: Decimal | None
    flag: str
    ctcae_term: str
    ctcae_grade: int | None
    ctcae_lab_only: bool
    ctcae_assumed: bool = False  # the grade rests on CTCAE's worst-case clinical assumption


def _age_years(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def reference_range_for(ranges: Iterable[ReferenceRange], patient: Patient, on: date) -> ReferenceRange | None:
    """The most specific row for the patient's sex and age (a sex-specific row beats an 'any' row)."""
    age = _age_years(patient.birth_date, on)
    matching = [r for r in ranges if r.sex in ("", patient.sex) and r.age_min_years <= age <= r.age_max_years]
    return min(matching, key=lambda r: (r.sex == "", r.age_max_years - r.age_min_years), default=None)


def flag_for(value: Decimal, rng: ReferenceRange | None) -> str:
    """HL7 0078 flags; critical limits are inclusive."""
    if rng is None:
        return ResultFlag.NONE
    if rng.critical_low is not None and value <= rng.critical_low:
        return ResultFlag.CRITICAL_LOW
    if rng.critical_high is not None and value >= rng.critical_high:
        return ResultFlag.CRITICAL_HIGH
    if rng.low is not None and value < rng.low:
        return ResultFlag.LOW
    if rng.high is not None and value > rng.high:
        return ResultFlag.HIGH
    return ResultFlag.NORMAL


def interpret(
    *, spec: ResultSpec, value: Decimal, rng: ReferenceRange | None, baseline: Decimal | None
) -> Interpretation:
    low = rng.low if rng else None
    high = rng.high if rng else None
    below = low is not None and value < low
    term = spec.ctcae_term_low if (below and spec.ctcae_term_low) or not spec.ctcae_term_high else spec.ctcae_term_high
    graded = None
    if term:
        graded = ctcae.grade(
            term,
            value,
            unit=spec.unit,
            lln=float(low) if low is not None else None,
            uln=float(high) if high is not None else None,
            baseline=float(baseline) if baseline is not None else None,
        )
    return Interpretation(
        reference_low=low,
        reference_high=high,
        flag=flag_for(value, rng),
        ctcae_term=term,
        ctcae_grade=int(graded) if graded is not None else None,
        ctcae_lab_only=graded.lab_only if graded is not None else False,
        # `CtcaeGrade.assumed` is being added in results/ctcae.py; until then no grade counts as assumed.
        ctcae_assumed=bool(getattr(graded, "assumed", False)) if graded is not None else False,
    )


def is_delta_failure(spec: ResultSpec, value: Decimal, previous: Decimal | None) -> bool:
    """An implausible change from the previous verified result (within the spec's window)."""
    if previous is None:
        return False
    change = abs(value - previous)
    if spec.delta_absolute is not None and change > spec.delta_absolute:
        return True
    return bool(spec.delta_percent is not None and previous != 0 and change / abs(previous) * 100 > spec.delta_percent)


@dataclass
class _History:
    baseline: Decimal | None = None
    previous: Decimal | None = None
    previous_at: datetime | None = None


def _histories(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], _History]:
    """Baseline (first verified) and latest verified value per (patient, test), in one query."""
    histories: dict[tuple[int, int], _History] = defaultdict(_History)
    if not pairs:
        return histories
    patient_ids = {p for p, _ in pairs}
    test_ids = {t for _, t in pairs}
    rows = (
        Result.objects.filter(
            patient_id__in=patient_ids, lab_test_id__in=test_ids, status__in=VERIFIED, is_current=True
        )
        .exclude(value_numeric=None)
        .filter(value_comparator="")  # a censored value ("<5") is no baseline and no previous value
        .order_by("observed_at", "id")
        .values_list("patient_id", "lab_test_id", "value_numeric", "observed_at")
    )
    for patient_id, test_id, value, observed_at in rows:
        history = histories[(patient_id, test_id)]
        if history.baseline is None:
            history.baseline = value
        history.previous, history.previous_at = value, observed_at
    return histories


class Catalogue:
    """Result specs and reference ranges, loaded once per batch."""

    def __init__(self) -> None:
        self.specs = {s.lab_test_id: s for s in ResultSpec.objects.select_related("lab_test")}
        self.ranges: dict[int, list[ReferenceRange]] = defaultdict(list)
        for rng in ReferenceRange.objects.all():
            self.ranges[rng.lab_test_id].append(rng)
        self.answers: dict[int, list[ResultAnswer]] = defaultdict(list)
        for answer in ResultAnswer.objects.all():
            self.answers[answer.lab_test_id].append(answer)


_NUMBER_TEXT = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_CENSORED = re.compile(rf"(<=|>=|<|>|=)?\s*({_NUMBER_TEXT})")
_RANGE_OR_RATIO = re.compile(rf"{_NUMBER_TEXT}\s*(?:[-:/]\s*{_NUMBER_TEXT}|\+)")
CODED_VALUE_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
TEXT_LIMIT = 200  # Result.value_text
#: Names of SNOMED CT as coding systems arrive in CWE-3 (HL7 0396 "SCT", older "SNM"/"SNM3", OIDs, URIs).
SNOMED_SYSTEMS = frozenset({"SCT", "SNM", "SNM3", "SNOMED", "SNOMEDCT", "SNOMED-CT", "2.16.840.1.113883.6.96",
                            "HTTP://SNOMED.INFO/SCT"})  # fmt: skip


@dataclass(frozen=True)
class ParsedValue:
    """A value as stored: a number (exact or censored, in the catalogue unit), text, or a catalogue answer."""

    number: Decimal | None = None
    comparator: str = ""  # "<", "<=", ">", ">=" for a censored number
    decimal_places: int | None = None
    text: str = ""
    unit: str = ""
    answer: ResultAnswer | None = None
    code: str = ""
    code_system: str = ""
    overflow: str = ""  # text beyond value_text's limit, kept whole in lab_comment


def _refuse(field: str, message: str, code: str) -> ValidationError:
    """A refusal naming the field; ``code`` says what is wrong without the value (for ACKs and logs)."""
    return ValidationError({field: ValidationError(message, code=code)})


def _system(system: str) -> str:
    upper = system.strip().upper()
    return "SCT" if upper in SNOMED_SYSTEMS else upper


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def match_answer(entry: ResultEntry, answers: Sequence[ResultAnswer], where: str) -> ResultAnswer:
    """The catalogue answer a coded (or textual) value stands for: by coding system and code (either CWE
    triplet), else by its text or code; refused when unknown, or when code and text name different answers."""
    by_code = None
    for code, system in ((entry.code, entry.code_system), (entry.alt_code, entry.alt_system)):
        code = code.strip()
        if code and by_code is None:
            by_code = next((a for a in answers if a.code == code and _system(a.system) == _system(system)), None)
    words = _words(entry.value)
    by_text = next((a for a in answers if words and words in (_words(a.text), _words(a.code))), None)
    if by_code is None and entry.code and not by_text:
        by_text = next((a for a in answers if _words(entry.code) in (_words(a.text), _words(a.code))), None)
    if by_code is not None and by_text is not None and by_code.pk != by_text.pk:
        raise _refuse(
            f"{where}value", "The code and the text of the answer name different answers.", "answer_disagrees"
        )
    answer = by_code or by_text
    if answer is None:
        known = ", ".join(a.text for a in answers) or "none catalogued"
        raise _refuse(
            f"{where}value", f"Not an answer of {entry.lab_test.name} (catalogued: {known}).", "unknown_answer"
        )
    return answer


def _parse(entry: ResultEntry, spec: ResultSpec, where: str, answers: Sequence[ResultAnswer] = ()) -> ParsedValue:
    """The value as stored, by the spec's value type, or a ValidationError naming the field.

    NM/SN specs take a number or a censored number (``<5``, ``>=11.0``: comparator + number, converted to the
    catalogue unit); an SN spec also takes a range (``1-3``) or ratio (``1:128``), kept as text. ST specs keep
    text as it is (HL7 escapes already decoded). CWE specs take a catalogue answer (matched by code or text).
    """
    raw = entry.value.strip()
    if not raw and not entry.code.strip():
        raise _refuse(f"{where}value", "A value is required.", "required")
    if spec.value_type == ValueType.TEXT:
        overflow = raw if len(raw) > TEXT_LIMIT else ""
        return ParsedValue(text=raw if not overflow else raw[: TEXT_LIMIT - 1] + "…", overflow=overflow)
    if spec.value_type == ValueType.CODED:
        answer = match_answer(entry, answers, where)
        return ParsedValue(text=(raw or answer.text)[:TEXT_LIMIT], answer=answer, code=answer.code,
                           code_system=answer.system)  # fmt: skip
    if entry.value_type.upper() in CODED_VALUE_TYPES:
        raise _refuse(f"{where}value", f"A coded value cannot be stored: {entry.lab_test.name} is a number.",
                      "coded_for_number")  # fmt: skip
    censored = _CENSORED.fullmatch(raw)
    if censored is None:
        if _RANGE_OR_RATIO.fullmatch(raw):
            if spec.value_type == ValueType.STRUCTURED_NUMERIC:
                return ParsedValue(text=re.sub(r"\s+", "", raw), unit=entry.unit.strip()[:30])
            raise _refuse(f"{where}value", f"A range or ratio cannot be stored: {entry.lab_test.name} is one number.",
                          "range_or_ratio")  # fmt: skip
        raise _refuse(f"{where}value", f"{raw!r} is not a number.", "not_a_number")
    comparator = "" if censored.group(1) in (None, "=") else censored.group(1)
    try:
        number = Decimal(censored.group(2))
    except InvalidOperation:
        raise _refuse(f"{where}value", f"{raw!r} is not a number.", "not_a_number") from None
    if not number.is_finite():
        raise _refuse(f"{where}value", f"{raw!r} is not a number.", "not_a_number")
    if number < 0 or number >= MAX_VALUE:
        raise _refuse(f"{where}value", f"{raw!r} is outside the range a lab value can take (0 to 10^9).",
                      "out_of_range")  # fmt: skip
    try:
        converted = convert(number, entry.unit, spec.unit, loinc=entry.lab_test.loinc_code)
    except UnitError as error:
        raise _refuse(f"{where}unit", str(error), "unit") from None
    if converted >= MAX_VALUE:
        raise _refuse(f"{where}value", f"{raw!r} {entry.unit} is outside the range a lab value can take.",
                      "out_of_range")  # fmt: skip
    if not comparator:
        return ParsedValue(number=converted.quantize(Decimal(1).scaleb(-spec.decimal_places)), unit=spec.unit)
    # A censored bound is never rounded: "<0.05" rounded to one decimal would claim "<0.0" (or lose "<0.05").
    places = min(max(spec.decimal_places, -int(converted.normalize().as_tuple().exponent)), 4)
    bound = converted.quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP if comparator[0] == "<" else ROUND_DOWN)
    return ParsedValue(number=bound, comparator=comparator, decimal_places=places, unit=spec.unit)


_EPSILON = Decimal("0.000001")
_LOW_FLAGS = frozenset({ResultFlag.LOW, ResultFlag.CRITICAL_LOW})
_HIGH_FLAGS = frozenset({ResultFlag.HIGH, ResultFlag.CRITICAL_HIGH})


def interpret_censored(
    *, spec: ResultSpec, comparator: str, bound: Decimal, rng: ReferenceRange | None, baseline: Decimal | None
) -> Interpretation:
    """Flag and grade a censored value ("<5", ">11.0") only as far as they hold for every value it stands for.

    The true value lies in [0, 5) for "<5" and (11.0, 10^9) for ">11.0". Both ends are interpreted: the flag
    is kept when both ends share it; when both are below the reference range (L or LL) the flag is L ("at least
    low"), when both are above (H or HH) it is H; otherwise no flag (e.g. "<5" for an analyte whose range starts
    at 3 cannot be said normal, nor low). The CTCAE grade is kept only when both ends have the same term and
    grade; otherwise the result is not graded (a human reads the value).
    """
    if comparator.startswith("<"):
        ends = (Decimal(0), bound if comparator == "<=" else bound - _EPSILON)
    else:
        ends = (bound if comparator == ">=" else bound + _EPSILON, MAX_VALUE - 1)
    low, high = (interpret(spec=spec, value=max(end, Decimal(0)), rng=rng, baseline=baseline) for end in ends)
    if low.flag == high.flag:
        flag = low.flag
    elif {low.flag, high.flag} <= _LOW_FLAGS:
        flag = ResultFlag.LOW
    elif {low.flag, high.flag} <= _HIGH_FLAGS:
        flag = ResultFlag.HIGH
    else:
        flag = ResultFlag.NONE
    graded = low.ctcae_term == high.ctcae_term and low.ctcae_grade == high.ctcae_grade
    return replace(
        low,
        flag=flag,
        ctcae_term=low.ctcae_term if graded else "",
        ctcae_grade=low.ctcae_grade if graded else None,
        ctcae_lab_only=low.ctcae_lab_only if graded else False,
        ctcae_assumed=(low.ctcae_assumed or high.ctcae_assumed) if graded else False,
    )


@dataclass
class EntryContext:
    """What validating and interpreting a batch of entries needs from the database, loaded once."""

    catalogue: Catalogue
    existing: set[tuple[int, int]]  # (specimen, test) pairs that already have a current result
    histories: dict[tuple[int, int], _History]
    patients: dict[int, Patient]
    heads: dict[tuple[int, int], Heads] = field(default_factory=dict)  # (specimen, test) -> current and latest


@dataclass
class Heads:
    """Of the versions of one specimen's result for one test: the current one and the latest one (the same
    row, unless an amendment awaits verification)."""

    current: Result | None = None
    latest: Result | None = None


def entry_context(entries: Sequence[ResultEntry], catalogue: Catalogue | None = None) -> EntryContext:
    """Three queries for any number of entries (plus one for patients not already loaded)."""
    catalogue = catalogue or Catalogue()
    heads: dict[tuple[int, int], Heads] = defaultdict(Heads)
    for row in Result.objects.filter(
        Q(is_current=True) | Q(superseded_by__isnull=True),
        specimen_id__in={e.specimen.pk for e in entries},
        lab_test_id__in={e.lab_test.pk for e in entries},
    ):
        head = heads[(row.specimen_id, row.lab_test_id)]
        if row.is_current:
            head.current = row
        if head.latest is None or row.version > head.latest.version:
            head.latest = row
    existing = {key for key, head in heads.items() if head.current is not None}
    patients: dict[int, Patient] = {}
    for entry in entries:
        if Specimen.patient.is_cached(entry.specimen):
            patients[entry.specimen.patient_id] = entry.specimen.patient
    missing = {e.specimen.patient_id for e in entries} - set(patients)
    patients.update((p.pk, p) for p in Patient.objects.filter(pk__in=missing))
    histories = _histories({(e.specimen.patient_id, e.lab_test.pk) for e in entries})
    return EntryContext(catalogue, existing, histories, patients, dict(heads))


def build_results(
    entries: Sequence[ResultEntry],
    *,
    context: EntryContext,
    user: User,
    now: datetime,
    source: ResultSource = ResultSource.MANUAL,
    message_control_id: str = "",
    versions_by_caller: bool = False,
) -> list[Result]:
    """Validate, flag (L/H/LL/HH, A for an abnormal answer, delta) and CTCAE-grade entries without writing.

    Raises ValidationError naming the field, or ResultConflict when a result already exists (unless
    ``versions_by_caller``: a laboratory's later report of the same result is placed by :func:`place_lab_results`).
    An entry whose laboratory status is W/D (retracted) or X (cannot be obtained) is built without a value."""
    catalogue = context.catalogue
    seen: set[tuple[int, int]] = set()
    for index, entry in enumerate(entries):
        where = f"results[{index}]." if len(entries) > 1 else ""
        if entry.lab_test.pk not in catalogue.specs:
            raise ValidationError({f"{where}lab_test": f"{entry.lab_test.name} is not a resultable analyte."})
        if entry.specimen.status in (SpecimenStatus.REJECTED, SpecimenStatus.DISPOSED):
            raise _refuse(f"{where}specimen", f"Specimen {entry.specimen.accession} is not testable.", "specimen")
        key = (entry.specimen.pk, entry.lab_test.pk)
        if key in seen:
            raise _refuse(f"{where}lab_test", f"{entry.lab_test.name} appears twice for one specimen.", "twice")
        seen.add(key)
    if context.existing & seen and not versions_by_caller:
        raise ResultConflict("A result already exists for this specimen and test; amend it instead.")
    rows = []
    for index, entry in enumerate(entries):
        where = f"results[{index}]." if len(entries) > 1 else ""
        spec = catalogue.specs[entry.lab_test.pk]
        lab_status = entry.lab.status
        valueless = lab_status in LAB_RETRACT_STATUSES or lab_status == LAB_NOT_OBTAINED
        parsed = ParsedValue() if valueless else _parse(entry, spec, where, catalogue.answers[entry.lab_test.pk])
        number = parsed.number
        observed_at = entry.observed_at or entry.specimen.collected_at
        patient = context.patients[entry.specimen.patient_id]
        history = context.histories[(patient.pk, entry.lab_test.pk)]
        received = entry.value.strip()
        if entry.code and not valueless:
            received = "^".join((entry.code.strip(), received, entry.code_system.strip()))
        comment = entry.lab.comment
        if parsed.overflow:
            comment = f"{parsed.overflow}\n{comment}".strip()
        result = Result(
            patient=patient,
            specimen=entry.specimen,
            lab_test=entry.lab_test,
            value_numeric=number,
            value_text=parsed.text,
            value_comparator=parsed.comparator,
            value_code=parsed.code,
            value_code_system=parsed.code_system,
            decimal_places=parsed.decimal_places if parsed.decimal_places is not None else spec.decimal_places,
            unit=parsed.unit,
            received_value=received[:60],
            received_unit=entry.unit.strip()[:30],
            observed_at=observed_at,
            lab_reference_range=entry.lab.reference_range[:60],
            lab_flags=entry.lab.flags[:20],
            lab_status=lab_status[:1],
            lab_observed_at=entry.lab.observed_at,
            lab_comment=comment,
            source=source,
            message_control_id=message_control_id,
            entered_at=now,
            entered_by=user,
        )
        if lab_status in LAB_RETRACT_STATUSES:
            result.status = ResultStatus.RETRACTED
        elif lab_status == LAB_NOT_OBTAINED:
            result.status = ResultStatus.NOT_OBTAINED
        if parsed.answer is not None:
            result.flag = ResultFlag.ABNORMAL if parsed.answer.abnormal else ResultFlag.NORMAL
        if number is not None:
            rng = reference_range_for(catalogue.ranges[entry.lab_test.pk], patient, observed_at.date())
            if parsed.comparator:
                meaning = interpret_censored(
                    spec=spec, comparator=parsed.comparator, bound=number, rng=rng, baseline=history.baseline
                )
            else:
                meaning = interpret(spec=spec, value=number, rng=rng, baseline=history.baseline)
            result.reference_low, result.reference_high = meaning.reference_low, meaning.reference_high
            result.flag = meaning.flag
            result.ctcae_term, result.ctcae_grade = meaning.ctcae_term, meaning.ctcae_grade
            result.ctcae_lab_only = meaning.ctcae_lab_only
            result.ctcae_assumed = meaning.ctcae_assumed
            result.ctcae_version = ctcae.VERSION if meaning.ctcae_term else ""
            recent = (
                history.previous_at is not None
                and spec.delta_window is not None
                and observed_at - history.previous_at <= spec.delta_window
            )
            result.delta_flag = not parsed.comparator and recent and is_delta_failure(spec, number, history.previous)
        rows.append(result)
    context.existing |= seen  # a later batch member cannot add the same results again
    return rows


def results_store(rows: Sequence[Result]) -> list[Result]:
    """Insert built results in one transaction."""
    with transaction.atomic(savepoint=False):
        return Result.objects.bulk_create(rows, batch_size=2000)


_VALUE_FIELDS = ("received_value", "received_unit", "value_code", "lab_status")


@dataclass
class LabPlacement:
    """Rows to insert and earlier rows changed (status, is_current) when a laboratory's reports are stored."""

    inserts: list[Result] = field(default_factory=list)
    changed: dict[int, Result] = field(default_factory=dict)
    unchanged: int = 0  # reports identical to what is stored (a resend under another control id)
    pending: set[tuple[int, int]] = field(default_factory=set)  # (specimen, test) of `inserts`, kept alongside
    retracted: set[int] = field(default_factory=set)  # versions the lab retracted, and their roots: alert subjects

    def keys(self) -> set[tuple[int, int]]:
        """(specimen, test) of the rows waiting to be inserted (kept as they are placed: asked once per message)."""
        return self.pending


def place_lab_results(rows: Sequence[Result], *, context: EntryContext, placement: LabPlacement) -> list[Result]:
    """Place results built from a laboratory's reports (OBX-11) among the versions already stored; returns the
    rows that will be inserted (a report identical to the latest version is skipped).

    * F, P, C, R, S (a value): the first report of a specimen's test is version 1. A later one is a new version
      that supersedes the latest one, the earlier ones kept: while nothing is verified it becomes the current
      version at once (a preliminary replaced by the final, or by a correction); once a version is verified it
      is an amendment that awaits verification, as :func:`result_amend` makes (C is the lab's correction).
    * W, D (wrong, deleted): every earlier version that is not yet retracted or not-obtained is marked retracted
      and no longer current; the retraction itself is recorded as the current version (never verifiable, never
      shown as valid, not read by the dose gate, which reads verified results only).
    * X (cannot be obtained): recorded as the current version, status not_obtained; earlier versions stop being
      current. No verified result exists, so the monitoring test stays open.

    The rows of ``placement.inserts`` must be stored (:func:`lab_results_store`) before a later report of the
    same specimen's test is placed: callers flush when :meth:`LabPlacement.keys` already holds the key.
    """
    placed: list[Result] = []
    for row in rows:
        key = (row.specimen_id, row.lab_test_id)
        head = context.heads.setdefault(key, Heads())
        latest, current = head.latest, head.current
        if latest is not None and latest.pk is None:
            raise RuntimeError("store the pending results of this specimen's test before placing another report")
        if (
            latest is not None
            and all(getattr(latest, f) == getattr(row, f) for f in _VALUE_FIELDS)
            and (latest.status not in (ResultStatus.RETRACTED, ResultStatus.NOT_OBTAINED))
        ):
            placement.unchanged += 1
            continue
        if latest is not None:
            row.version = latest.version + 1
            row.root_id = latest.root_id or latest.pk
            row.supersedes = latest
            row.delta_flag = False  # the delta check belongs to the first report, not to its corrections
            row.amendment_reason = LAB_REASONS.get(row.lab_status, LAB_REASONS["F"]).format(status=row.lab_status)
        retracting = row.status in (ResultStatus.RETRACTED, ResultStatus.NOT_OBTAINED)
        awaits_verification = not retracting and current is not None and current.status in VERIFIED
        row.is_current = not awaits_verification
        if row.is_current and current is not None:
            current.is_current = False
            placement.changed[current.pk] = current
        if row.status == ResultStatus.RETRACTED and latest is not None:
            for earlier in _versions(latest, context):
                if earlier.status not in (ResultStatus.RETRACTED, ResultStatus.NOT_OBTAINED):
                    earlier.status, earlier.is_current = ResultStatus.RETRACTED, False
                    placement.changed[earlier.pk] = earlier
                    placement.retracted |= {earlier.pk, earlier.root_id or earlier.pk}
        head.latest = row
        if row.is_current:
            head.current = row
        placement.inserts.append(row)
        placement.pending.add(key)
        placed.append(row)
    return placed


LAB_REASONS = {
    "C": "Corrected by the laboratory (OBX-11 C).",
    "W": "Retracted by the laboratory: result was wrong (OBX-11 W).",
    "D": "Deleted by the laboratory (OBX-11 D).",
    "X": "The laboratory could not obtain a result (OBX-11 X).",
    "F": "Reported again by the laboratory (OBX-11 {status}).",
}


def _versions(latest: Result, context: EntryContext) -> list[Result]:
    """The stored versions of a specimen's test result, newest first (the chain ``latest`` ends)."""
    chain: list[Result] = []
    row: Result | None = latest
    while row is not None and row.pk is not None:
        chain.append(row)
        row = row.supersedes if row.supersedes_id is not None else None
    current = context.heads[(latest.specimen_id, latest.lab_test_id)].current
    if current is not None and current.pk is not None and all(r.pk != current.pk for r in chain):
        chain.append(current)
    return chain


def lab_results_store(placement: LabPlacement, *, user: User, now: datetime) -> list[Result]:
    """Write what :func:`place_lab_results` decided, in one transaction: earlier versions first (no longer
    current, or retracted), then the new rows. The open alerts about retracted results (critical value and
    toxicity alerts are about the first version, an amendment's alert about its own) are resolved: the finding
    they report no longer stands. Clears ``placement`` for the next batch."""
    with transaction.atomic(savepoint=False):
        for earlier in placement.changed.values():
            earlier.save(update_fields=["status", "is_current"])
        stored = Result.objects.bulk_create(placement.inserts, batch_size=2000)
        retracted = sorted(placement.retracted)
        alerts_withdraw_findings(
            subject_model=Result, subject_ids=retracted, reason=ResolutionReason.RESULT_RETRACTED, user=user, now=now
        )
        alerts_resolve_for_subjects(
            subject_model=Result,
            subject_ids=retracted,
            kinds=RESULT_ALERT_KINDS,
            reason=ResolutionReason.RESULT_RETRACTED,
            user=user,
            now=now,
        )
    placement.inserts, placement.changed, placement.pending, placement.retracted = [], {}, set(), set()
    return stored


def results_enter(
    *,
    entries: Sequence[ResultEntry],
    user: User,
    now: datetime,
    source: ResultSource = ResultSource.MANUAL,
    message_control_id: str = "",
    catalogue: Catalogue | None = None,
) -> list[Result]:
    """Store preliminary results, flagged (L/H/LL/HH, delta) and CTCAE-graded. All or nothing."""
    context = entry_context(entries, catalogue)
    rows = build_results(
        entries, context=context, user=user, now=now, source=source, message_control_id=message_control_id
    )
    return results_store(rows)


@dataclass
class VerifyOutcome:
    verified: list[Result]
    skipped_own: list[Result]
    alerts: list[int]


CRITICAL_FLAGS = (ResultFlag.CRITICAL_LOW, ResultFlag.CRITICAL_HIGH)
RESULT_FINDING_KINDS = (AlertKind.CRITICAL_RESULT, AlertKind.TOXICITY)  # what the oncologist's sign-off closes
RESULT_ALERT_KINDS = (*RESULT_FINDING_KINDS, AlertKind.RESULT_AMENDED)  # what a retraction by the lab closes


def ctcae_label(result: Result) -> str:
    """'CTCAE grade 3 (assumed) Hyponatremia': the grade, whether it rests on CTCAE's worst-case clinical
    assumption, and the term."""
    assumed = " (assumed)" if result.ctcae_assumed else ""
    return f"CTCAE grade {result.ctcae_grade}{assumed} {result.ctcae_term}"


def _direction(result: Result) -> str:
    """Which way the value is abnormal: a potassium that swings from critically low to critically high is a new
    finding, not a repeat."""
    if result.flag in (ResultFlag.LOW, ResultFlag.CRITICAL_LOW):
        return "low"
    if result.flag in (ResultFlag.HIGH, ResultFlag.CRITICAL_HIGH):
        return "high"
    return result.ctcae_term or "abnormal"


def result_findings(result: Result) -> list[Finding]:
    """What a verified result means for an alert: its critical value and its CTCAE grade >= 3, as one finding
    keyed by the analyte and the direction (a repeat is the same key). A critical value is for the care team (the
    lab phones it to the nurse, who acts at once), a grade >= 3 toxicity for the oncologists; grade 4 and critical
    values are critical, grade 3 high."""
    value = f"{result.lab_test.name} {result.display_value}"
    grade = result.ctcae_grade if result.ctcae_term and result.ctcae_grade else 0
    critical = result.flag in CRITICAL_FLAGS
    if not critical and grade < 3:
        return []
    if critical:
        label = f"Critical: {value} ({result.flag})" + (f" · {ctcae_label(result)}" if grade else "")
    else:
        label = f"{ctcae_label(result)}: {value}"
    severity = AlertSeverity.CRITICAL if critical or grade >= 4 else AlertSeverity.HIGH
    audience = AlertAudience.CARE_TEAM if critical else AlertAudience.ONCOLOGISTS
    return [
        Finding(
            key=f"lab:{result.lab_test_id}:{_direction(result)}",
            label=label[:160],
            severity=severity,
            audience=audience,
            grade=grade,
            critical=critical,
            subject_id=result.root_id or result.pk,
        )
    ]


def _raise_result_alerts(results: Sequence[Result], extra: Sequence[tuple[int, Finding]], now: datetime) -> list[int]:
    """One alert per patient for the verified results' findings (and the later apps' `extra` findings, e.g. a
    dose's hold rule), folded into the patient's unresolved findings alert; one amendment alert per amended
    result."""
    by_patient: dict[int, list[Finding]] = defaultdict(list)
    anchors: dict[int, int] = {}
    amended: list[AlertCondition] = []
    for r in sorted(results, key=lambda r: r.pk):
        for finding in result_findings(r):
            by_patient[r.patient_id].append(finding)
            anchors.setdefault(r.patient_id, r.pk)
        if r.version > 1:
            value = f"{r.lab_test.name} {r.display_value}"
            amended.append(AlertCondition(r.pk, r.patient_id, f"Amended: {value} ({r.amendment_reason[:80]})"[:200]))
    for patient_id, finding in extra:
        by_patient[patient_id].append(finding)
    first_result = {r.patient_id: r.pk for r in sorted(results, key=lambda r: r.pk, reverse=True)}
    raised: list[int] = []
    for patient_id, findings in by_patient.items():
        alert_id, _ = alert_raise_findings(
            patient_id=patient_id,
            subject_model=Result,
            subject_id=anchors.get(patient_id, first_result[patient_id]),
            findings=findings,
            now=now,
        )
        raised.append(alert_id)
    raised += alerts_raise(
        kind=AlertKind.RESULT_AMENDED, severity=AlertSeverity.MODERATE, subject_model=Result, conditions=amended,
        now=now,
    )  # fmt: skip
    return raised


def _satisfy_result_stages(results: Sequence[Result], user: User, now: datetime) -> None:
    """A monitoring test is satisfied once every analyte it stands for has a verified result."""
    specimen_ids = {r.specimen_id for r in results}
    tests = MonitoringTest.objects.filter(specimens__in=specimen_ids, status__in=AWAITING_RESULT).distinct()
    for test in tests.select_related("lab_test").prefetch_related("lab_test__components", "specimens"):
        needed = {c.pk for c in test.lab_test.components.all()} or {test.lab_test_id}
        done = set(
            Result.objects.filter(
                specimen__in=test.specimens.all(), lab_test_id__in=needed, is_current=True, status__in=VERIFIED
            ).values_list("lab_test_id", flat=True)
        )
        if needed <= done:
            monitoring_test_record_result(monitoring_test=test, user=user, now=now)


def _not_verifiable(result: Result, superseded: set[int]) -> str:
    """Why a result cannot be verified ("" when it can)."""
    if result.status == ResultStatus.RETRACTED:
        return "The laboratory retracted this result: it cannot be verified."
    if result.status == ResultStatus.NOT_OBTAINED:
        return "The laboratory could not obtain this result: there is nothing to verify."
    if result.status != ResultStatus.PRELIMINARY:
        return "This result is already verified."
    if result.pk in superseded:
        return "A later version of this result has arrived: verify that one."
    if result.lab_status in LAB_NOT_FINAL:
        return f"The laboratory reported this result as preliminary (OBX-11 {result.lab_status}): verify the final one."
    return ""


@transaction.atomic
def results_verify(*, results: Sequence[Result], user: User, now: datetime) -> VerifyOutcome:
    """Verify results entered by others; one's own are skipped (a single own result is refused)."""
    locked = list(
        Result.objects.select_for_update(of=("self",))
        .select_related("lab_test", "supersedes")
        .filter(pk__in=[r.pk for r in results])
        .order_by("pk")
    )
    own = [r for r in locked if r.entered_by_id == user.pk]
    if own and len(own) == len(locked):
        raise PermissionDenied("You entered this result: another technician must verify it.")
    verified = []
    superseded = set(
        Result.objects.filter(supersedes__in=[r.pk for r in locked]).values_list("supersedes_id", flat=True)
    )
    for result in locked:
        if result.entered_by_id == user.pk:
            continue
        refusal = _not_verifiable(result, superseded)
        if refusal:
            if len(locked) == 1:
                raise ResultConflict(refusal)
            continue
        if result.supersedes is not None:
            versions = Result.objects.filter(specimen_id=result.specimen_id, lab_test_id=result.lab_test_id)
            versions.filter(is_current=True).exclude(pk=result.pk).update(is_current=False)
            result.is_current = True
            was_verified = versions.filter(status__in=VERIFIED).exclude(pk=result.pk).exists()
            result.status = ResultStatus.AMENDED if was_verified else ResultStatus.FINAL
        else:
            result.status = ResultStatus.FINAL
        result.verified_at, result.verified_by = now, user
        result.save(update_fields=["status", "verified_at", "verified_by", "is_current"])
        verified.append(result)
    extra: list[tuple[int, Finding]] = []
    if verified:
        # Later apps act on verified results (e.g. dose gates, lab patterns); the project names them in settings.
        # What they find (a dose's hold rule) goes into the same alert as the results' own findings.
        for hook in settings.RESULTS_VERIFIED_HOOKS:
            extra += import_string(hook)(results=verified, now=now) or []
    alert_ids = _raise_result_alerts(verified, extra, now)
    _satisfy_result_stages(verified, user, now)
    return VerifyOutcome(verified=verified, skipped_own=own, alerts=alert_ids)


@transaction.atomic
def result_amend(*, result: Result, value: str, unit: str, reason: str, user: User, now: datetime) -> Result:
    """A corrected value for a verified result: a new version, preliminary until another technician
    verifies it; the original stays visible and current until then."""
    if not reason.strip():
        raise ValidationError({"reason": "An amendment needs a reason."})
    original = Result.objects.select_for_update().select_related("specimen", "lab_test").get(pk=result.pk)
    if original.status not in VERIFIED or not original.is_current:
        raise ResultConflict("Only the current verified version of a result can be amended.")
    if Result.objects.filter(supersedes=original).exists():
        raise ResultConflict("An amendment of this result is already awaiting verification.")
    entry = ResultEntry(original.specimen, original.lab_test, value, unit, original.observed_at)
    context = entry_context([entry])
    context.existing.discard((original.specimen_id, original.lab_test_id))  # the amendment supersedes it
    (amended,) = build_results([entry], context=context, user=user, now=now)
    amended.version = original.version + 1
    amended.root_id = original.root_id or original.pk
    amended.supersedes = original
    amended.is_current = False
    amended.amendment_reason = reason.strip()
    amended.delta_flag = False  # the delta check belongs to the first entry, not to its correction
    amended.save()
    return amended


@transaction.atomic
def results_review(*, results: Sequence[Result], user: User, now: datetime, comment: str = "") -> list[Result]:
    """Oncologist sign-off of verified, current results (already reviewed ones are left as they are).

    The sign-off closes the loop: the results' critical-value and toxicity alerts are resolved (who, when,
    "result reviewed"), so they no longer escalate."""
    reviewable = Result.objects.select_for_update().filter(
        pk__in=[r.pk for r in results], status__in=VERIFIED, is_current=True, reviewed_at__isnull=True
    )
    rows = list(reviewable)
    if not rows:
        raise ResultConflict("Nothing to review: the results are not verified, not current or already reviewed.")
    Result.objects.filter(pk__in=[r.pk for r in rows]).update(reviewed_at=now, reviewed_by=user, review_comment=comment)
    alerts_resolve_for_subjects(
        subject_model=Result,
        subject_ids=sorted({r.root_id or r.pk for r in rows}),  # alerts are about a result's first version
        kinds=RESULT_FINDING_KINDS,
        reason=ResolutionReason.RESULT_REVIEWED,
        user=user,
        now=now,
        comment=comment,
    )
    return list(Result.objects.filter(pk__in=[r.pk for r in rows]))


@transaction.atomic
def critical_call_record(
    *, alert: Alert, user: User, now: datetime, recipient: str, read_back_confirmed: bool, note: str = ""
) -> CriticalCall:
    """Log a critical-value call; the recipient must read back two identifiers and the value.

    The read-back call acknowledges the alert (by the caller, at the call's time) if nobody has yet."""
    if alert.kind != AlertKind.CRITICAL_RESULT:
        raise ValidationError({"alert": "Calls are logged for critical-result alerts only."})
    if not recipient.strip():
        raise ValidationError({"recipient": "Name who took the call."})
    if not read_back_confirmed:
        reason = "The recipient must read back two identifiers and the value before the call counts."
        raise ValidationError({"read_back_confirmed": reason})
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    call = CriticalCall.objects.create(
        alert=alert, called_at=now, caller=user, recipient=recipient.strip(), read_back_confirmed=True, note=note
    )
    if alert.status == AlertStatus.OPEN:
        comment = f"Critical value called to {recipient.strip()}; read back confirmed."
        alert_acknowledge(alert=alert, user=user, now=now, comment=comment)
    return call
