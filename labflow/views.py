"""Pages that compose several apps; the project package sits above every app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from alerts.selectors import alert_list
from monitoring.selectors import monitoring_test_list
from orders.selectors import course_list
from patients.selectors import patient_list
from specimens.selectors import collection_due_by, due_tests_for_patient


@login_required
@require_GET
def patient_chart(request: HttpRequest, pk: int) -> HttpResponse:
    """Another care team's patient is a 404: the page does not reveal that it exists. A collection is recorded
    only on the collect screen (wristband scan, one specimen per tube, labels): the chart links there."""
    patient = get_object_or_404(patient_list(user=request.user), pk=pk)
    due_by = collection_due_by(timezone.now())
    context = {
        "patient": patient,
        "collect_due_by": due_by,
        "collectable": due_tests_for_patient(user=request.user, patient=patient, due_by=due_by).count(),
        "monitoring_tests": monitoring_test_list(user=request.user).filter(patient=patient).order_by("-due_at")[:100],
        "courses": course_list(user=request.user).filter(patient=patient),
        "alerts": alert_list(user=request.user)
        .filter(patient=patient)
        .select_related("acknowledged_by", "resolved_by")[:100],
    }
    return render(request, "patient_chart.html", context)
