from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from accounts.selectors import acting_user
from assessments.forms import AmendForm, AssessmentForm, initial_from
from assessments.selectors import assessment_list, grade_trend, patient_assessments
from assessments.services import assessment_amend, assessment_record, missing_text
from core.errors import Conflict, form_refused
from core.views import html_view, posted_form
from patients.selectors import patient_list


@html_view("GET", "POST", perm="assessments.add_assessment")
def new(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """The bedside form; on success the graded assessment, else the form again with the nurse's values and each
    refused finding named."""
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    form, status = posted_form(request, AssessmentForm, initial={"assessed_at": timezone.localtime()})
    if form.is_bound and form.is_valid():
        try:
            assessment = assessment_record(
                patient=patient,
                assessed_at=form.cleaned_data["assessed_at"],
                user=acting_user(request),
                now=timezone.now(),
                **form.findings(),
            )
        except (ValidationError, Conflict) as error:
            status = form_refused(form, error)
        else:
            return redirect("assessments:detail", pk=assessment.pk)
    return render(request, "assessments/new.html", {"patient": patient, "form": form}, status=status)


@html_view("GET", "POST", perm="assessments.add_assessment")
def amend(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct an assessment: the form holds its findings; saving records a new assessment that supersedes it."""
    original = get_object_or_404(assessment_list(user=request.user), pk=pk)
    form, status = posted_form(request, AmendForm, initial=initial_from(original))
    if form.is_bound and form.is_valid():
        assessed_at = form.cleaned_data["assessed_at"]
        if assessed_at == original.assessed_at.replace(second=0, microsecond=0):
            assessed_at = original.assessed_at  # unchanged: the form shows minutes only
        try:
            amended = assessment_amend(
                assessment=original,
                reason=form.cleaned_data["reason"],
                assessed_at=assessed_at,
                user=acting_user(request),
                now=timezone.now(),
                **form.findings(),
            )
        except (ValidationError, Conflict) as error:
            status = form_refused(form, error)
        else:
            return redirect("assessments:detail", pk=amended.pk)
    context = {"patient": original.patient, "form": form, "original": original}
    return render(request, "assessments/new.html", context, status=status)


@html_view("GET", perm="assessments.view_assessment")
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One assessment: both grades with the rules that decided them, or PENDING with what is missing."""
    assessment = get_object_or_404(assessment_list(user=request.user), pk=pk)
    context = {
        "assessment": assessment,
        "patient": assessment.patient,
        "crs_missing": missing_text(assessment.crs_missing) if assessment.crs_missing else "",
        "icans_missing": missing_text(assessment.icans_missing) if assessment.icans_missing else "",
    }
    return render(request, "assessments/assessment.html", context)


@html_view("GET", perm="assessments.view_assessment")
def history(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """The patient's grades over time, newest first; an amended assessment shows its amendment."""
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    trend = grade_trend(patient_assessments(user=request.user, patient=patient))
    return render(request, "assessments/history.html", {"patient": patient, "trend": trend})
