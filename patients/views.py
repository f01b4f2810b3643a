from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from patients.selectors import patient_list


@login_required
@require_GET
def patient_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(patient_list(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "patients/list.html", {"page": page})
