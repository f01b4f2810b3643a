"""The chain of identity and the rescue medication of a frozen cell product (CAR-T, lifileucel) in the web UI: the
hand-offs before receipt (collection, shipment) and pharmacy's confirmation of the rescue doses on hand. Receipt
and thaw are recorded on the prepare page, the bedside check is the administration scan."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from accounts.selectors import acting_user
from core.errors import Conflict, form_refused
from core.views import html_view
from orders.cells import MAX_RESCUE_DOSES, rescue_medication_confirm
from orders.choices import CoiStep, CourseStatus
from orders.forms import HandoffForm, RescueCheckForm
from orders.models import TreatmentCourse
from orders.selectors import course_identity_checks, course_list, course_preparations, latest_rescue_check
from orders.services.identity import chain_of_identity_handoff

PAGE_STEPS = (CoiStep.COLLECTION, CoiStep.SHIPMENT)  # the hand-offs recorded on this page, in order


def _handoff(request: HttpRequest, course: TreatmentCourse, form: HandoffForm) -> tuple[HttpResponse | None, int, str]:
    """Record the hand-off: (the redirect, 302, "") when the ID matches; (None, 409, the STOP note) when it does not
    (the mismatch is kept); (None, the refusal's status, "") when the service refuses it (nothing written)."""
    data = form.cleaned_data
    try:
        check = chain_of_identity_handoff(
            course=course, step=data["step"], scanned=data["scanned"], note=data["note"], user=acting_user(request),
            now=timezone.now(),
        )  # fmt: skip
    except (Conflict, ValidationError, PermissionDenied) as error:
        return None, form_refused(form, error), ""
    if not check.matched:
        return None, 409, f"{check.note} Do not hand this product on."
    messages.success(request, f"{check.get_step_display()} recorded: the chain-of-identity ID matches.")
    return redirect("orders:course-identity", pk=course.pk), 302, ""


def _rescue(request: HttpRequest, course: TreatmentCourse, form: RescueCheckForm) -> tuple[HttpResponse | None, int]:
    data = form.cleaned_data
    try:
        check = rescue_medication_confirm(
            course=course, doses_on_hand=data["doses_on_hand"], note=data["note"], user=acting_user(request),
            now=timezone.now(),
        )  # fmt: skip
    except (Conflict, ValidationError, PermissionDenied) as error:
        return None, form_refused(form, error)
    messages.success(request, f"{check.doses_on_hand} dose(s) of {check.drug} confirmed on hand.")
    return redirect("orders:course-identity", pk=course.pk), 302


@html_view("GET", "POST", perm="orders.view_treatmentcourse")
def course_identity(request: HttpRequest, pk: int) -> HttpResponse:
    """A frozen cell product's chain of identity (every check recorded, the scan of the next hand-off before
    receipt) and its rescue medication on hand (confirmed by pharmacy, shown to all who see the course)."""
    course = get_object_or_404(course_list(user=request.user), pk=pk)
    drug = course.regimen.drug
    if not drug.cell_therapy or drug.fresh_product:
        raise Http404("Only a frozen cell product has these hand-offs.")
    handoff_form, rescue_form, status, stop = HandoffForm(), RescueCheckForm(), 200, ""
    if request.method == "POST":
        response: HttpResponse | None
        if request.POST.get("form") == "rescue":
            if not request.user.has_perm("orders.prepare"):
                raise PermissionDenied("Pharmacy confirms rescue medication on hand.")
            rescue_form, status = RescueCheckForm(request.POST), 400
            if rescue_form.is_valid():
                response, status = _rescue(request, course, rescue_form)
                if response is not None:
                    return response
        else:
            handoff_form, status = HandoffForm(request.POST), 400
            if handoff_form.is_valid():
                response, status, stop = _handoff(request, course, handoff_form)
                if response is not None:
                    return response
    checks = course_identity_checks(course)
    done = {check.step for check in checks if check.matched}
    next_step = next((step for step in PAGE_STEPS if step not in done), None)
    rescue = latest_rescue_check(course, drug)
    context = {
        "course": course, "drug": drug, "checks": checks, "next_step": next_step, "stop": stop,
        "handoff_form": handoff_form, "rescue_form": rescue_form, "rescue": rescue,
        "rescue_short": rescue is not None and rescue.doses_on_hand < drug.rescue_doses_required,
        "active": course.status == CourseStatus.ACTIVE, "max_doses": MAX_RESCUE_DOSES,
        "preparations": course_preparations(course),
    }  # fmt: skip
    return render(request, "orders/course_identity.html", context, status=status)
