"""HTML list pages, worklists and the lists on detail pages render in a constant number of queries, however
many rows they show (no N+1). Each test shows the page with few rows and with more, and compares the count."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.db.models import Q
from django.test import Client
from django.utils import timezone

from alerts.choices import AlertKind
from alerts.models import Alert
from assessments.services import assessment_amend, assessment_record
from monitoring.services import monitoring_tests_flag_overdue
from orders.services.doses import dose_override
from results.models import Result
from results.outbox import outbox_deliver
from results.services import ResultEntry, critical_call_record, result_amend, results_enter, results_verify
from specimens.services import specimen_label_printed
from tests import factories
from tests.orders.helpers import start_course
from tests.query_counts import Ward, assert_flat, assert_same_cost, copy_regimens, measure
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


@pytest.fixture
def ward(team_a, nurse_a, technicians) -> Ward:
    return Ward.build(team_a, nurse_a, technicians)


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def marked(testid: str) -> Callable[..., int]:
    """Rows of a page: elements carrying data-testid=<testid>."""
    return lambda response: response.content.decode().count(f'data-testid="{testid}"')


def listed(name: str) -> Callable[..., int]:
    """Rows of a page: the length of a list in its template context."""
    return lambda response: len(list(response.context[name]))


def _flat_page(user, url: str, grow: Callable[[int], object], rows: Callable[..., int]) -> None:
    client = _as(user)
    assert_flat(lambda: client.get(url), grow, rows)


# Lists of the care team's patients, alerts and tests: grown a whole patient at a time.


def test_alert_inbox(ward):
    _flat_page(ward.nurse, "/alerts/", ward.clinical, marked("alert-row"))


def test_alert_inbox_partial_polled_by_htmx(ward):
    _flat_page(ward.nurse, "/alerts/inbox/", ward.clinical, marked("alert-row"))


def test_patient_list(ward):
    _flat_page(ward.oncologist, "/patients/", ward.clinical, listed("page"))


def test_patient_search(ward):
    client = _as(ward.oncologist)
    # two patients a unit: a single match opens the chart instead of listing it
    assert_flat(
        lambda: client.post("/patients/search/", {"q": "family"}), lambda n: ward.clinical(2 * n), marked("search-row")
    )


def test_collection_list(ward):
    _flat_page(ward.nurse, f"/specimens/collection/?ward={ward.team.ward}", ward.clinical, marked("draw"))


def _burden_rows(response) -> int:
    report = response.context["report"]
    return report.alerts_to_nurses + report.alerts_to_oncologists + report.escalations


def test_alert_burden_page(ward):
    _flat_page(ward.charge_nurse, f"/alerts/burden/?team={ward.team.pk}", ward.clinical, _burden_rows)


def test_alert_burden_metrics(ward):
    def shown(response) -> int:
        lines = response.content.decode().splitlines()
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in lines if line.startswith("labflow_alerts_shown{"))

    _flat_page(ward.charge_nurse, "/alerts/burden/metrics", ward.clinical, shown)


def test_review_inbox(ward):
    _flat_page(ward.oncologist, "/results/review/", ward.clinical, marked("review-row"))


def test_result_verification_queue(ward):
    def grow(units: int) -> None:
        ward.unverified(2 * units)
        # The lab still reports half of them as preliminary: listed below the queue, not verifiable yet.
        new = Result.objects.filter(verified_at__isnull=True, lab_status="").order_by("-pk")[:units]
        Result.objects.filter(pk__in=[r.pk for r in new]).update(lab_status="P")

    def rows(response) -> int:
        return marked("verify-row")(response) + marked("awaiting-final-row")(response)

    _flat_page(ward.technicians[1], "/results/verify/", grow, rows)


def test_entry_grid_of_one_test_across_specimens(ward):
    potassium = analyte("Potassium")
    _flat_page(ward.technicians[0], f"/results/test/{potassium.pk}/enter/", ward.awaiting, marked("grid-row"))


# Worklists of preparations and doses: grown three courses at a time.


def test_preparation_worklist(ward):
    _flat_page(ward.technicians[0], "/orders/worklist/", ward.orders, marked("worklist-row"))


def test_preparation_verification_queue(ward):
    _flat_page(ward.technicians[1], "/orders/verification/", ward.orders, marked("verification-row"))


def test_ward_preparations_ready_to_administer(ward):
    _flat_page(ward.nurse, "/orders/ward/", ward.orders, marked("ward-row"))


def test_exposure_reports(ward):
    from orders.models import Drug
    from orders.services.products import exposure_report_record

    drug = Drug.objects.get(name="Talimogene laherparepvec")

    def grow(n: int) -> None:
        for i in range(n):
            exposure_report_record(
                drug=drug, person=f"Person {i}", occurred_at=timezone.now(), kind="skin", what="Drop on the glove",
                action_taken="Washed", user=ward.technicians[1], now=timezone.now(),
            )  # fmt: skip

    _flat_page(ward.technicians[0], "/orders/exposures/", grow, marked("exposure-row"))


def test_new_course_lists_the_regimens(ward, patient_a):
    def options(response) -> int:
        return response.content.decode().count("<option ")

    _flat_page(
        ward.oncologist,
        f"/orders/patients/{patient_a.pk}/new-course/",
        partial(copy_regimens, "Ipilimumab 3 mg/kg q3w x4"),
        options,
    )


# Pages about one object that list its parts: grown within the same object.


def test_course_page_lists_its_doses_and_decisions(ward, patient_a, patient_b):
    short = start_course(patient_a, ward.oncologist, "Ipilimumab 3 mg/kg q3w x4", in_hours=8)
    long = start_course(factories.make_patient(ward.team), ward.oncologist, "Pembrolizumab 200 mg q3w", in_hours=8)
    for course in (short, long):
        dose_override(dose=course.doses.get(number=1), user=ward.oncologist, now=timezone.now(), reason="Outside labs")
    client = _as(ward.oncologist)
    client.get(f"/orders/courses/{short.pk}/")  # warm-up
    few = measure(lambda: client.get(f"/orders/courses/{short.pk}/"))
    many = measure(lambda: client.get(f"/orders/courses/{long.pk}/"))
    assert_same_cost(few, many, marked("course-dose"))


def test_patient_chart_lists_tests_courses_and_alerts(ward, patient_a):
    def grow(units: int) -> None:
        for _ in range(units):
            factories.make_test(patient_a, due_at=timezone.now() - timedelta(hours=3), grace=timedelta(0), name="CRP")
            factories.make_test(patient_a, due_at=timezone.now() + timedelta(hours=5))
            start_course(patient_a, ward.oncologist, "Ipilimumab 3 mg/kg q3w x4", in_hours=30)
            monitoring_tests_flag_overdue()

    def rows(response) -> int:
        return sum(len(list(response.context[name])) for name in ("monitoring_tests", "courses", "alerts"))

    _flat_page(ward.nurse, f"/patients/{patient_a.pk}/", grow, rows)


def test_patient_timeline(ward, patient_a):
    """Each unit adds a dose (with its gate and preparation state), verified results with a critical alert, an open
    test and an assessment: the timeline shows them all in the same number of queries."""

    def grow(units: int) -> None:
        for _ in range(units):
            start_course(patient_a, ward.oncologist, "Ipilimumab 3 mg/kg q3w x4", in_hours=30)
            factories.make_test(patient_a, due_at=timezone.now() + timedelta(days=3), name="CRP")
            specimen = collected_specimen(patient_a, ward.nurse, "Potassium", "CRP")
            now = timezone.now()
            rows = results_enter(
                entries=[
                    ResultEntry(specimen, analyte("Potassium"), "6.9", "mmol/L"),
                    ResultEntry(specimen, analyte("CRP"), "85.0", "mg/L"),
                ],
                user=ward.technicians[0],
                now=now,
            )
            results_verify(results=rows, user=ward.technicians[1], now=now)
            assessment_record(
                patient=patient_a, assessed_at=now, user=ward.nurse, now=now, temperature_c=Decimal("38.5")
            )

    def rows(response) -> int:
        return response.content.decode().count('data-testid="tl-')

    _flat_page(ward.oncologist, f"/patients/{patient_a.pk}/timeline/?days=30", grow, rows)


def test_patient_chart_shows_grades_beside_crp_and_ferritin(ward, patient_a):
    """The grade trend and the CRP and ferritin beside it cost the same however many rows they show."""

    def grow(units: int) -> None:
        for _ in range(units):
            now = timezone.now()
            assessment_record(
                patient=patient_a, assessed_at=now, user=ward.nurse, now=now, temperature_c=Decimal("38.5")
            )
            specimen = collected_specimen(patient_a, ward.nurse, "CRP", "Ferritin")
            rows = results_enter(
                entries=[
                    ResultEntry(specimen, analyte("CRP"), "85.0", "mg/L"),
                    ResultEntry(specimen, analyte("Ferritin"), "1450", "ng/mL"),
                ],
                user=ward.technicians[0],
                now=now,
            )
            results_verify(results=rows, user=ward.technicians[1], now=now)

    _flat_page(ward.nurse, f"/patients/{patient_a.pk}/", grow, marked("grade-lab-row"))


def test_collect_page_lists_the_due_tests_in_tubes(ward, patient_a):
    names = iter(["TSH", "CRP", "Potassium", "Ferritin", "CBC with differential", "Comprehensive metabolic panel"])

    def grow(count: int) -> None:
        for _ in range(count):
            factories.make_test(patient_a, due_at=timezone.now() + timedelta(minutes=20), name=next(names))
            factories.make_test(patient_a, due_at=timezone.now() + timedelta(days=2))  # later: counted, not listed

    def tests(response) -> int:
        return response.content.decode().count('name="tests"')

    _flat_page(ward.nurse, f"/specimens/collect/{patient_a.pk}/", grow, tests)


def test_specimen_page_lists_its_custody_trail(ward, patient_a):
    specimen = collected_specimen(patient_a, ward.nurse, "Potassium", "CRP")

    def reprint(count: int) -> None:
        for _ in range(count):
            specimen_label_printed(specimen=specimen, user=ward.nurse, now=timezone.now())

    def events(response) -> int:
        page = response.content.decode()
        trail = page[page.index('data-testid="timeline"') :]
        return trail[: trail.index("</ol>")].count("<li>")

    _flat_page(ward.technicians[0], f"/specimens/{specimen.pk}/", reprint, events)


def test_result_entry_grid_of_a_specimen(ward, patient_a):
    """A panel's grid shows every analyte with the patient's previous value, in as many queries as one test's."""
    earlier = collected_specimen(patient_a, ward.nurse, "Comprehensive metabolic panel")
    entries = [ResultEntry(earlier, analyte("Potassium"), "4.0", "mmol/L")]
    results_verify(results=results_enter(entries=entries, user=ward.technicians[0], now=timezone.now()),
                   user=ward.technicians[1], now=timezone.now())  # fmt: skip
    single = collected_specimen(patient_a, ward.nurse, "Potassium")
    panel = collected_specimen(patient_a, ward.nurse, "Comprehensive metabolic panel")
    client = _as(ward.technicians[0])
    client.get(f"/results/specimen/{single.pk}/enter/")  # warm-up
    few = measure(lambda: client.get(f"/results/specimen/{single.pk}/enter/"))
    many = measure(lambda: client.get(f"/results/specimen/{panel.pk}/enter/"))
    assert_same_cost(few, many, marked("grid-row"))


def test_result_page_lists_versions_and_alerts(ward, patient_a):
    specimen = collected_specimen(patient_a, ward.nurse, "Potassium")
    (first,) = results_enter(entries=[ResultEntry(specimen, analyte("Potassium"), "6.9", "mmol/L")],
                             user=ward.technicians[0], now=timezone.now())  # fmt: skip
    results_verify(results=[first], user=ward.technicians[1], now=timezone.now())
    values = iter(["7.0", "2.4", "7.1", "2.3", "7.2", "2.2"])

    def amend(count: int) -> None:
        for _ in range(count):
            current = Result.objects.get(Q(pk=first.pk) | Q(root_id=first.pk), is_current=True)
            amended = result_amend(result=current, value=next(values), unit="mmol/L", reason="Re-run",
                                   user=ward.technicians[0], now=timezone.now())  # fmt: skip
            results_verify(results=[amended], user=ward.technicians[1], now=timezone.now())

    _flat_page(ward.oncologist, f"/results/{first.pk}/", amend, listed("history"))


def test_timeline_lists_the_trends(ward, patient_a):
    values = iter(["4.0", "4.2", "3.9", "4.4", "4.1", "3.8"])

    def results(count: int) -> None:
        for _ in range(count):
            specimen = collected_specimen(patient_a, ward.nurse, "Potassium", "CRP")
            entries = [ResultEntry(specimen, analyte("Potassium"), next(values), "mmol/L"),
                       ResultEntry(specimen, analyte("CRP"), "3", "mg/L")]  # fmt: skip
            rows = results_enter(entries=entries, user=ward.technicians[0], now=timezone.now())
            results_verify(results=rows, user=ward.technicians[1], now=timezone.now())

    def points(response) -> int:
        return sum(len(trend.points) for trend in response.context["trends"])

    _flat_page(ward.oncologist, f"/results/patient/{patient_a.pk}/", results, points)


def test_critical_call_log_lists_the_calls(ward, patient_a):
    specimen = collected_specimen(patient_a, ward.nurse, "Potassium")
    rows = results_enter(entries=[ResultEntry(specimen, analyte("Potassium"), "6.9", "mmol/L")],
                         user=ward.technicians[0], now=timezone.now())  # fmt: skip
    results_verify(results=rows, user=ward.technicians[1], now=timezone.now())
    alert = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT, patient=patient_a)

    def call(count: int) -> None:
        for _ in range(count):
            critical_call_record(alert=alert, user=ward.technicians[0], now=timezone.now(), recipient="Dr On Call",
                                 read_back_confirmed=True)  # fmt: skip

    _flat_page(ward.technicians[0], f"/results/alerts/{alert.pk}/call/", call, listed("calls"))


def test_interface_errors_lists_retrying_and_waiting_messages(ward, settings, team_a):
    with socket.socket() as closed:  # a port nobody listens on: every delivery attempt is refused
        closed.bind(("127.0.0.1", 0))
        settings.HL7_OUTBOUND_HOST, settings.HL7_OUTBOUND_PORT = "127.0.0.1", closed.getsockname()[1]

        def messages(count: int) -> None:
            for _ in range(count):
                patient = factories.make_patient(team_a)
                for name, value in (("Potassium", "4.1"), ("CRP", "3")):  # two messages: the second waits
                    specimen = collected_specimen(patient, ward.nurse, name)
                    entry = ResultEntry(specimen, analyte(name), value, analyte(name).result_spec.unit)
                    rows = results_enter(entries=[entry], user=ward.technicians[0], now=timezone.now())
                    results_verify(results=rows, user=ward.technicians[1], now=timezone.now())
                outbox_deliver()

        def rows(response) -> int:
            return marked("interface-error-row")(response) + marked("interface-waiting-row")(response)

        _flat_page(ward.technicians[0], "/results/interface-errors/", messages, rows)


def test_every_page_is_measured_or_has_no_list():
    """Guards the list of pages above against a new list page nobody measured: every list view of the urlconfs
    is named here or is a form page without a list."""
    from django.urls import get_resolver

    measured = {
        "alerts:inbox", "alerts:inbox-partial", "alerts:burden", "alerts:burden-metrics", "patients:list",
        "patients:search",
        "patient-timeline",
        "patient-chart", "specimens:collection-list", "specimens:collect", "specimens:detail", "results:enter",
        "results:enter-test", "results:verify", "results:review", "results:detail", "results:timeline",
        "results:critical-call", "orders:worklist", "orders:verification", "orders:ward", "orders:course",
        "orders:course-new", "assessments:history", "orders:exposures", "results:interface-errors",
        "fhir:search",  # tests/fhir/test_fhir_query_counts.py
        "orders:course-identity",  # tests/orders/test_coi_pages.py
    }  # fmt: skip
    no_list = {
        "fhir:metadata", "fhir:read",
        "alerts:badge", "alerts:events", "alerts:acknowledge", "alerts:resolve", "specimens:receive",
        "specimens:reject",
        "specimens:custody", "results:enter-index", "results:amend", "orders:start", "orders:prepare",
        "orders:verify", "orders:release", "orders:administer", "orders:course-stop", "accounts:login",
        "accounts:logout", "assessments:new", "assessments:detail", "assessments:amend",
        "orders:tolerance-check",  # a form, and at most the dose's 10 latest checks
        "accounts:keepalive", "results:interface-resend",
        "orders:vial-scan",  # parses one scanned barcode: no list
    }  # fmt: skip
    names = set()
    for pattern in get_resolver().url_patterns:
        namespace = getattr(pattern, "namespace", None)
        if namespace in ("admin",) or getattr(pattern, "app_name", None) == "admin":
            continue
        if hasattr(pattern, "url_patterns") and namespace:
            names |= {f"{namespace}:{name}" for p in pattern.url_patterns if (name := getattr(p, "name", None))}
    names |= {"patient-chart", "patient-timeline"}  # the project's own pages, outside any namespace
    assert names == measured | no_list, (
        f"classify these pages here (and measure a list page): {names ^ (measured | no_list)}"
    )


def test_assessment_history_lists_the_grades(ward, patient_a):
    def grow(count: int) -> None:
        for _ in range(count):
            now = timezone.now()
            original = assessment_record(
                patient=patient_a, assessed_at=now, user=ward.nurse, now=now, temperature_c=Decimal("38.5")
            )
            assessment_amend(assessment=original, reason="BP taken", user=ward.nurse, now=now,
                             temperature_c=Decimal("38.5"), systolic_bp_mmhg=85)  # fmt: skip

    _flat_page(ward.nurse, f"/assessments/patients/{patient_a.pk}/", grow, marked("assessment-row"))
