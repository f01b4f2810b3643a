from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString

from accounts.selectors import AnyUser
from monitoring.choices import AWAITING_COLLECTION, LabTestKind, MonitoringTestStatus
from monitoring.models import LabTest, MonitoringTest
from monitoring.selectors import monitoring_test_list
from patients.models import Patient
from patients.selectors import care_team_list, visible_patient_filter
from specimens.labels import SpecimenLabel
from specimens.models import Container, CustodyEvent, Specimen, TestSpecimenRequirement


def collection_due_by(now: datetime) -> datetime:
    """The end of the collection window: a collection at `now` covers the tests overdue or due by then
    (`SPECIMEN_COLLECTION_WINDOW_HOURS`, default 2 h); tests due later stay open."""
    return now + timedelta(hours=settings.SPECIMEN_COLLECTION_WINDOW_HOURS)


def container_list() -> QuerySet[Container]:
    return Container.objects.all()


def requirement_list() -> QuerySet[TestSpecimenRequirement]:
    return TestSpecimenRequirement.objects.select_related("lab_test", "container")


def specimen_list(*, user: AnyUser) -> QuerySet[Specimen]:
    return Specimen.objects.filter(**visible_patient_filter(user=user)).select_related(
        "patient", "container", "collected_by", "received_by", "rejected_by"
    )


def specimen_detail(*, user: AnyUser) -> QuerySet[Specimen]:
    return specimen_list(user=user).prefetch_related(
        Prefetch("custody_events", queryset=CustodyEvent.objects.select_related("by")),
        Prefetch("monitoring_tests", queryset=MonitoringTest.objects.select_related("lab_test")),
    )


class DueTest(Protocol):
    """What a tube shows of a test: a MonitoringTest on the collect screen, a `DrawTest` on the ward's list."""

    @property
    def pk(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def lab_test(self) -> LabTest: ...


@dataclass(frozen=True, slots=True)
class DrawTest:
    """A test on the ward's collection list: plain values, as a ward's page lists thousands of tests
    (docs/architecture.md §6)."""

    pk: int
    status: str
    due_at: datetime
    lab_test: LabTest
    patient: Patient


@dataclass
class Tube:
    container: Container | None  # None: the catalogue has no container for these tests
    tests: list[DueTest] = field(default_factory=list)

    @property
    def min_volume_ml(self) -> Decimal | None:
        """Tests in one tube share the sample: the tube needs the largest of their minimum volumes."""
        if self.container is None:
            return None
        return max(t.lab_test.specimen_requirement.min_volume_ml for t in self.tests)

    @property
    def tests_html(self) -> SafeString:
        """The tube's tests as the collection list shows them ("TSH due 08:00, overdue; ..."), escaped: built here
        because a ward's page lists thousands of tests, and a template loop with the `time` filter costs several
        times more per test."""
        zone = timezone.get_current_timezone()
        return SafeString(
            "; ".join(
                f'{escape(t.lab_test.name)} <span class="muted">due {t.due_at.astimezone(zone):%H:%M}'
                f"{', overdue' if t.status == MonitoringTestStatus.OVERDUE else ''}</span>"
                for t in self.tests
            )
        )


@dataclass
class PatientDraw:
    patient: Patient
    tubes: list[Tube]

    @property
    def tests(self) -> list[DueTest]:
        return [test for tube in self.tubes for test in tube.tests]

    @property
    def overdue(self) -> bool:
        return any(test.status == "overdue" for test in self.tests)


DRAW_PATIENT_FIELDS = ("family_name", "given_name", "mrn", "birth_date")  # what the collection list shows


def tubes_for(tests: Sequence[DueTest]) -> list[Tube]:
    """Tests sharing a container share a tube; tubes in the CLSI order of draw."""
    tubes: dict[Container | None, Tube] = {}
    for test in tests:
        requirement: TestSpecimenRequirement | None = getattr(test.lab_test, "specimen_requirement", None)
        container = requirement.container if requirement else None
        tubes.setdefault(container, Tube(container)).tests.append(test)
    return sorted(tubes.values(), key=lambda t: (t.container is None, t.container.draw_order if t.container else 0))


def collection_list(*, user: AnyUser, ward: str, due_by: datetime) -> list[PatientDraw]:
    """A ward's tests to draw now: overdue or due by `due_by` (the end of the collection window), grouped by
    patient, with the tubes to draw."""
    # Hundreds of rows on a ward's page (docs/architecture.md §6, worklists p95 ≤ 150 ms): each test reads only
    # the columns shown, and each patient and the few lab tests, requirements and containers are loaded once
    # and shared by the rows that name them instead of joined into each.
    rows = list(
        monitoring_test_list(user=user)
        .filter(status__in=AWAITING_COLLECTION, due_at__lte=due_by, patient__care_team__ward=ward)
        .filter(lab_test__kind=LabTestKind.SPECIMEN)  # bedside assessments are recorded, never drawn
        .order_by("patient__family_name", "patient__given_name", "patient_id", "due_at")
        .values_list("pk", "status", "due_at", "lab_test_id", "patient_id")
    )
    patients = Patient.objects.only(*DRAW_PATIENT_FIELDS).in_bulk({row[4] for row in rows})
    catalogue = LabTest.objects.filter(pk__in={row[3] for row in rows})
    lab_tests = {lab_test.pk: lab_test for lab_test in catalogue.select_related("specimen_requirement__container")}
    by_patient: dict[int, list[DrawTest]] = {}
    for pk, status, due_at, lab_test_id, patient_id in rows:
        test = DrawTest(pk, status, due_at, lab_tests[lab_test_id], patients[patient_id])
        by_patient.setdefault(patient_id, []).append(test)
    return [PatientDraw(patient=tests[0].patient, tubes=tubes_for(tests)) for tests in by_patient.values()]


def wards(*, user: AnyUser) -> list[str]:
    return sorted(set(care_team_list(user=user).values_list("ward", flat=True)))


def due_tests_for_patient(*, user: AnyUser, patient: Patient, due_by: datetime) -> QuerySet[MonitoringTest]:
    """The patient's tests one collection covers: specimen tests awaiting collection and overdue or due by `due_by`
    (bedside assessments are recorded on the assessment form, never collected)."""
    return (
        monitoring_test_list(user=user)
        .filter(
            patient=patient, status__in=AWAITING_COLLECTION, due_at__lte=due_by, lab_test__kind=LabTestKind.SPECIMEN
        )
        .select_related("lab_test__specimen_requirement__container")
        .order_by("due_at", "pk")
    )


def later_tests_for_patient(*, user: AnyUser, patient: Patient, due_by: datetime) -> QuerySet[MonitoringTest]:
    """The patient's tests awaiting collection that fall due after the collection window: they stay open."""
    return (
        monitoring_test_list(user=user)
        .filter(patient=patient, status__in=AWAITING_COLLECTION, due_at__gt=due_by, lab_test__kind=LabTestKind.SPECIMEN)
        .order_by("due_at", "pk")
    )


def specimen_label(specimen: Specimen) -> SpecimenLabel:
    # Exactly the tests the tube carries; a test carried twice (e.g. an overdue and a current TSH) is one analysis.
    names = specimen.monitoring_tests.order_by("pk").values_list("lab_test__name", flat=True)
    tests = tuple(dict.fromkeys(names))
    collector = specimen.collected_by
    return SpecimenLabel(
        accession=specimen.accession,
        family_name=specimen.patient.family_name,
        given_name=specimen.patient.given_name,
        mrn=specimen.patient.mrn,
        birth_date=specimen.patient.birth_date,
        collected_at=specimen.collected_at,
        collector=collector.get_full_name() or collector.username,
        container=str(specimen.container),
        tests=tests,
    )
