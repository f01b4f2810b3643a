from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from accounts.selectors import acting_user
from core.errors import Conflict, error_messages, error_status, form_refused
from core.views import html_view, render_rows
from patients.selectors import patient_list
from specimens.forms import CollectForm, CustodyForm, ReceiveForm, RejectForm
from specimens.models import Specimen
from specimens.selectors import (
    collection_due_by,
    collection_list,
    due_tests_for_patient,
    later_tests_for_patient,
    specimen_detail,
    tubes_for,
    wards,
)
from specimens.services import specimen_receive, specimen_record_custody, specimen_reject, specimens_collect


@html_view("GET", perm="monitoring.view_monitoringtest")
def collection_list_page(request: HttpRequest) -> HttpResponse:
    """The tests to draw now on a ward: overdue or due within the collection window."""
    ward_names = wards(user=request.user)
    ward = request.GET.get("ward") or (ward_names[0] if ward_names else "")
    now = timezone.now()
    due_by = collection_due_by(now)
    draws = collection_list(user=request.user, ward=ward, due_by=due_by) if ward in ward_names else []
    can_collect = request.user.has_perm("specimens.collect_specimen")
    draws_html = render_rows("specimens/collection_draws.html", request, draws=draws, can_collect=can_collect)
    return render(
        request,
        "specimens/collection_list.html",
        {
            "wards": ward_names,
            "ward": ward,
            "window_hours": settings.SPECIMEN_COLLECTION_WINDOW_HOURS,
            "due_by": due_by,
            "draws_html": draws_html,
            "now": now,
        },
    )


@html_view("GET", "POST", perm="specimens.collect_specimen")
def collect(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Scanner-first: the wristband field has the focus; a scan ends with Enter and submits. Offers only the
    tests in the collection window; later ones are listed as staying open."""
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    now = timezone.now()
    due_by = collection_due_by(now)
    due = list(due_tests_for_patient(user=request.user, patient=patient, due_by=due_by))
    errors: list[str] = []
    status = 200
    form = CollectForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        chosen = set(form.cleaned_data["tests"])
        try:
            specimens = specimens_collect(
                patient=patient,
                wristband=form.cleaned_data["wristband"],
                monitoring_tests=[t for t in due if t.pk in chosen],
                user=acting_user(request),
                now=now,
                location=patient.care_team.ward,
            )
        except (ValidationError, Conflict) as error:
            errors, status = error_messages(error), error_status(error)
        else:
            return render(request, "specimens/collected.html", {"patient": patient, "specimens": specimens})
    elif form.is_bound:
        errors, status = [str(message) for field in form.errors.values() for message in field], 400
    later = later_tests_for_patient(user=request.user, patient=patient, due_by=due_by)
    context = {
        "form": form,
        "patient": patient,
        "tubes": tubes_for(due),
        "due_by": due_by,
        "later_count": later.count(),
        "next_later": later.first(),
        "errors": errors,
        "chosen": set(form.cleaned_data.get("tests", [])) if form.is_bound else None,
    }
    return render(request, "specimens/collect.html", context, status=status)


@html_view("GET", "POST", perm="specimens.receive_specimen")
def receive(request: HttpRequest) -> HttpResponse:
    """Scan after scan: each Enter receives one specimen and the empty field takes the focus again."""
    form = ReceiveForm(request.POST or None)
    result: dict[str, object] | None = None
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            specimen = specimen_receive(
                accession=form.cleaned_data["accession"],
                condition=form.cleaned_data["condition"],
                user=acting_user(request),
                now=timezone.now(),
            )
        except (ValidationError, Conflict) as error:
            result, status = {"ok": False, "messages": error_messages(error)}, error_status(error)
        else:
            result = {"ok": True, "specimen": specimen}
        form = ReceiveForm(initial={"condition": form.cleaned_data["condition"]})
    template = "specimens/_receive.html" if request.htmx else "specimens/receive.html"  # type: ignore[attr-defined]
    return render(request, template, {"form": form, "result": result}, status=status)


@html_view("GET", perm="specimens.view_specimen")
def specimen_page(request: HttpRequest, pk: int) -> HttpResponse:
    specimen = get_object_or_404(specimen_detail(user=request.user), pk=pk)
    return _specimen_page(request, specimen)


def _specimen_page(
    request: HttpRequest, specimen: Specimen, refused_form: forms.Form | None = None, status: int = 200
) -> HttpResponse:
    """The specimen page; after a refused reject or custody step, with that form as the user filled it."""
    context = {
        "specimen": specimen,
        "reject_form": refused_form if isinstance(refused_form, RejectForm) else RejectForm(),
        "custody_form": refused_form if isinstance(refused_form, CustodyForm) else CustodyForm(),
        "refused_form": refused_form,
    }
    return render(request, "specimens/specimen.html", context, status=status)


def _specimen_step(
    request: HttpRequest, pk: int, form_class: type[forms.Form], step: Callable[..., object]
) -> HttpResponse | None:
    """Run a step on the specimen page's form: None when done, else the page again with the form's errors."""
    specimen = get_object_or_404(specimen_detail(user=request.user), pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        return _specimen_page(request, specimen, form, status=400)
    try:
        step(specimen=specimen, user=acting_user(request), now=timezone.now(), **form.cleaned_data)
    except (ValidationError, Conflict) as error:
        status = form_refused(form, error)
        specimen = get_object_or_404(specimen_detail(user=request.user), pk=pk)
        return _specimen_page(request, specimen, form, status=status)
    return None


@html_view("POST", perm="specimens.reject_specimen")
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    refused = _specimen_step(request, pk, RejectForm, specimen_reject)
    if refused is not None:
        return refused
    messages.success(request, "Specimen rejected; its tests are due again and the nurses are alerted.")
    return redirect("specimens:detail", pk=pk)


@html_view("POST", perm="specimens.record_custody")
def custody(request: HttpRequest, pk: int) -> HttpResponse:
    refused = _specimen_step(request, pk, CustodyForm, specimen_record_custody)
    return refused if refused is not None else redirect("specimens:detail", pk=pk)
