from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.views import html_view
from patients.forms import PatientSearchForm
from patients.selectors import patient_list, patient_search


@html_view("GET")
def patient_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(patient_list(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "patients/list.html", {"page": page})


SEARCH_ROWS = 50


@html_view("GET", "POST")
def patient_search_page(request: HttpRequest) -> HttpResponse:
    """Find a patient by name, MRN or birth date among the user's care teams. POST only: what was typed names a
    patient and must not end up in a URL or an access log (docs/architecture.md §7). One match opens the chart."""
    form = PatientSearchForm(request.POST if request.method == "POST" else None)
    if not form.is_bound:
        return render(request, "patients/search.html", {"form": form})
    if not form.is_valid():
        return render(request, "patients/search.html", {"form": form}, status=400)
    found = list(patient_search(user=request.user, query=form.cleaned_data["q"])[: SEARCH_ROWS + 1])
    if len(found) == 1:
        return redirect("patient-chart", pk=found[0].pk)
    context = {"form": form, "patients": found[:SEARCH_ROWS], "more": len(found) > SEARCH_ROWS}
    return render(request, "patients/search.html", context)
