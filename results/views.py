from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.selectors import acting_user
from core.errors import Conflict, error_text, form_refused
from core.views import html_view, posted_form, step_messages
from patients.selectors import patient_list
from results.forms import (
    TREND_DEFAULT_WINDOW,
    TREND_WINDOWS,
    AmendForm,
    CriticalCallForm,
    ResultGridForm,
    ResultsChoiceForm,
    TrendWindowForm,
)
from results.models import Result
from results.outbox import outbound_message_resend
from results.selectors import (
    alert_result,
    critical_calls,
    critical_result_alerts,
    entry_grid,
    outbound_message_visible,
    outbound_problems,
    outbound_waiting,
    patient_trends,
    result_alerts,
    result_list,
    result_rows,
    result_versions,
    resultable_tests,
    results_awaiting_lab_final,
    results_to_verify,
    review_inbox_panels,
    review_panels,
    specimens_awaiting,
    visible_results,
)
from results.services import (
    ResultEntry,
    critical_call_record,
    result_amend,
    results_enter,
    results_review,
    results_verify,
)
from results.trends import TREND_AHEAD_DAYS, trend_chart_data
from specimens.selectors import specimen_detail


@html_view("GET", "POST", perm="results.enter_result")
def enter(request: HttpRequest, specimen_pk: int) -> HttpResponse:
    """Keyboard-only grid: one row per analyte, previous value beside the input; Enter moves down."""
    specimen = get_object_or_404(specimen_detail(user=request.user), pk=specimen_pk)
    rows = entry_grid(specimen=specimen)
    open_keys = [row.lab_test.pk for row in rows if row.current is None]
    form, status = posted_form(request, ResultGridForm, keys=open_keys)
    if form.is_valid():
        tests = {row.lab_test.pk: row.lab_test for row in rows}
        entries = [ResultEntry(specimen, tests[key], value, unit) for key, value, unit in form.entered()]
        try:
            results_enter(entries=entries, user=acting_user(request), now=timezone.now())
        except (ValidationError, Conflict, PermissionDenied) as error:
            status = form_refused(form, error, form.service_fields())
        else:
            messages.success(request, f"{len(entries)} results entered; another technician verifies them.")
            return redirect("results:enter", specimen_pk=specimen.pk)
    typed = [(row, form.typed(row.lab_test.pk, row.lab_test.result_spec.unit)) for row in rows]
    errors = form.error_summary({row.lab_test.pk: row.lab_test.name for row in rows}) if form.is_bound else []
    context = {"specimen": specimen, "rows": typed, "form": form, "errors": errors}
    return render(request, "results/enter.html", context, status=status)


@html_view("GET", perm="results.enter_result")
def enter_index(request: HttpRequest) -> HttpResponse:
    first = resultable_tests().first()
    if first is None:
        raise Http404("No resultable test in the catalogue.")
    return redirect("results:enter-test", lab_test_pk=first.pk)


@html_view("GET", "POST", perm="results.enter_result")
def enter_by_test(request: HttpRequest, lab_test_pk: int) -> HttpResponse:
    """One analyte across specimens (e.g. a run of potassium on the analyser): one row per specimen."""
    tests = resultable_tests()
    lab_test = get_object_or_404(tests, pk=lab_test_pk)
    rows = specimens_awaiting(user=request.user, lab_test=lab_test)
    form, status = posted_form(request, ResultGridForm, keys=[row.specimen.pk for row in rows], one_unit=True)
    if form.is_valid():
        specimens = {row.specimen.pk: row.specimen for row in rows}
        entries = [ResultEntry(specimens[key], lab_test, value, unit) for key, value, unit in form.entered()]
        try:
            results_enter(entries=entries, user=acting_user(request), now=timezone.now())
            messages.success(request, f"{len(entries)} {lab_test.name} results entered.")
            return redirect("results:enter-test", lab_test_pk=lab_test.pk)
        except (ValidationError, Conflict, PermissionDenied) as error:
            status = form_refused(form, error, form.service_fields())
    context = {
        "lab_test": lab_test, "rows": [(row, form.typed(row.specimen.pk)) for row in rows], "tests": tests,
        "form": form, "unit": form.data.get("unit", "") if form.is_bound else lab_test.result_spec.unit,
        "errors": form.error_summary({row.specimen.pk: row.specimen.accession for row in rows})
        if form.is_bound else [],
    }  # fmt: skip
    return render(request, "results/enter_by_test.html", context, status=status)


@html_view("GET", "POST", perm="results.verify_result")
def verify_queue(request: HttpRequest) -> HttpResponse:
    """Results entered by others, oldest first; verify one, some or all at once. Below, read-only, the results the
    lab still reports as preliminary: they become verifiable when its final report arrives."""
    queue = results_to_verify(user=acting_user(request))
    if request.method == "POST":
        form = ResultsChoiceForm(request.POST)
        chosen = form.cleaned_data["results"] if form.is_valid() else []
        rows = visible_results(user=request.user, ids=chosen)
        if rows:
            with step_messages(request, PermissionDenied):
                outcome = results_verify(results=rows, user=acting_user(request), now=timezone.now())
                messages.success(
                    request, f"Verified {len(outcome.verified)}; skipped {len(outcome.skipped_own)} of your own."
                )
        return redirect("results:verify")
    page = Paginator(result_rows(queue), 100).get_page(request.GET.get("page"))
    waiting = results_awaiting_lab_final(user=acting_user(request))
    context = {"results": page, "page": page, "waiting": result_rows(waiting)[:100], "waiting_count": waiting.count()}
    return render(request, "results/verify.html", context)


@html_view("GET", "POST", perm="results.review_result")
def review(request: HttpRequest) -> HttpResponse:
    """The oncologist's inbox: critical and grade >= 3 first; sign off one by one or as a batch."""
    if request.method == "POST":
        form = ResultsChoiceForm(request.POST)
        if not form.is_valid():
            messages.error(request, error_text(ValidationError(form.errors.as_data())))
            return redirect("results:review")
        rows = visible_results(user=request.user, ids=form.cleaned_data["results"])
        with step_messages(request):
            done = results_review(
                results=rows, user=acting_user(request), now=timezone.now(), comment=form.cleaned_data["comment"]
            )
            messages.success(request, f"Reviewed {len(done)} results.")
        return redirect("results:review")
    page = Paginator(review_inbox_panels(user=request.user), 25).get_page(request.GET.get("page"))
    panels = review_panels(user=request.user, groups=page)
    return render(request, "results/review.html", {"panels": panels, "page": page})


def _result_context(request: HttpRequest, result: Result) -> dict[str, object]:
    history = result_versions(result=result)
    return {"result": result, "history": history, "alerts": result_alerts(user=request.user, result=result)}


@html_view("GET", perm="results.view_result")
def result_page(request: HttpRequest, pk: int) -> HttpResponse:
    result = get_object_or_404(result_list(user=request.user), pk=pk)
    return render(request, "results/result.html", _result_context(request, result) | {"amend_form": AmendForm()})


@html_view("POST", perm="results.amend_result")
def amend(request: HttpRequest, pk: int) -> HttpResponse:
    """An amendment; a refused one shows the result page again with what was typed and why."""
    result = get_object_or_404(result_list(user=request.user), pk=pk)
    form = AmendForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            result_amend(result=result, user=acting_user(request), now=timezone.now(), **form.cleaned_data)
            messages.success(request, "Amendment entered; it takes effect once another technician verifies it.")
            return redirect("results:detail", pk=pk)
        except (ValidationError, Conflict, PermissionDenied) as error:
            status = form_refused(form, error)
    context = _result_context(request, result) | {"amend_form": form}
    return render(request, "results/result.html", context, status=status)


@html_view("GET", perm="results.view_result")
def timeline(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """A patient's lab trends over a window: by default the last 90 days and the next 14 (planned doses)."""
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    form = TrendWindowForm(request.GET)
    if not form.is_valid():
        context = {"patient": patient, "trends": [], "chart_data": [], "form": form, "windows": TREND_WINDOWS}
        return render(request, "results/timeline.html", context, status=400)
    window = form.cleaned_data["window"] or TREND_DEFAULT_WINDOW
    now = timezone.now()
    start = None if window == "all" else now - timedelta(days=int(window))
    end = now + timedelta(days=TREND_AHEAD_DAYS)
    trends = patient_trends(user=request.user, patient=patient, since=start)
    # Doses live in a later app: the project names the function that lists them (settings.DOSE_DATES_FUNCTION).
    dose_dates = import_string(settings.DOSE_DATES_FUNCTION)(user=request.user, patient_id=patient.pk)
    context = {
        "patient": patient, "trends": trends, "window": window, "windows": TREND_WINDOWS, "form": form,
        "chart_data": trend_chart_data(trends, dose_dates, start=start, end=end), "ahead_days": TREND_AHEAD_DAYS,
    }  # fmt: skip
    return render(request, "results/timeline.html", context)


@html_view("GET", "POST", perm="results.view_criticalcall", post_perm="results.add_criticalcall")
def critical_call(request: HttpRequest, alert_pk: int) -> HttpResponse:
    """The call log of a critical result: everyone who may see it reads it; the lab logs the phone call, with the
    recipient's read-back (which acknowledges the alert)."""
    alert = get_object_or_404(critical_result_alerts(user=request.user), pk=alert_pk)
    form, status = posted_form(request, CriticalCallForm)
    if form.is_valid():
        try:
            critical_call_record(alert=alert, user=acting_user(request), now=timezone.now(), **form.cleaned_data)
            messages.success(request, "Call logged.")
            return redirect("results:critical-call", alert_pk=alert.pk)
        except (ValidationError, Conflict) as error:
            status = form_refused(form, error)
    calls = critical_calls(alert=alert)
    context = {"alert": alert, "calls": calls, "result": alert_result(user=request.user, alert=alert), "form": form}
    return render(request, "results/critical_call.html", context, status=status)


@html_view("GET", perm="results.verify_result")
def interface_errors(request: HttpRequest) -> HttpResponse:
    """Results out to the EHR (ORU^R01): what the receiver refused or what waits for a retry, with the ACK code
    and error; each can be re-sent. Below, what was never tried (no endpoint configured, or the next tick)."""
    problems = outbound_problems(user=request.user)
    waiting = outbound_waiting(user=request.user)
    context = {
        "problems": problems[:100],
        "problem_count": problems.count(),
        "waiting": waiting[:100],
        "waiting_count": waiting.count(),
        "endpoint": settings.HL7_OUTBOUND_HOST,
    }
    return render(request, "results/interface_errors.html", context)


@html_view("POST", perm="results.verify_result")
def interface_resend(request: HttpRequest, pk: int) -> HttpResponse:
    message = outbound_message_visible(user=request.user, pk=pk)
    if message is None:
        raise Http404("No such message.")
    with step_messages(request):
        outbound_message_resend(message=message, user=acting_user(request), now=timezone.now())
        messages.success(request, f"Message {message.control_id} will be sent again.")
    return redirect("results:interface-errors")
