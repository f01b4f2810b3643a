"""Writes on results: entry and import, flags, delta check, CTCAE grade, verification, amendment,
review, critical calls. Alerts for critical values and high-grade toxicity are raised in the
verifying transaction, not at the next sweep."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.models import Alert
from alerts.services import AlertCondition, alerts_raise
from labflow.errors import Conflict
from monitoring.choices import AWAITING_RESULT
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import monitoring_test_record_result
from patients.models import Patient
from results import ctcae
from results.choices import VERIFIED, ResultFlag, ResultSource, ResultStatus, ValueType
from results.models import CriticalCall, ReferenceRange, Result, ResultSpec
from results.signals import results_verified
from results.units import UnitError, convert
from specimens.choices import SpecimenStatus
from specimens.models import Specimen

MAX_VALUE = Decimal(10) ** 9  # value_numeric holds 10 integer digits


class ResultConflict(Conflict):
    """The result is not in a state that allows this step (HTTP 409)."""


@dataclass(frozen=True)
class ResultEntry:
    specimen: Specimen
    lab_test: LabTest
    value: str
    unit: str
    observed_at: datetime | None = None


@dataclass(frozen=True)
class Interpretation:
    reference_low: Decimal | None
    reference_high: Decimal | None
    flag: str
    ctcae_term: str
    ctcae_grade: int | None
    ctcae_lab_only: bool


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


def _parse(entry: ResultEntry, spec: ResultSpec, where: str) -> tuple[Decimal | None, str, str]:
    """(numeric value in the catalogue unit, text value, unit) or a ValidationError naming the field."""
    raw = entry.value.strip()
    if not raw:
        raise ValidationError({f"{where}value": "A value is required."})
    if spec.value_type == ValueType.TEXT:
        return None, raw[:200], ""
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValidationError({f"{where}value": f"{raw!r} is not a number."}) from None
    if not number.is_finite():
        raise ValidationError({f"{where}value": f"{raw!r} is not a number."})
    if number < 0 or number >= MAX_VALUE:
        raise ValidationError({f"{where}value": f"{raw!r} is outside the range a lab value can take (0 to 10^9)."})
    try:
        converted = convert(number, entry.unit, spec.unit, loinc=entry.lab_test.loinc_code)
    except UnitError as error:
        raise ValidationError({f"{where}unit": str(error)}) from None
    if converted >= MAX_VALUE:
        raise ValidationError({f"{where}value": f"{raw!r} {entry.unit} is outside the range a lab value can take."})
    return converted.quantize(Decimal(1).scaleb(-spec.decimal_places)), "", spec.unit


@dataclass
class EntryContext:
    """What validating and interpreting a batch of entries needs from the database, loaded once."""

    catalogue: Catalogue
    existing: set[tuple[int, int]]  # (specimen, test) pairs that already have a current result
    histories: dict[tuple[int, int], _History]
    patients: dict[int, Patient]


def entry_context(entries: Sequence[ResultEntry], catalogue: Catalogue | None = None) -> EntryContext:
    """Three queries for any number of entries (plus one for patients not already loaded)."""
    catalogue = catalogue or Catalogue()
    existing = set(
        Result.objects.filter(
            is_current=True,
            specimen_id__in={e.specimen.pk for e in entries},
            lab_test_id__in={e.lab_test.pk for e in entries},
        ).values_list("specimen_id", "lab_test_id")
    )
    patients: dict[int, Patient] = {}
    for entry in entries:
        if Specimen.patient.is_cached(entry.specimen):
            patients[entry.specimen.patient_id] = entry.specimen.patient
    missing = {e.specimen.patient_id for e in entries} - set(patients)
    patients.update((p.pk, p) for p in Patient.objects.filter(pk__in=missing))
    histories = _histories({(e.specimen.patient_id, e.lab_test.pk) for e in entries})
    return EntryContext(catalogue, existing, histories, patients)


def build_results(
    entries: Sequence[ResultEntry],
    *,
    context: EntryContext,
    user: User,
    now: datetime,
    source: ResultSource = ResultSource.MANUAL,
    message_control_id: str = "",
) -> list[Result]:
    """Validate, flag (L/H/LL/HH, delta) and CTCAE-grade entries without writing anything.

    Raises ValidationError naming the field, or ResultConflict when a result already exists."""
    catalogue = context.catalogue
    seen: set[tuple[int, int]] = set()
    for index, entry in enumerate(entries):
        where = f"results[{index}]." if len(entries) > 1 else ""
        if entry.lab_test.pk not in catalogue.specs:
            raise ValidationError({f"{where}lab_test": f"{entry.lab_test.name} is not a resultable analyte."})
        if entry.specimen.status in (SpecimenStatus.REJECTED, SpecimenStatus.DISPOSED):
            raise ValidationError({f"{where}specimen": f"Specimen {entry.specimen.accession} is not testable."})
        key = (entry.specimen.pk, entry.lab_test.pk)
        if key in seen:
            raise ValidationError({f"{where}lab_test": f"{entry.lab_test.name} appears twice for one specimen."})
        seen.add(key)
    if context.existing & seen:
        raise ResultConflict("A result already exists for this specimen and test; amend it instead.")
    rows = []
    for index, entry in enumerate(entries):
        where = f"results[{index}]." if len(entries) > 1 else ""
        spec = catalogue.specs[entry.lab_test.pk]
        number, text, unit = _parse(entry, spec, where)
        observed_at = entry.observed_at or entry.specimen.collected_at
        patient = context.patients[entry.specimen.patient_id]
        history = context.histories[(patient.pk, entry.lab_test.pk)]
        result = Result(
            patient=patient,
            specimen=entry.specimen,
            lab_test=entry.lab_test,
            value_numeric=number,
            value_text=text,
            decimal_places=spec.decimal_places,
            unit=unit,
            received_value=entry.value.strip()[:60],
            received_unit=entry.unit.strip()[:30],
            observed_at=observed_at,
            source=source,
            message_control_id=message_control_id,
            entered_at=now,
            entered_by=user,
        )
        if number is not None:
            meaning = interpret(
                spec=spec,
                value=number,
                rng=reference_range_for(catalogue.ranges[entry.lab_test.pk], patient, observed_at.date()),
                baseline=history.baseline,
            )
            result.reference_low, result.reference_high = meaning.reference_low, meaning.reference_high
            result.flag = meaning.flag
            result.ctcae_term, result.ctcae_grade = meaning.ctcae_term, meaning.ctcae_grade
            result.ctcae_lab_only = meaning.ctcae_lab_only
            result.ctcae_version = ctcae.VERSION if meaning.ctcae_term else ""
            recent = (
                history.previous_at is not None
                and spec.delta_window is not None
                and observed_at - history.previous_at <= spec.delta_window
            )
            result.delta_flag = recent and is_delta_failure(spec, number, history.previous)
        rows.append(result)
    context.existing |= seen  # a later batch member cannot add the same results again
    return rows


def results_store(rows: Sequence[Result]) -> list[Result]:
    """Insert built results in one transaction."""
    with transaction.atomic(savepoint=False):
        return Result.objects.bulk_create(rows, batch_size=2000)


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


def _raise_result_alerts(results: Sequence[Result], now: datetime) -> list[int]:
    critical: list[AlertCondition] = []
    toxic3: list[AlertCondition] = []
    toxic4: list[AlertCondition] = []
    amended: list[AlertCondition] = []
    for r in results:
        subject = r.root_id or r.pk
        value = f"{r.lab_test.name} {r.display_value}"
        if r.flag in (ResultFlag.CRITICAL_LOW, ResultFlag.CRITICAL_HIGH):
            critical.append(AlertCondition(subject, r.patient_id, f"Critical: {value} ({r.flag})"))
        if r.ctcae_grade is not None and r.ctcae_grade >= 3:
            condition = AlertCondition(subject, r.patient_id, f"CTCAE grade {r.ctcae_grade} {r.ctcae_term}: {value}")
            (toxic4 if r.ctcae_grade >= 4 else toxic3).append(condition)
        if r.version > 1:
            amended.append(AlertCondition(r.pk, r.patient_id, f"Amended: {value} ({r.amendment_reason[:80]})"))
    raised: list[int] = []
    for kind, severity, audience, conditions in (
        (AlertKind.CRITICAL_RESULT, AlertSeverity.CRITICAL, AlertAudience.CARE_TEAM, critical),
        (AlertKind.TOXICITY, AlertSeverity.CRITICAL, AlertAudience.ONCOLOGISTS, toxic4),
        (AlertKind.TOXICITY, AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS, toxic3),
        (AlertKind.RESULT_AMENDED, AlertSeverity.MODERATE, AlertAudience.CARE_TEAM, amended),
    ):
        raised += alerts_raise(
            kind=kind, severity=severity, subject_model=Result, conditions=conditions, now=now, audience=audience
        )
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
    for result in locked:
        if result.entered_by_id == user.pk:
            continue
        if result.status != ResultStatus.PRELIMINARY:
            if len(locked) == 1:
                raise ResultConflict("This result is already verified.")
            continue
        if result.supersedes is not None:
            Result.objects.filter(pk=result.supersedes.pk).update(is_current=False)
            result.is_current = True
            result.status = ResultStatus.AMENDED
        else:
            result.status = ResultStatus.FINAL
        result.verified_at, result.verified_by = now, user
        result.save(update_fields=["status", "verified_at", "verified_by", "is_current"])
        verified.append(result)
    alert_ids = _raise_result_alerts(verified, now)
    _satisfy_result_stages(verified, user, now)
    if verified:
        results_verified.send(sender=Result, results=verified, user=user, now=now)
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
    """Oncologist sign-off of verified, current results (already reviewed ones are left as they are)."""
    reviewable = Result.objects.select_for_update().filter(
        pk__in=[r.pk for r in results], status__in=VERIFIED, is_current=True, reviewed_at__isnull=True
    )
    rows = list(reviewable)
    if not rows:
        raise ResultConflict("Nothing to review: the results are not verified, not current or already reviewed.")
    Result.objects.filter(pk__in=[r.pk for r in rows]).update(reviewed_at=now, reviewed_by=user, review_comment=comment)
    return list(Result.objects.filter(pk__in=[r.pk for r in rows]))


def critical_call_record(
    *, alert: Alert, user: User, now: datetime, recipient: str, read_back_confirmed: bool, note: str = ""
) -> CriticalCall:
    """Log a critical-value call; the recipient must read back two identifiers and the value."""
    if alert.kind != AlertKind.CRITICAL_RESULT:
        raise ValidationError({"alert": "Calls are logged for critical-result alerts only."})
    if not recipient.strip():
        raise ValidationError({"recipient": "Name who took the call."})
    if not read_back_confirmed:
        reason = "The recipient must read back two identifiers and the value before the call counts."
        raise ValidationError({"read_back_confirmed": reason})
    return CriticalCall.objects.create(
        alert=alert, called_at=now, caller=user, recipient=recipient.strip(), read_back_confirmed=True, note=note
    )
