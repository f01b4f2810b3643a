from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, Exists, F, IntegerField, Max, OuterRef, Prefetch, Q, QuerySet, Value, When

from accounts.selectors import AnyUser
from alerts.choices import AlertKind
from alerts.models import Alert
from alerts.selectors import alert_list
from monitoring.models import LabTest
from patients.models import Patient
from patients.selectors import visible_patient_filter
from results.choices import CRITICAL_FLAGS, LAB_NOT_FINAL, VERIFIED, OutboundStatus, ResultFlag, ResultStatus
from results.models import (
    REVIEW_ORDER,
    CriticalCall,
    OutboundMessage,
    ReferenceRange,
    Result,
    ResultAnswer,
    ResultSpec,
)
from specimens.models import Specimen


def result_list(*, user: AnyUser) -> QuerySet[Result]:
    return Result.objects.filter(**visible_patient_filter(user=user)).select_related(
        "patient", "lab_test", "specimen", "entered_by", "verified_by", "reviewed_by"
    )


def visible_results(*, user: AnyUser, ids: list[int]) -> list[Result]:
    """The results among `ids` that the user may see (a batch ticked on a page or posted to the API)."""
    return list(result_list(user=user).filter(pk__in=ids))


def _unverified(*, user: User) -> QuerySet[Result]:
    """Preliminary results entered by someone else that no later version supersedes (an amendment awaiting
    verification is not current yet, but it is the latest version), oldest first."""
    return (
        result_list(user=user)
        .filter(status=ResultStatus.PRELIMINARY)
        # NOT EXISTS, with the redundant IS NOT NULL that lets PostgreSQL use result_supersedes_idx: the LEFT JOIN
        # of `superseded_by__isnull` hashed every result of the table (docs/architecture.md §6).
        .exclude(Exists(Result.objects.filter(supersedes=OuterRef("pk"), supersedes__isnull=False)))
        .exclude(entered_by=user)
        .order_by("entered_at", "id")
    )


def results_to_verify(*, user: User) -> QuerySet[Result]:
    """The user's verification queue: exactly the results `results_verify` accepts from them (not retracted,
    not superseded, not reported preliminary by the lab, entered by someone else)."""
    return _unverified(user=user).exclude(lab_status__in=LAB_NOT_FINAL)


def results_awaiting_lab_final(*, user: User) -> QuerySet[Result]:
    """Results the laboratory still reports as preliminary (OBX-11 P, R, S, I): not verifiable until its final
    report arrives, which supersedes them."""
    return _unverified(user=user).filter(lab_status__in=LAB_NOT_FINAL)


def review_inbox(*, user: AnyUser) -> QuerySet[Result]:
    """Verified current results not yet reviewed: critical first, then by CTCAE grade (ungraded last), newest
    first."""
    return (
        result_list(user=user)
        .filter(status__in=VERIFIED, is_current=True, reviewed_at__isnull=True)
        .order_by(*REVIEW_ORDER)
    )


# A result the review inbox may fold away: positively normal (flag N), ungraded or grade 0, no delta flag. An
# unflagged result (no reference range) is never folded: nobody has said it is normal.
def is_plainly_normal(result: Result) -> bool:
    return result.flag == ResultFlag.NORMAL and not result.ctcae_grade and not result.delta_flag


@dataclass
class ReviewPanel:
    """One specimen's unreviewed results in the review inbox: what was ordered on it, the results to read
    (in the inbox's order) and the plainly normal ones folded."""

    specimen_id: int
    accession: str
    patient: Patient
    ordered: list[str]
    to_read: list[Result]
    normal: list[Result]
    critical: bool
    worst_grade: int | None

    @property
    def results(self) -> list[Result]:
        return self.to_read + self.normal

    @property
    def result_ids(self) -> str:
        return " ".join(str(result.pk) for result in self.results)


# What a review inbox row shows of a result (results/review.html, Result.display_value), in the inbox's order.
REVIEW_FIELDS = (
    "patient_id", "specimen_id", "lab_test_id", "value_numeric", "value_text", "value_comparator", "decimal_places",
    "unit", "flag", "delta_flag", "ctcae_term", "ctcae_grade", "ctcae_lab_only", "ctcae_assumed", "verified_at",
)  # fmt: skip


def review_inbox_panels(*, user: AnyUser) -> QuerySet[Any, Any]:
    """The review inbox by specimen, one row (a dict) per specimen: critical first, then the highest CTCAE grade
    (ungraded last), then the newest verification. `review_panels` fills a page of them."""
    critical = Case(When(flag__in=CRITICAL_FLAGS, then=Value(1)), default=Value(0), output_field=IntegerField())
    return (
        review_inbox(user=user)
        .order_by()
        .values("specimen_id")
        .annotate(critical=Max(critical), worst_grade=Max("ctcae_grade"), latest=Max("verified_at"))
        .order_by(
            F("critical").desc(), F("worst_grade").desc(nulls_last=True), F("latest").desc(), F("specimen_id").desc()
        )
    )


def review_panels(*, user: AnyUser, groups: Iterable[dict[str, Any]]) -> list[ReviewPanel]:
    """The panels of a page of `review_inbox_panels`, in its order, in a constant number of queries."""
    groups = list(groups)
    specimen_ids = [group["specimen_id"] for group in groups]
    # A page holds hundreds of results of a few patients and a few dozen tests: each result reads only what the
    # page shows, and shares one patient, test and accession per panel (docs/architecture.md §6).
    rows = list(review_inbox(user=user).filter(specimen_id__in=specimen_ids).select_related(None).only(*REVIEW_FIELDS))
    patients = Patient.objects.only("family_name", "given_name", "mrn").in_bulk({r.patient_id for r in rows})
    tests = LabTest.objects.only("name").in_bulk({r.lab_test_id for r in rows})
    accessions = dict(Specimen.objects.filter(pk__in=specimen_ids).values_list("pk", "accession"))
    results: dict[int, list[Result]] = defaultdict(list)
    for result in rows:
        result.patient, result.lab_test = patients[result.patient_id], tests[result.lab_test_id]
        results[result.specimen_id].append(result)
    ordered: dict[int, list[str]] = defaultdict(list)
    on_specimens = Specimen.monitoring_tests.through.objects.filter(specimen_id__in=specimen_ids)
    for specimen_id, name in on_specimens.order_by("monitoringtest__lab_test__name").values_list(
        "specimen_id", "monitoringtest__lab_test__name"
    ):
        if name not in ordered[specimen_id]:
            ordered[specimen_id].append(name)
    panels = []
    for group in groups:
        specimen_id, panel_rows = group["specimen_id"], results[group["specimen_id"]]
        if panel_rows:  # else reviewed between the two queries
            panel = ReviewPanel(
                specimen_id, accessions[specimen_id], panel_rows[0].patient, ordered[specimen_id],
                [r for r in panel_rows if not is_plainly_normal(r)], [r for r in panel_rows if is_plainly_normal(r)],
                bool(group["critical"]), group["worst_grade"],
            )  # fmt: skip
            panels.append(panel)
    return panels


def result_rows(results: QuerySet[Result]) -> QuerySet[Result]:
    """A queue page's rows with only the relations a row shows (results/_result_cells.html, who entered it):
    planning the full join of `result_list` cost more than running it (docs/architecture.md §6)."""
    return results.select_related(None).select_related("patient", "lab_test", "entered_by")


def result_history(*, result: Result) -> QuerySet[Result]:
    root = result.root_id or result.pk
    return Result.objects.filter(pk=root) | Result.objects.filter(root_id=root)


def result_versions(*, result: Result) -> QuerySet[Result]:
    """Every version of the result, the original first, with who entered and verified each."""
    return result_history(result=result).select_related("entered_by", "verified_by").order_by("version")


def resultable_tests() -> QuerySet[LabTest]:
    """Catalogue tests a result can be entered for (they have a result spec), by name."""
    return LabTest.objects.filter(result_spec__isnull=False).select_related("result_spec").order_by("name")


def critical_result_alerts(*, user: AnyUser) -> QuerySet[Alert]:
    """The critical-value alerts the user may see (their call logs)."""
    return alert_list(user=user).filter(kind=AlertKind.CRITICAL_RESULT)


def critical_calls(*, alert: Alert) -> QuerySet[CriticalCall]:
    """The calls logged for a critical-result alert the caller already may see."""
    return alert.critical_calls.select_related("caller")


def critical_call_list(*, user: AnyUser) -> QuerySet[CriticalCall]:
    """The calls logged for the critical-result alerts the user may see."""
    return CriticalCall.objects.filter(alert__in=alert_list(user=user))


def result_alerts(*, user: AnyUser, result: Result) -> QuerySet[Alert]:
    """The alerts the user may see about any version of the result (critical value and toxicity alerts are
    about the first version, an amendment's alert about its own), oldest first."""
    versions = result_history(result=result).values("pk")
    return (
        alert_list(user=user)
        .filter(subject_type=ContentType.objects.get_for_model(Result), subject_id__in=versions)
        .select_related("acknowledged_by", "resolved_by")
        .order_by("raised_at", "id")
    )


def alert_result(*, user: AnyUser, alert: Alert) -> Result | None:
    """The current version of the result an alert is about, if it is about a result the user may see."""
    if alert.subject_type_id != ContentType.objects.get_for_model(Result).pk:
        return None
    versions = result_list(user=user).filter(Q(pk=alert.subject_id) | Q(root_id=alert.subject_id))
    return versions.order_by("-is_current", "-version").first()


@dataclass
class GridRow:
    lab_test: LabTest
    current: Result | None
    previous: Result | None


def entry_grid(*, specimen: Specimen) -> list[GridRow]:
    """The analytes a specimen's tests call for, each with its current result and the patient's previous one."""
    analytes: dict[int, LabTest] = {}
    # The grid reads each analyte's result spec (its unit): loaded with the analytes, not one query a row.
    components = Prefetch("lab_test__components", queryset=LabTest.objects.select_related("result_spec"))
    for test in specimen.monitoring_tests.select_related("lab_test__result_spec").prefetch_related(components):
        for analyte in test.lab_test.components.all() or [test.lab_test]:
            analytes[analyte.pk] = analyte
    current = {r.lab_test_id: r for r in Result.objects.filter(specimen=specimen, is_current=True)}
    previous: dict[int, Result] = {}
    earlier = (
        Result.objects.filter(
            patient_id=specimen.patient_id,
            lab_test_id__in=analytes,
            status__in=VERIFIED,
            is_current=True,
            observed_at__lt=specimen.collected_at,
        )
        .order_by("lab_test_id", "-observed_at")
        .distinct("lab_test_id")
    )
    for row in earlier:
        previous[row.lab_test_id] = row
    ordered = sorted(analytes.values(), key=lambda t: t.name)
    return [GridRow(t, current.get(t.pk), previous.get(t.pk)) for t in ordered]


@dataclass
class TrendPoint:
    at: datetime
    value: Decimal
    flag: str
    grade: int | None
    comparator: str = ""  # "<", "<=", ">", ">=": a censored value, `value` is only its bound

    @property
    def censored(self) -> bool:
        return bool(self.comparator)


@dataclass
class Trend:
    lab_test: LabTest
    unit: str
    reference_low: Decimal | None
    reference_high: Decimal | None
    points: list[TrendPoint]

    @property
    def censored(self) -> list[TrendPoint]:
        return [p for p in self.points if p.censored]


def patient_trends(*, user: AnyUser, patient: Patient, since: datetime | None = None) -> list[Trend]:
    """Verified numeric results per analyte (observed since `since`, if given), oldest first, with the latest
    reference band. Censored values ("<5") keep their comparator; retracted and not-obtained results are not
    verified and never appear."""
    rows = (
        result_list(user=user)
        .filter(patient=patient, status__in=VERIFIED, is_current=True, value_numeric__isnull=False)
        .order_by("lab_test__name", "observed_at")
    )
    if since is not None:
        rows = rows.filter(observed_at__gte=since)
    series: dict[int, Trend] = {}
    points: dict[int, list[TrendPoint]] = defaultdict(list)
    for r in rows:
        assert r.value_numeric is not None
        series[r.lab_test_id] = Trend(r.lab_test, r.unit, r.reference_low, r.reference_high, points[r.lab_test_id])
        points[r.lab_test_id].append(
            TrendPoint(r.observed_at, r.value_numeric, r.flag, r.ctcae_grade, r.value_comparator)
        )
    return list(series.values())


# What a timeline entry shows of a result (labflow/timeline.py): no user or specimen per row.
TIMELINE_RESULT_FIELDS = (
    "patient", "lab_test", "lab_test__name", "lab_test__loinc_code", "value_numeric", "value_text",
    "value_comparator", "decimal_places", "unit", "observed_at", "flag", "ctcae_term", "ctcae_grade", "status",
)  # fmt: skip


def patient_results_between(*, user: AnyUser, patient: Patient, start: datetime, end: datetime) -> QuerySet[Result]:
    """A patient's verified current results observed in [start, end), newest first (the timeline's labs). Retracted,
    not-obtained and unverified results are not reported to the ward and do not appear."""
    return (
        result_list(user=user)
        .filter(patient=patient, status__in=VERIFIED, is_current=True, observed_at__gte=start, observed_at__lt=end)
        .select_related(None)
        .select_related("lab_test")
        .only(*TIMELINE_RESULT_FIELDS)
        .order_by("-observed_at", "-id")
    )


@dataclass
class PendingSpecimen:
    specimen: Specimen
    previous: Result | None


def specimens_awaiting(*, user: AnyUser, lab_test: LabTest, limit: int = 200) -> list[PendingSpecimen]:
    """Specimens whose tests call for `lab_test` and that have no result for it yet: the per-test grid,
    oldest collection first, each with the patient's previous verified value."""
    specimens = list(
        Specimen.objects.filter(**visible_patient_filter(user=user))
        .filter(Q(monitoring_tests__lab_test=lab_test) | Q(monitoring_tests__lab_test__components=lab_test))
        .exclude(status__in=["rejected", "disposed"])
        .exclude(results__lab_test=lab_test, results__is_current=True)
        .select_related("patient", "container")
        .distinct()
        .order_by("collected_at", "id")[:limit]
    )
    previous = {
        r.patient_id: r
        for r in Result.objects.filter(
            patient_id__in={s.patient_id for s in specimens},
            lab_test=lab_test,
            status__in=VERIFIED,
            is_current=True,
        )
        .order_by("patient_id", "-observed_at")
        .distinct("patient_id")
    }
    return [PendingSpecimen(s, previous.get(s.patient_id)) for s in specimens]


class Catalogue:
    """Result specs, reference ranges and coded answers, loaded once per batch of entries."""

    def __init__(self) -> None:
        self.specs = {s.lab_test_id: s for s in ResultSpec.objects.select_related("lab_test")}
        self.ranges: dict[int, list[ReferenceRange]] = defaultdict(list)
        for rng in ReferenceRange.objects.all():
            self.ranges[rng.lab_test_id].append(rng)
        self.answers: dict[int, list[ResultAnswer]] = defaultdict(list)
        for answer in ResultAnswer.objects.all():
            self.answers[answer.lab_test_id].append(answer)


@dataclass
class ResultHistory:
    """A patient's verified values of one test: the first (baseline) and the latest (the delta check's)."""

    baseline: Decimal | None = None
    previous: Decimal | None = None
    previous_at: datetime | None = None


def result_histories(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], ResultHistory]:
    """Baseline (first verified) and latest verified value per (patient, test), in one query."""
    histories: dict[tuple[int, int], ResultHistory] = defaultdict(ResultHistory)
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


def outbound_problems(*, user: AnyUser) -> QuerySet[OutboundMessage]:
    """Messages to the EHR the receiver refused (AE/AR) or that wait for a retry, oldest first, scoped."""
    rows = OutboundMessage.objects.filter(**visible_patient_filter(user=user)).filter(
        Q(status=OutboundStatus.ERROR) | Q(status=OutboundStatus.PENDING, attempts__gt=0)
    )
    return rows.select_related("patient").order_by("created_at", "id")


def outbound_waiting(*, user: AnyUser) -> QuerySet[OutboundMessage]:
    """Messages not yet tried (e.g. no endpoint configured), oldest first, scoped."""
    rows = OutboundMessage.objects.filter(**visible_patient_filter(user=user))
    return rows.filter(status=OutboundStatus.PENDING, attempts=0).select_related("patient").order_by("created_at", "id")


def outbound_message_visible(*, user: AnyUser, pk: int) -> OutboundMessage | None:
    return OutboundMessage.objects.filter(**visible_patient_filter(user=user), pk=pk).first()
