"""Writes on specimens: collection, receipt, rejection with recollection, custody, label prints."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from stdnum import damm

from alerts.choices import AlertKind, AlertSeverity, ResolutionReason
from alerts.services import AlertCondition, alerts_raise, alerts_resolve_for_subject
from core.errors import Conflict
from monitoring.choices import AWAITING_COLLECTION, AWAITING_RESULT
from monitoring.models import MonitoringTest
from monitoring.services import (
    monitoring_test_record_collection,
    monitoring_test_schedule_recollection,
    monitoring_tests_hold_result_deadline,
    monitoring_tests_restore_result_deadline,
)
from patients.models import Patient
from specimens.choices import (
    MANUAL_CUSTODY_KINDS,
    CustodyEventKind,
    RejectionReason,
    SpecimenCondition,
    SpecimenStatus,
)
from specimens.models import Container, CustodyEvent, Specimen, TestSpecimenRequirement
from specimens.selectors import collection_due_by

RECOLLECTION_GRACE = timedelta(hours=1)


class SpecimenConflict(Conflict):
    """The specimen is not in a state that allows this step (HTTP 409)."""


def accession_number_next() -> str:
    """Nine digits from a database sequence plus a Damm check digit, which catches every
    single-digit error and every swap of adjacent digits in a scanned or typed number."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('specimens_accession_seq')")
        (value,) = cursor.fetchone()
    body = f"{value:09d}"
    return body + damm.calc_check_digit(body)


def accession_is_valid(accession: str) -> bool:
    return accession.isdigit() and len(accession) == 10 and damm.is_valid(accession)


def _event(
    specimen: Specimen, kind: CustodyEventKind, user: User, now: datetime, location: str = "", note: str = ""
) -> CustodyEvent:
    return CustodyEvent.objects.create(specimen=specimen, kind=kind, at=now, by=user, location=location, note=note)


def wristband_check(*, patient: Patient, wristband: str) -> None:
    """Positive identification: the scanned wristband must carry this patient's MRN. A mismatch stops."""
    scanned = wristband.strip().upper()
    if not scanned:
        raise ValidationError({"wristband": "Scan the patient's wristband."})
    if scanned != patient.mrn:
        raise ValidationError({"wristband": "Wristband does not match this patient. Stop: do not draw; re-identify."})


@transaction.atomic
def specimens_collect(
    *,
    patient: Patient,
    wristband: str,
    monitoring_tests: Sequence[MonitoringTest],
    user: User,
    now: datetime,
    location: str = "",
    due_by: datetime | None = None,
) -> list[Specimen]:
    """Collect one specimen per container for the given due tests, after a wristband check.

    A collection covers only tests in the collection window: overdue, or due by `due_by` (default: `now` +
    `SPECIMEN_COLLECTION_WINDOW_HOURS`); a test due later is refused and stays open. Only builders of demo
    and test data that draw a dose's labs ahead on purpose pass `due_by`; the screens and the API never do.
    Each test's collection stage is satisfied (its overdue alert resolves) and a result is now due.
    """
    wristband_check(patient=patient, wristband=wristband)
    if not monitoring_tests:
        raise ValidationError({"monitoring_tests": "Choose at least one due test."})
    due_by = collection_due_by(now) if due_by is None else due_by
    tests = list(
        MonitoringTest.objects.select_for_update(of=("self",))
        .select_related("lab_test__specimen_requirement__container")
        .filter(pk__in=[t.pk for t in monitoring_tests])
        .order_by("pk")
    )
    by_container: dict[Container, list[MonitoringTest]] = defaultdict(list)
    for test in tests:
        if test.patient_id != patient.pk:
            raise ValidationError({"monitoring_tests": f"Test {test.pk} belongs to another patient."})
        if test.lab_test.is_bedside:
            raise ValidationError(
                {"monitoring_tests": f"{test.lab_test.name} is a bedside assessment: record it, nothing is drawn."}
            )
        if test.status not in AWAITING_COLLECTION:
            raise SpecimenConflict(f"{test.lab_test.name} is {test.get_status_display().lower()}, not due.")
        try:
            requirement: TestSpecimenRequirement = test.lab_test.specimen_requirement
        except TestSpecimenRequirement.DoesNotExist:
            raise ValidationError(
                {"monitoring_tests": f"{test.lab_test.name} has no container configured in the test catalogue."}
            ) from None
        by_container[requirement.container].append(test)
    later = sorted((t for t in tests if t.due_at > due_by), key=lambda t: (t.due_at, t.pk))
    if later:
        names = ", ".join(f"{t.lab_test.name} (due {timezone.localtime(t.due_at):%Y-%m-%d %H:%M})" for t in later)
        raise ValidationError(
            {
                "monitoring_tests": (
                    f"Not due for collection yet: {names}. A collection covers only tests overdue or due by "
                    f"{timezone.localtime(due_by):%Y-%m-%d %H:%M}; later tests stay open."
                )
            }
        )

    specimens = []
    for container in sorted(by_container, key=lambda c: (c.draw_order, c.code)):
        specimen = Specimen.objects.create(
            accession=accession_number_next(),
            patient=patient,
            container=container,
            specimen_type=container.specimen_type,
            collected_at=now,
            collected_by=user,
        )
        specimen.monitoring_tests.set(by_container[container])
        _event(specimen, CustodyEventKind.COLLECTED, user, now, location)
        for test in by_container[container]:
            monitoring_test_record_collection(monitoring_test=test, user=user, now=now)
        specimens.append(specimen)
    _resolve_recollected(tests, user, now)
    return specimens


def _resolve_recollected(tests: Sequence[MonitoringTest], user: User, now: datetime) -> None:
    """A rejected specimen's alert ("recollect ...") ends once every test it carried has been drawn again."""
    originals = [t.recollection_of_id for t in tests if t.recollection_of_id is not None]
    if not originals:
        return
    rejected = Specimen.objects.filter(status=SpecimenStatus.REJECTED, monitoring_tests__in=originals).distinct()
    for specimen in rejected:
        waiting = MonitoringTest.objects.filter(
            recollection_of__in=specimen.monitoring_tests.all(), status__in=AWAITING_COLLECTION
        )
        if not waiting.exists():
            alerts_resolve_for_subject(
                subject=specimen, kinds=[AlertKind.SPECIMEN_REJECTED], reason=ResolutionReason.RECOLLECTED, now=now,
                user=user,
            )  # fmt: skip


def _stability_field(condition: str) -> str | None:
    """The catalogue's stability for how a specimen arrived; None when frozen (no limit is kept)."""
    if condition == SpecimenCondition.FROZ:
        return None
    return "stability_refrigerated" if condition == SpecimenCondition.COOL else "stability_room_temp"


def _stability_limit(specimen: Specimen, condition: str) -> timedelta | None:
    """The shortest stability of the specimen's tests for how it arrived; None when frozen."""
    field = _stability_field(condition)
    if field is None:
        return None
    limits = TestSpecimenRequirement.objects.filter(
        lab_test__in=specimen.monitoring_tests.values("lab_test")
    ).values_list(field, flat=True)
    return min(limits, default=None)


def _not_acceptable(specimen: Specimen, condition: str) -> list[str]:
    """Tests of the specimen the catalogue does not accept in this condition at all (a stability of zero):
    e.g. PT and INR refrigerated (CLSI H21-A5: cold activates factor VII)."""
    field = _stability_field(condition)
    if field is None:
        return []
    names = (
        TestSpecimenRequirement.objects.filter(lab_test__in=specimen.monitoring_tests.values("lab_test"))
        .filter(**{field: timedelta(0)})
        .order_by("lab_test__name")
        .values_list("lab_test__name", flat=True)
    )
    return list(names)


@transaction.atomic
def specimen_receive(
    *, accession: str, condition: str, user: User, now: datetime, location: str = "Laboratory"
) -> Specimen:
    """Receive a scanned specimen in the lab; one received past its stability is flagged."""
    accession = accession.strip()
    if not accession_is_valid(accession):
        raise ValidationError({"accession": "Not a valid accession number (check digit failed): rescan the label."})
    if condition not in SpecimenCondition.values:
        raise ValidationError({"condition": f"Unknown specimen condition {condition!r} (HL7 table 0493)."})
    specimen = Specimen.objects.select_for_update().filter(accession=accession).first()
    if specimen is None:
        raise ValidationError({"accession": "No specimen has this accession number."})
    if specimen.status == SpecimenStatus.REJECTED:
        raise SpecimenConflict(f"Specimen {accession} was rejected; it cannot be received.")
    if specimen.received_at is not None:
        raise SpecimenConflict(f"Specimen {accession} was already received at {specimen.received_at:%Y-%m-%d %H:%M}.")
    refused = _not_acceptable(specimen, condition)
    if refused:
        how = "refrigerated" if condition == SpecimenCondition.COOL else "at room temperature"
        raise ValidationError(
            {
                "condition": f"{', '.join(refused)}: not accepted {how} (stability 0 in the test catalogue). "
                "Not received: reject the specimen (RR improper storage) so that its tests are recollected."
            }
        )
    limit = _stability_limit(specimen, condition)
    specimen.stability_exceeded = limit is not None and now - specimen.collected_at > limit
    specimen.status = SpecimenStatus.RECEIVED
    specimen.received_at = now
    specimen.received_by = user
    specimen.condition = condition
    specimen.save(update_fields=["status", "received_at", "received_by", "condition", "stability_exceeded"])
    monitoring_tests_restore_result_deadline(test_ids=list(specimen.monitoring_tests.values_list("pk", flat=True)))
    note = "Received past stability." if specimen.stability_exceeded else ""
    _event(specimen, CustodyEventKind.RECEIVED, user, now, location, note)
    return specimen


@transaction.atomic
def specimen_reject(*, specimen: Specimen, reason: str, comment: str, user: User, now: datetime) -> Specimen:
    """Reject with an HL7 0490 reason: the specimen stays on record, its tests are due again
    (recollection) and the care team gets one alert."""
    if reason not in RejectionReason.values:
        raise ValidationError({"reason": f"Unknown rejection reason {reason!r} (HL7 table 0490)."})
    specimen = Specimen.objects.select_for_update().get(pk=specimen.pk)
    if specimen.status in (SpecimenStatus.REJECTED, SpecimenStatus.DISPOSED):
        raise SpecimenConflict(f"Specimen {specimen.accession} is already {specimen.get_status_display().lower()}.")
    specimen.status = SpecimenStatus.REJECTED
    specimen.rejected_at = now
    specimen.rejected_by = user
    specimen.rejection_reason = reason
    specimen.rejection_comment = comment
    specimen.save(update_fields=["status", "rejected_at", "rejected_by", "rejection_reason", "rejection_comment"])
    label = RejectionReason(reason).label
    _event(specimen, CustodyEventKind.REJECTED, user, now, note=f"{reason} {label}. {comment}".strip())
    # Exactly the tests this specimen carried (and still awaiting a result) are due again, nothing else.
    carried = list(
        specimen.monitoring_tests.filter(status__in=AWAITING_RESULT).select_related("lab_test").order_by("pk")
    )
    for test in carried:
        monitoring_test_schedule_recollection(
            monitoring_test=test,
            user=user,
            now=now,
            grace_period=RECOLLECTION_GRACE,
            reason=f"Specimen {specimen.accession} rejected: {label}",
        )
    names = ", ".join(dict.fromkeys(test.lab_test.name for test in carried))
    summary = f"{specimen.container.name} specimen rejected ({label}): recollect" + (f" {names}" if names else "")
    alerts_raise(
        kind=AlertKind.SPECIMEN_REJECTED,
        severity=AlertSeverity.HIGH,
        subject_model=Specimen,
        conditions=[
            AlertCondition(
                subject_id=specimen.pk,
                patient_id=specimen.patient_id,
                summary=summary if len(summary) <= 200 else summary[:199] + "…",
            )
        ],
        now=now,
    )
    return specimen


_CUSTODY_TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    # kind: (statuses it may follow, status it leads to)
    CustodyEventKind.IN_TRANSIT: ((SpecimenStatus.COLLECTED,), SpecimenStatus.IN_TRANSIT),
    CustodyEventKind.ALIQUOTED: ((SpecimenStatus.RECEIVED, SpecimenStatus.STORED), None),
    CustodyEventKind.STORED: ((SpecimenStatus.RECEIVED,), SpecimenStatus.STORED),
    CustodyEventKind.DISPOSED: (
        (SpecimenStatus.RECEIVED, SpecimenStatus.STORED, SpecimenStatus.REJECTED),
        SpecimenStatus.DISPOSED,
    ),
}


@transaction.atomic
def specimen_record_custody(
    *, specimen: Specimen, kind: str, user: User, now: datetime, location: str = "", note: str = ""
) -> CustodyEvent:
    if kind not in MANUAL_CUSTODY_KINDS:
        raise ValidationError({"kind": f"{kind!r} is not a custody step that can be recorded directly."})
    specimen = Specimen.objects.select_for_update().get(pk=specimen.pk)
    allowed_from, leads_to = _CUSTODY_TRANSITIONS[kind]
    if specimen.status not in allowed_from:
        step = CustodyEventKind(kind).label.lower()
        raise SpecimenConflict(f"A {specimen.get_status_display().lower()} specimen cannot be marked {step}.")
    if leads_to is not None:
        specimen.status = leads_to
        specimen.save(update_fields=["status"])
    if kind == CustodyEventKind.IN_TRANSIT:
        monitoring_tests_hold_result_deadline(
            test_ids=list(specimen.monitoring_tests.values_list("pk", flat=True)),
            until=now + settings.SPECIMEN_TRANSIT_LIMIT,
        )
    return _event(specimen, CustodyEventKind(kind), user, now, location, note)


def specimen_label_printed(*, specimen: Specimen, user: User, now: datetime) -> CustodyEvent:
    """Log a label print; every print after the first is a logged reprint."""
    printed = specimen.custody_events.filter(
        kind__in=[CustodyEventKind.LABEL_PRINTED, CustodyEventKind.LABEL_REPRINTED]
    ).exists()
    kind = CustodyEventKind.LABEL_REPRINTED if printed else CustodyEventKind.LABEL_PRINTED
    return _event(specimen, kind, user, now)
