"""Writes on results: entry and import, verification, amendment, review, critical calls. What a value is and
means (parsing, flags, delta check, CTCAE grade, findings) is pure code in results/values.py and
results/interpretation.py (docs/architecture.md §8). Alerts for critical values and high-grade toxicity are raised
in the verifying transaction, not at the next sweep."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.module_loading import import_string

from alerts.choices import AlertKind, AlertSeverity, AlertStatus, ResolutionReason
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
)
from results.interpretation import interpret, interpret_censored, is_delta_failure, reference_range_for, result_findings
from results.models import CriticalCall, Result
from results.outbox import outbox_write
from results.selectors import Catalogue, ResultHistory, result_histories
from results.values import ParsedValue, parse_value, refuse
from specimens.choices import SpecimenStatus
from specimens.models import Specimen


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


@dataclass
class EntryContext:
    """What validating and interpreting a batch of entries needs from the database, loaded once."""

    catalogue: Catalogue
    existing: set[tuple[int, int]]  # (specimen, test) pairs that already have a current result
    histories: dict[tuple[int, int], ResultHistory]
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
    histories = result_histories({(e.specimen.patient_id, e.lab_test.pk) for e in entries})
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
            raise refuse(f"{where}specimen", f"Specimen {entry.specimen.accession} is not testable.", "specimen")
        key = (entry.specimen.pk, entry.lab_test.pk)
        if key in seen:
            raise refuse(f"{where}lab_test", f"{entry.lab_test.name} appears twice for one specimen.", "twice")
        seen.add(key)
    if context.existing & seen and not versions_by_caller:
        raise ResultConflict("A result already exists for this specimen and test; amend it instead.")
    rows = []
    for index, entry in enumerate(entries):
        where = f"results[{index}]." if len(entries) > 1 else ""
        spec = catalogue.specs[entry.lab_test.pk]
        lab_status = entry.lab.status
        valueless = lab_status in LAB_RETRACT_STATUSES or lab_status == LAB_NOT_OBTAINED
        parsed = ParsedValue() if valueless else parse_value(entry, spec, where, catalogue.answers[entry.lab_test.pk])
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


RESULT_FINDING_KINDS = (AlertKind.CRITICAL_RESULT, AlertKind.TOXICITY)  # what the oncologist's sign-off closes
RESULT_ALERT_KINDS = (*RESULT_FINDING_KINDS, AlertKind.RESULT_AMENDED)  # what a retraction by the lab closes


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
    # The EHR's copy (ORU^R01; an amendment as a correction) commits or rolls back with the verification.
    outbox_write(results=verified, now=now)
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
