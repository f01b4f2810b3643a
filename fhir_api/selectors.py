"""The rows behind each FHIR resource type, always through the owning app's scoped selector (care teams; every
patient for lab staff), and the search parameters as filters on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from accounts.selectors import AnyUser
from alerts.choices import AlertStatus
from alerts.models import Alert
from alerts.selectors import alert_list
from fhir_api import search
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from monitoring.selectors import monitoring_test_list
from orders.choices import DoseStatus
from orders.models import Dose, Preparation
from orders.selectors import dose_list, preparation_list
from patients.selectors import patient_list
from results.choices import VERIFIED, ResultStatus
from results.models import Result
from results.selectors import result_list
from specimens.choices import SpecimenStatus
from specimens.models import Specimen
from specimens.selectors import specimen_list

Filter = Callable[[QuerySet[Any], list[str], ZoneInfo], QuerySet[Any]]

# FHIR Specimen.status and the LabFlow statuses each stands for.
SPECIMEN_STATUSES: dict[str, tuple[str, ...]] = {
    "available": (
        SpecimenStatus.COLLECTED,
        SpecimenStatus.IN_TRANSIT,
        SpecimenStatus.RECEIVED,
        SpecimenStatus.STORED,
    ),
    "unavailable": (SpecimenStatus.DISPOSED,),
    "unsatisfactory": (SpecimenStatus.REJECTED,),
}


def verified_observations(*, user: AnyUser) -> QuerySet[Result]:
    """Observations are verified results, the current version of each (an amendment replaces its original)."""
    return result_list(user=user).filter(status__in=VERIFIED, is_current=True).order_by("-observed_at", "-id")


def reported_specimens(*, user: AnyUser) -> QuerySet[Specimen]:
    """DiagnosticReports are the user's specimens with at least one verified current result, with those results
    (loaded through the same scoped selector) and the tests ordered on them."""
    verified = verified_observations(user=user)
    return (
        specimen_list(user=user)
        .filter(Exists(verified.filter(specimen=OuterRef("pk"))))
        .annotate(has_amended=Exists(verified.filter(specimen=OuterRef("pk"), status=ResultStatus.AMENDED)))
        .prefetch_related(
            Prefetch("results", queryset=verified.select_related("lab_test"), to_attr="verified_results"),
            Prefetch("monitoring_tests", queryset=MonitoringTest.objects.select_related("lab_test")),
        )
        .order_by("-collected_at", "-id")
    )


def specimens(*, user: AnyUser) -> QuerySet[Specimen]:
    return (
        specimen_list(user=user)
        .prefetch_related(Prefetch("monitoring_tests", queryset=MonitoringTest.objects.only("id", "lab_test_id")))
        .order_by("-collected_at", "-id")
    )


def service_requests(*, user: AnyUser) -> QuerySet[MonitoringTest]:
    return (
        monitoring_test_list(user=user)
        .prefetch_related(Prefetch("specimens", queryset=Specimen.objects.only("id")))
        .order_by("-due_at", "-id")
    )


# FHIR ServiceRequest.status and the monitoring test statuses each stands for.
SERVICE_REQUEST_STATUSES: dict[str, tuple[str, ...]] = {
    "active": tuple(
        s for s in MonitoringTestStatus if s not in (MonitoringTestStatus.SATISFIED, MonitoringTestStatus.CANCELLED)
    ),
    "completed": (MonitoringTestStatus.SATISFIED,),
    "revoked": (MonitoringTestStatus.CANCELLED,),
}


def flags(*, user: AnyUser) -> QuerySet[Alert]:
    """Flags are the alerts the user may see (their audience, shown: not held), newest first."""
    return alert_list(user=user).order_by("-raised_at", "-id")


FLAG_STATUSES: dict[str, tuple[str, ...]] = {
    "active": (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED),
    "inactive": (AlertStatus.RESOLVED,),
}


def medication_requests(*, user: AnyUser) -> QuerySet[Dose]:
    return dose_list(user=user).order_by("-planned_at", "-id")


def medication_administrations(*, user: AnyUser) -> QuerySet[Preparation]:
    """Preparations whose infusion has started at the bedside."""
    return (
        preparation_list(user=user)
        .filter(administration_started_at__isnull=False)
        .order_by("-administration_started_at", "-id")
    )


def administration_status(rows: QuerySet[Any], values: list[str], zone: ZoneInfo) -> QuerySet[Any]:
    chosen = set(search.tokens("status", values, ("in-progress", "completed")))
    if chosen == {"completed"}:
        return rows.filter(administration_ended_at__isnull=False)
    if chosen == {"in-progress"}:
        return rows.filter(administration_ended_at__isnull=True)
    return rows


MEDICATION_REQUEST_STATUSES: dict[str, tuple[str, ...]] = {
    "active": (DoseStatus.PLANNED,),
    "completed": (DoseStatus.GIVEN,),
    "cancelled": (DoseStatus.CANCELLED,),
}


def patients(*, user: AnyUser) -> QuerySet[Any]:
    return patient_list(user=user).order_by("id")


def by_ids(field: str, param: str) -> Filter:
    def apply(rows: QuerySet[Any], values: list[str], zone: ZoneInfo) -> QuerySet[Any]:
        return rows.filter(**{f"{field}__in": search.ids(param, values)})

    return apply


def by_codes(field: str, *, joined: bool = False) -> Filter:
    def apply(rows: QuerySet[Any], values: list[str], zone: ZoneInfo) -> QuerySet[Any]:
        rows = rows.filter(**{f"{field}__in": search.codes("code", values)})
        return rows.distinct() if joined else rows  # a many-to-many match would repeat the row

    return apply


def by_date(field: str, param: str = "date") -> Filter:
    def apply(rows: QuerySet[Any], values: list[str], zone: ZoneInfo) -> QuerySet[Any]:
        for bound in search.dates(param, values, zone):
            rows = rows.filter(**_date_lookup(field, bound))
        return rows

    return apply


def _date_lookup(field: str, bound: search.DateBound) -> dict[str, datetime]:
    """The instant is a point: eq = inside the named period, ge/gt/le/lt against its start or end."""
    if bound.prefix == "eq":
        return {f"{field}__gte": bound.start, f"{field}__lt": bound.end}
    return {
        "ge": {f"{field}__gte": bound.start},
        "gt": {f"{field}__gte": bound.end},
        "le": {f"{field}__lt": bound.end},
        "lt": {f"{field}__lt": bound.start},
    }[bound.prefix]


def by_status(field: str, mapping: dict[str, tuple[str, ...]]) -> Filter:
    def apply(rows: QuerySet[Any], values: list[str], zone: ZoneInfo) -> QuerySet[Any]:
        chosen = search.tokens("status", values, tuple(mapping))
        return rows.filter(**{f"{field}__in": [s for code in chosen for s in mapping[code]]})

    return apply


def report_status(rows: QuerySet[Any], values: list[str], zone: ZoneInfo) -> QuerySet[Any]:
    """A report is amended when any of its results is, else final."""
    chosen = set(search.tokens("status", values, ("final", "amended")))
    if chosen == {"amended"}:
        return rows.filter(has_amended=True)
    if chosen == {"final"}:
        return rows.filter(has_amended=False)
    return rows


OBSERVATION_STATUSES: dict[str, tuple[str, ...]] = {
    "final": (ResultStatus.FINAL,),
    "amended": (ResultStatus.AMENDED,),
}


@dataclass(frozen=True)
class Searchable:
    rows: Callable[..., QuerySet[Any]]
    params: dict[str, Filter]


SEARCHABLE: dict[str, Searchable] = {
    "Patient": Searchable(patients, {"_id": by_ids("pk", "_id")}),
    "Observation": Searchable(
        verified_observations,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("patient_id", "patient"),
            "subject": by_ids("patient_id", "subject"),
            "code": by_codes("lab_test__loinc_code"),
            "date": by_date("observed_at"),
            "status": by_status("status", OBSERVATION_STATUSES),
        },
    ),
    "DiagnosticReport": Searchable(
        reported_specimens,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("patient_id", "patient"),
            "subject": by_ids("patient_id", "subject"),
            "code": by_codes("monitoring_tests__lab_test__loinc_code", joined=True),
            "date": by_date("collected_at"),
            "status": report_status,
        },
    ),
    "Specimen": Searchable(
        specimens,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("patient_id", "patient"),
            "subject": by_ids("patient_id", "subject"),
            "collected": by_date("collected_at", "collected"),
            "date": by_date("collected_at"),
            "status": by_status("status", SPECIMEN_STATUSES),
        },
    ),
    "ServiceRequest": Searchable(
        service_requests,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("patient_id", "patient"),
            "subject": by_ids("patient_id", "subject"),
            "code": by_codes("lab_test__loinc_code"),
            "date": by_date("due_at"),
            "status": by_status("status", SERVICE_REQUEST_STATUSES),
        },
    ),
    "MedicationRequest": Searchable(
        medication_requests,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("course__patient_id", "patient"),
            "subject": by_ids("course__patient_id", "subject"),
            "date": by_date("planned_at"),
            "status": by_status("status", MEDICATION_REQUEST_STATUSES),
        },
    ),
    "MedicationAdministration": Searchable(
        medication_administrations,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("dose__course__patient_id", "patient"),
            "subject": by_ids("dose__course__patient_id", "subject"),
            "date": by_date("administration_started_at"),
            "status": administration_status,
        },
    ),
    "Flag": Searchable(
        flags,
        {
            "_id": by_ids("pk", "_id"),
            "patient": by_ids("patient_id", "patient"),
            "subject": by_ids("patient_id", "subject"),
            "date": by_date("raised_at"),
            "status": by_status("status", FLAG_STATUSES),
        },
    ),
}
