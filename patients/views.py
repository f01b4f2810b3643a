from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.views import html_view
from patients.selectors import patient_list


@html_view("GET")
def patient_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(patient_list(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "patients/list.html", {"page": page})
