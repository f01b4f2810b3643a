from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import acting_user
from labflow.errors import Conflict, error_text
from orders.choices import ComponentKind, CompoundingCategory, Storage, VerificationMethod
from orders.models import Regimen
from orders.selectors import (
    course_list,
    dose_list,
    preparation_list,
    verification_queue,
    worklist_doses,
    worklist_rows,
)
from orders.services import (
    ComponentInput,
    course_start,
    dose_gate,
    dose_override,
    expected_check_value,
    preparation_administer,
    preparation_record,
    preparation_release,
    preparation_start,
    preparation_verify,
)
from patients.selectors import patient_list


@login_required
@require_GET
@permission_required("orders.view_preparation", raise_exception=True)
def worklist_page(request: HttpRequest) -> HttpResponse:
    """Today's and tomorrow's doses by planned time, each with its gate verdict and preparation state."""
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    page = Paginator(worklist_doses(user=request.user, start=start, days=2), 100).get_page(request.GET.get("page"))
    rows = worklist_rows(list(page), timezone.now())
    return render(request, "orders/worklist.html", {"rows": rows, "start": start, "page": page})


@login_required
@require_POST
@permission_required("orders.prepare", raise_exception=True)
def start(request: HttpRequest, pk: int) -> HttpResponse:
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    try:
        preparation_start(preparation=prep, user=acting_user(request), now=timezone.now())
    except (Conflict, ValidationError) as error:
        messages.error(request, error_text(error))
        return redirect("orders:worklist")
    return redirect("orders:prepare", pk=pk)


def _components(post: object) -> list[ComponentInput]:
    rows = []
    for index in range(6):
        get = post.get  # type: ignore[attr-defined]
        product = get(f"product-{index}", "").strip()
        if not product:
            continue
        expiry = parse_date(get(f"expiry-{index}", "").strip() or "")
        if expiry is None:
            raise ValidationError({f"components[{index}].expiry": "Scan or type the expiry date (YYYY-MM-DD)."})
        try:
            volume = Decimal(get(f"volume-{index}", "0") or "0")
        except InvalidOperation:
            raise ValidationError({f"components[{index}].volume_ml": "Volume must be a number."}) from None
        kind = ComponentKind.DILUENT if get(f"kind-{index}") == ComponentKind.DILUENT else ComponentKind.VIAL
        rows.append(ComponentInput(kind, product, get(f"lot-{index}", ""), expiry, volume))
    return rows


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.prepare", raise_exception=True)
def prepare(request: HttpRequest, pk: int) -> HttpResponse:
    """Scanner-friendly record: each scan fills a field and Enter moves on."""
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    status = 200
    if request.method == "POST":
        try:
            preparation_record(
                preparation=prep, components=_components(request.POST), category=request.POST.get("category", ""),
                storage=request.POST.get("storage", ""), user=acting_user(request), now=timezone.now(),
            )  # fmt: skip
            messages.success(request, f"{prep.code} recorded; a colleague verifies it next.")
            return redirect("orders:worklist")
        except (Conflict, ValidationError, PermissionDenied, ValueError) as error:
            messages.error(request, error_text(error))
            status = 400
    context = {"prep": prep, "categories": CompoundingCategory.choices, "storages": Storage.choices, "rows": range(3)}
    return render(request, "orders/prepare.html", context, status=status)


@login_required
@require_GET
@permission_required("orders.verify_preparation", raise_exception=True)
def verification_page(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/verification.html", {"preparations": verification_queue(user=request.user)})


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.verify_preparation", raise_exception=True)
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    status = 200
    if request.method == "POST":
        try:
            measured = Decimal(request.POST.get("measured", ""))
            prep = preparation_verify(
                preparation=prep, user=acting_user(request), password=request.POST.get("password", ""),
                method=request.POST.get("method", ""), measured=measured, now=timezone.now(),
            )  # fmt: skip
            if prep.rejection_reason:
                messages.error(request, f"Rejected: {prep.rejection_reason}")
            else:
                messages.success(request, f"{prep.code} verified. Print the label and release it.")
            return redirect("orders:verify", pk=pk)
        except InvalidOperation:
            messages.error(request, "Measured value must be a number.")
            status = 400
        except (Conflict, ValidationError, PermissionDenied) as error:
            messages.error(request, error_text(error))
            status = 403 if isinstance(error, PermissionDenied) else 400
    expected = {m: expected_check_value(prep, m) for m in VerificationMethod.values}
    context = {"prep": prep, "methods": VerificationMethod.choices, "expected": expected}
    return render(request, "orders/verify.html", context, status=status)


@login_required
@require_POST
@permission_required("orders.prepare", raise_exception=True)
def release(request: HttpRequest, pk: int) -> HttpResponse:
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    try:
        preparation_release(preparation=prep, user=acting_user(request), now=timezone.now())
        messages.success(request, f"{prep.code} released to the ward.")
    except Conflict as error:
        messages.error(request, str(error))
    return redirect("orders:verify", pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.administer", raise_exception=True)
def administer(request: HttpRequest, pk: int) -> HttpResponse:
    """Bedside: scan the wristband, then the bag label; a mismatch stops."""
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    status, outcome = 200, None
    if request.method == "POST":
        try:
            outcome = preparation_administer(
                preparation=prep, wristband=request.POST.get("wristband", ""), label=request.POST.get("label", ""),
                user=acting_user(request), now=timezone.now(),
            )  # fmt: skip
            status = 200 if outcome.matched else 409
            prep = outcome.preparation
        except Conflict as error:
            messages.error(request, str(error))
            status = 409
    return render(request, "orders/administer.html", {"prep": prep, "outcome": outcome}, status=status)


@login_required
@require_GET
@permission_required("orders.administer", raise_exception=True)
def ward_preparations(request: HttpRequest) -> HttpResponse:
    """Released preparations for the nurse's patients."""
    rows = preparation_list(user=request.user).filter(status="released").order_by("dose__planned_at")
    return render(request, "orders/ward.html", {"preparations": rows})


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.view_treatmentcourse", raise_exception=True)
def course_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The oncologist's course page: doses, gate verdicts and reasons, override."""
    course = get_object_or_404(course_list(user=request.user), pk=pk)
    if request.method == "POST":
        if not request.user.has_perm("orders.manage_course"):
            raise PermissionDenied
        dose = get_object_or_404(dose_list(user=request.user).filter(course=course), pk=request.POST.get("dose"))
        try:
            dose_override(
                dose=dose, user=acting_user(request), now=timezone.now(), reason=request.POST.get("reason", "")
            )
            messages.success(request, f"Dose {dose.number} overridden.")
        except (Conflict, ValidationError) as error:
            messages.error(request, error_text(error))
        return redirect("orders:course", pk=pk)
    now = timezone.now()
    doses = [(d, dose_gate(d, now=now)) for d in course.doses.order_by("number")]
    return render(request, "orders/course.html", {"course": course, "doses": doses})


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.manage_course", raise_exception=True)
def course_new(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    status = 200
    if request.method == "POST":
        regimen = Regimen.objects.filter(active=True, pk=request.POST.get("regimen") or 0).first()
        starts_at = parse_datetime(request.POST.get("starts_at", ""))
        if regimen is None or starts_at is None:
            messages.error(request, "Choose a regimen and a start date and time.")
            status = 400
        else:
            if timezone.is_naive(starts_at):
                starts_at = timezone.make_aware(starts_at)
            try:
                course = course_start(
                    patient=patient, regimen=regimen, starts_at=starts_at, user=acting_user(request),
                    now=timezone.now(), chain_of_identity=request.POST.get("chain_of_identity", ""),
                )  # fmt: skip
                return redirect("orders:course", pk=course.pk)
            except ValidationError as error:
                messages.error(request, error_text(error))
                status = 400
    context = {
        "patient": patient,
        "regimens": Regimen.objects.filter(active=True),
        "tomorrow": timezone.now() + timedelta(days=1),
    }
    return render(request, "orders/course_new.html", context, status=status)
