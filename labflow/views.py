"""Pages that compose several apps; the project package sits above every app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from alerts.selectors import patient_alerts
from assessments.selectors import LABS_BESIDE_GRADES, grades_beside_labs, recent_grade_trend
from core.views import html_view
from labflow.forms import TimelineFilterForm
from labflow.timeline import AHEAD_DAYS, PAST_DAYS_CHOICES, patient_timeline
from monitoring.selectors import patient_monitoring_tests
from orders.selectors import cell_therapy_periods, patient_courses
from patients.selectors import patient_list
from specimens.selectors import collection_due_by, due_tests_for_patient


@html_view("GET")
def patient_chart(request: HttpRequest, pk: int) -> HttpResponse:
    """Another care team's patient is a 404: the page does not reveal that it exists. A collection is recorded
    only on the collect screen (wristband scan, one specimen per tube, labels): the chart links there."""
    patient = get_object_or_404(patient_list(user=request.user), pk=pk)
    due_by = collection_due_by(timezone.now())
    context: dict[str, object] = {
        "patient": patient,
        "collect_due_by": due_by,
        "collectable": due_tests_for_patient(user=request.user, patient=patient, due_by=due_by).count(),
        "monitoring_tests": patient_monitoring_tests(user=request.user, patient=patient),
        "courses": patient_courses(user=request.user, patient=patient),
        "alerts": patient_alerts(user=request.user, patient=patient),
        "cell_therapy_periods": cell_therapy_periods(user=request.user, patient=patient, now=timezone.now()),
    }
    trend = (
        recent_grade_trend(user=request.user, patient=patient)
        if request.user.has_perm("assessments.view_assessment")
        else []
    )
    context["assessment_trend"] = trend
    # The same grades in time order beside CRP and ferritin over their period (docs/architecture.md §4a).
    context["grades_beside_labs"] = (
        grades_beside_labs(user=request.user, patient=patient, trend=trend)
        if request.user.has_perm("results.view_result")
        else []
    )
    context["lab_columns"] = LABS_BESIDE_GRADES
    return render(request, "patient_chart.html", context)


@html_view("GET")
def patient_timeline_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One patient's doses, labs, assessments and alerts on a time axis centred on today (issue 15), scoped like
    the chart: another care team's patient is a 404. Filters are GET parameters; a bad one is a 400 naming it."""
    patient = get_object_or_404(patient_list(user=request.user), pk=pk)
    form = TimelineFilterForm(request.GET)
    context: dict[str, object] = {"patient": patient, "form": form, "choices": PAST_DAYS_CHOICES, "ahead": AHEAD_DAYS}
    if not form.is_valid():
        return render(request, "patient_timeline.html", context, status=400)
    data = form.cleaned_data
    context["timeline"] = patient_timeline(
        user=request.user, patient=patient, now=timezone.now(), past_days=data["days"], lab_test_id=data["test"]
    )
    context["days"], context["test"] = data["days"], data["test"]
    return render(request, "patient_timeline.html", context)
