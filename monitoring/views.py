from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.selectors import acting_user
from monitoring.selectors import monitoring_test_list
from monitoring.services import MonitoringTestConflict, monitoring_test_record_collection


@login_required
@require_POST
@permission_required("monitoring.record_collection", raise_exception=True)
def collected(request: HttpRequest, pk: int) -> HttpResponse:
    test = get_object_or_404(monitoring_test_list(user=request.user), pk=pk)
    try:
        monitoring_test_record_collection(monitoring_test=test, user=acting_user(request), now=timezone.now())
        messages.success(request, f"{test.lab_test.name}: collection recorded.")
    except MonitoringTestConflict as conflict:
        messages.error(request, str(conflict))
    return redirect("patient-chart", pk=test.patient_id)
