from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import acting_user
from alerts.choices import AlertKind
from alerts.selectors import alert_list
from core.errors import Conflict, error_text, form_refused
from monitoring.models import LabTest
from patients.selectors import patient_list
from results.forms import AmendForm, CriticalCallForm, ResultGridForm, ResultsChoiceForm
from results.models import Result
from results.selectors import (
    alert_result,
    entry_grid,
    patient_trends,
    result_alerts,
    result_history,
    result_list,
    results_awaiting_lab_final,
    results_to_verify,
    review_inbox,
    specimens_awaiting,
)
from results.services import (
    ResultEntry,
    critical_call_record,
    result_amend,
    results_enter,
    results_review,
    results_verify,
)
from results.trends import trend_chart_data
from specimens.selectors import specimen_detail


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("results.enter_result", raise_exception=True)
def enter(request: HttpRequest, specimen_pk: int) -> HttpResponse:
    """Keyboard-only grid: one row per analyte, previous value beside the input; Enter moves down."""
    specimen = get_object_or_404(specimen_detail(user=request.user), pk=specimen_pk)
    rows = entry_grid(specimen=specimen)
    open_keys = [row.lab_test.pk for row in rows if row.current is None]
    form = ResultGridForm(request.POST if request.method == "POST" else None, keys=open_keys)
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            tests = {t.pk: t for t in LabTest.objects.filter(pk__in=open_keys)}
            entries = [ResultEntry(specimen, tests[key], value, unit) for key, value, unit in form.entered()]
            try:
                results_enter(entries=entries, user=acting_user(request), now=timezone.now())
            except (ValidationError, Conflict, PermissionDenied) as error:
                status = form_refused(form, error, form.service_fields())
            else:
                messages.success(request, f"{len(entries)} results entered; another technician verifies them.")
                return redirect("results:enter", specimen_pk=specimen.pk)
    typed = [(row, form.typed(row.lab_test.pk, row.lab_test.result_spec.unit)) for row in rows]
    context = {"specimen": specimen, "rows": typed, "form": form}
    return render(request, "results/enter.html", context, status=status)


@login_required
@require_GET
@permission_required("results.enter_result", raise_exception=True)
def enter_index(request: HttpRequest) -> HttpResponse:
    first = LabTest.objects.filter(result_spec__isnull=False).order_by("name").first()
    if first is None:
        raise Http404("No resultable test in the catalogue.")
    return redirect("results:enter-test", lab_test_pk=first.pk)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("results.enter_result", raise_exception=True)
def enter_by_test(request: HttpRequest, lab_test_pk: int) -> HttpResponse:
    """One analyte across specimens (e.g. a run of potassium on the analyser): one row per specimen."""
    lab_test = get_object_or_404(LabTest.objects.filter(result_spec__isnull=False), pk=lab_test_pk)
    rows = specimens_awaiting(user=request.user, lab_test=lab_test)
    data = request.POST if request.method == "POST" else None
    form = ResultGridForm(data, keys=[row.specimen.pk for row in rows], one_unit=True)
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            specimens = {row.specimen.pk: row.specimen for row in rows}
            entries = [ResultEntry(specimens[key], lab_test, value, unit) for key, value, unit in form.entered()]
            try:
                results_enter(entries=entries, user=acting_user(request), now=timezone.now())
                messages.success(request, f"{len(entries)} {lab_test.name} results entered.")
                return redirect("results:enter-test", lab_test_pk=lab_test.pk)
            except (ValidationError, Conflict, PermissionDenied) as error:
                status = form_refused(form, error, form.service_fields())
    tests = LabTest.objects.filter(result_spec__isnull=False).order_by("name")
    context = {
        "lab_test": lab_test, "rows": [(row, form.typed(row.specimen.pk)) for row in rows], "tests": tests,
        "form": form, "unit": form.data.get("unit", "") if form.is_bound else lab_test.result_spec.unit,
    }  # fmt: skip
    return render(request, "results/enter_by_test.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("results.verify_result", raise_exception=True)
def verify_queue(request: HttpRequest) -> HttpResponse:
    """Results entered by others, oldest first; verify one, some or all at once. Below, read-only, the results the
    lab still reports as preliminary: they become verifiable when its final report arrives."""
    queue = results_to_verify(user=acting_user(request))
    if request.method == "POST":
        form = ResultsChoiceForm(request.POST)
        chosen = form.cleaned_data["results"] if form.is_valid() else []
        rows = list(result_list(user=request.user).filter(pk__in=chosen))
        if rows:
            try:
                outcome = results_verify(results=rows, user=acting_user(request), now=timezone.now())
                messages.success(
                    request, f"Verified {len(outcome.verified)}; skipped {len(outcome.skipped_own)} of your own."
                )
            except (Conflict, PermissionDenied) as error:
                messages.error(request, error_text(error))
        return redirect("results:verify")
    page = Paginator(queue, 100).get_page(request.GET.get("page"))
    waiting = results_awaiting_lab_final(user=acting_user(request))
    context = {"results": page, "page": page, "waiting": waiting[:100], "waiting_count": waiting.count()}
    return render(request, "results/verify.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("results.review_result", raise_exception=True)
def review(request: HttpRequest) -> HttpResponse:
    """The oncologist's inbox: critical and grade >= 3 first; sign off one by one or as a batch."""
    if request.method == "POST":
        form = ResultsChoiceForm(request.POST)
        if not form.is_valid():
            messages.error(request, error_text(ValidationError(form.errors.as_data())))
            return redirect("results:review")
        rows = list(result_list(user=request.user).filter(pk__in=form.cleaned_data["results"]))
        try:
            done = results_review(
                results=rows, user=acting_user(request), now=timezone.now(), comment=form.cleaned_data["comment"]
            )
            messages.success(request, f"Reviewed {len(done)} results.")
        except Conflict as error:
            messages.error(request, str(error))
        return redirect("results:review")
    page = Paginator(review_inbox(user=request.user), 100).get_page(request.GET.get("page"))
    return render(request, "results/review.html", {"results": page, "page": page})


def _result_context(request: HttpRequest, result: Result) -> dict[str, object]:
    history = result_history(result=result).select_related("entered_by", "verified_by").order_by("version")
    return {"result": result, "history": history, "alerts": result_alerts(user=request.user, result=result)}


@login_required
@require_GET
@permission_required("results.view_result", raise_exception=True)
def result_page(request: HttpRequest, pk: int) -> HttpResponse:
    result = get_object_or_404(result_list(user=request.user), pk=pk)
    return render(request, "results/result.html", _result_context(request, result) | {"amend_form": AmendForm()})


@login_required
@require_POST
@permission_required("results.amend_result", raise_exception=True)
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


@login_required
@require_GET
@permission_required("results.view_result", raise_exception=True)
def timeline(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    trends = patient_trends(user=request.user, patient=patient)
    # Doses live in a later app: the project names the function that lists them (settings.DOSE_DATES_FUNCTION).
    dose_dates = import_string(settings.DOSE_DATES_FUNCTION)(user=request.user, patient_id=patient.pk)
    context = {"patient": patient, "trends": trends, "chart_data": trend_chart_data(trends, dose_dates)}
    return render(request, "results/timeline.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("results.view_criticalcall", raise_exception=True)
def critical_call(request: HttpRequest, alert_pk: int) -> HttpResponse:
    """The call log of a critical result: everyone who may see it reads it; the lab logs the phone call, with the
    recipient's read-back (which acknowledges the alert)."""
    alert = get_object_or_404(alert_list(user=request.user).filter(kind=AlertKind.CRITICAL_RESULT), pk=alert_pk)
    form = CriticalCallForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_bound:
        if not request.user.has_perm("results.add_criticalcall"):
            raise PermissionDenied
        status = 400
        if form.is_valid():
            try:
                critical_call_record(alert=alert, user=acting_user(request), now=timezone.now(), **form.cleaned_data)
                messages.success(request, "Call logged.")
                return redirect("results:critical-call", alert_pk=alert.pk)
            except (ValidationError, Conflict) as error:
                status = form_refused(form, error)
    calls = alert.critical_calls.select_related("caller")
    context = {"alert": alert, "calls": calls, "result": alert_result(user=request.user, alert=alert), "form": form}
    return render(request, "results/critical_call.html", context, status=status)
