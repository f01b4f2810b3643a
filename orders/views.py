from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import acting_user
from core.errors import Conflict, error_text
from orders.cells import cell_product_receive, cell_product_thaw
from orders.choices import (
    ComponentKind,
    CompoundingCategory,
    DecisionKind,
    PreparationStatus,
    Storage,
    VerificationMethod,
)
from orders.dosing import format_cells
from orders.gate import dose_gates
from orders.models import Preparation, Regimen
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
    course_stop,
    dose_continue_cosigned,
    dose_override,
    expected_check_value,
    preparation_administer,
    preparation_end_administration,
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


def _when(value: str | None, field_name: str) -> datetime | None:
    """A date and time from a form (datetime-local, in the site's zone); blank is None."""
    if not (value or "").strip():
        return None
    try:
        moment = parse_datetime((value or "").strip())
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({field_name: "Give a date and time (YYYY-MM-DD HH:MM)."})
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _whole(value: str | None, field_name: str) -> int:
    text = (value or "").replace(" ", "").replace(",", "").replace("_", "")
    if not text.isdigit():
        raise ValidationError({field_name: "A whole number."})
    return int(text)


def _decimal(value: str | None, field_name: str) -> Decimal:
    try:
        number = Decimal((value or "").strip())
    except InvalidOperation:
        raise ValidationError({field_name: "A number."}) from None
    if not number.is_finite():
        raise ValidationError({field_name: "A number."})
    return number


def _refused(error: Exception) -> int:
    if isinstance(error, PermissionDenied):
        return 403
    return 409 if isinstance(error, Conflict) else 400


def _cells(prep: Preparation) -> dict[str, str]:
    return {
        name: format_cells(value)
        for name, value in (("target", prep.cells_target), ("min", prep.cells_min), ("max", prep.cells_max),
                            ("coa", prep.coa_cells))
        if value
    }  # fmt: skip


def _cell_step(request: HttpRequest, prep: Preparation) -> tuple[HttpResponse | None, int]:
    """Receipt (with the certificate of analysis) or thaw of a cell product, from the prepare page."""
    user, now = acting_user(request), timezone.now()
    post = request.POST
    if post.get("step") == "receive":
        outcome = cell_product_receive(
            preparation=prep, coi_scanned=post.get("coi_scanned", ""),
            coa_cells=_whole(post.get("coa_cells"), "coa_cells"),
            coa_bag_volume_ml=_decimal(post.get("coa_bag_volume_ml"), "coa_bag_volume_ml"),
            coa_lot=post.get("coa_lot", ""), user=user, now=now,
        )  # fmt: skip
        done = f"{prep.code} received: certificate of analysis recorded."
    else:
        outcome = cell_product_thaw(
            preparation=prep, coi_scanned=post.get("coi_scanned", ""),
            thawed_at=_when(post.get("thawed_at"), "thawed_at"), user=user, now=now,
        )  # fmt: skip
        done = f"{prep.code} thawed; a colleague verifies the bag next."
    if not outcome.matched:
        messages.error(request, f"{outcome.check.note} Do not use this bag.")
        return None, 409
    messages.success(request, done)
    if outcome.preparation.status == PreparationStatus.AWAITING_VERIFICATION:
        return redirect("orders:worklist"), 200
    return redirect("orders:prepare", pk=prep.pk), 200


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.prepare", raise_exception=True)
def prepare(request: HttpRequest, pk: int) -> HttpResponse:
    """Scanner-friendly record: each scan fills a field and Enter moves on. A cell product is received
    (certificate of analysis) and thawed instead."""
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    cell = prep.dose.course.regimen.drug.cell_therapy
    status = 200
    if request.method == "POST":
        try:
            if cell:
                response, status = _cell_step(request, prep)
                if response is not None:
                    return response
            else:
                preparation_record(
                    preparation=prep, components=_components(request.POST),
                    category=request.POST.get("category", ""), storage=request.POST.get("storage", ""),
                    punctured_at=_when(request.POST.get("punctured_at"), "punctured_at"), user=acting_user(request),
                    now=timezone.now(),
                )  # fmt: skip
                messages.success(request, f"{prep.code} recorded; a colleague verifies it next.")
                return redirect("orders:worklist")
        except (Conflict, ValidationError, PermissionDenied, ValueError) as error:
            messages.error(request, error_text(error))
            status = _refused(error) if not isinstance(error, ValueError) else 400
        prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    context = {
        "prep": prep, "cell": cell, "cells": _cells(prep), "categories": CompoundingCategory.choices,
        "storages": Storage.choices, "rows": range(3),
    }  # fmt: skip
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
    cell = prep.dose.course.regimen.drug.cell_therapy
    status = 200
    if request.method == "POST":
        post = request.POST
        try:
            if cell:
                intact = {"yes": True, "no": False}.get(post.get("bag_intact", ""))
                prep = preparation_verify(
                    preparation=prep, user=acting_user(request), password=post.get("password", ""),
                    method=VerificationMethod.CELL_PRODUCT, coi_label=post.get("coi_label", ""), bag_intact=intact,
                    now=timezone.now(),
                )  # fmt: skip
            else:
                prep = preparation_verify(
                    preparation=prep, user=acting_user(request), password=post.get("password", ""),
                    method=post.get("method", ""), measured=_decimal(post.get("measured"), "measured"),
                    now=timezone.now(),
                )  # fmt: skip
            if prep.rejection_reason:
                messages.error(request, f"Rejected: {prep.rejection_reason}")
            else:
                messages.success(request, f"{prep.code} verified. Print the label and release it.")
            return redirect("orders:verify", pk=pk)
        except (Conflict, ValidationError, PermissionDenied) as error:
            messages.error(request, error_text(error))
            status = _refused(error)
    methods = [(v, label) for v, label in VerificationMethod.choices if v != VerificationMethod.CELL_PRODUCT]
    expected = {m: expected_check_value(prep, m) for m in VerificationMethod.values}
    context = {"prep": prep, "cell": cell, "cells": _cells(prep), "methods": methods, "expected": expected}
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
    """Bedside: scan the wristband, then the bag label (a cell product also its chain-of-identity label),
    record the premedication where the drug needs it; any failed check stops with every reason. Then the end
    of the infusion."""
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    status, outcome = 200, None
    if request.method == "POST":
        post = request.POST
        try:
            if post.get("step") == "end":
                prep = preparation_end_administration(preparation=prep, user=acting_user(request), now=timezone.now())
                messages.success(request, f"End of infusion of {prep.code} recorded.")
                return redirect("orders:administer", pk=pk)
            outcome = preparation_administer(
                preparation=prep, wristband=post.get("wristband", ""), label=post.get("label", ""),
                coi_label=post.get("coi_label", ""),
                premedication_given_at=_when(post.get("premedication_given_at"), "premedication_given_at"),
                premedication_note=post.get("premedication_note", ""), user=acting_user(request), now=timezone.now(),
            )  # fmt: skip
            status = 200 if outcome.matched else 409
            prep = outcome.preparation
        except (Conflict, ValidationError) as error:
            messages.error(request, error_text(error))
            status = _refused(error)
    drug = prep.dose.course.regimen.drug
    context = {"prep": prep, "outcome": outcome, "drug": drug, "cells": _cells(prep)}
    return render(request, "orders/administer.html", context, status=status)


@login_required
@require_GET
@permission_required("orders.administer", raise_exception=True)
def ward_preparations(request: HttpRequest) -> HttpResponse:
    """Released preparations for the nurse's patients, and infusions running (to record their end)."""
    rows = (
        preparation_list(user=request.user)
        .filter(Q(status="released") | Q(status="administered", administration_ended_at__isnull=True))
        .order_by("dose__planned_at")
    )
    return render(request, "orders/ward.html", {"preparations": [(p, _cells(p)) for p in rows]})


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("orders.view_treatmentcourse", raise_exception=True)
def course_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The oncologist's course page: doses, gate verdicts with their findings, decisions."""
    course = get_object_or_404(course_list(user=request.user), pk=pk)
    status = 200
    if request.method == "POST":
        if not request.user.has_perm("orders.manage_course"):
            raise PermissionDenied
        dose = get_object_or_404(dose_list(user=request.user).filter(course=course), pk=request.POST.get("dose") or 0)
        try:
            if request.POST.get("decision") == DecisionKind.COSIGNED:
                cosigner = User.objects.filter(username=request.POST.get("cosigner", "").strip()).first()
                dose_continue_cosigned(
                    dose=dose, user=acting_user(request), cosigner=cosigner, now=timezone.now(),
                    cosigner_password=request.POST.get("cosigner_password", ""), reason=request.POST.get("reason", ""),
                )  # fmt: skip
                messages.success(request, f"Dose {dose.number}: decision to continue recorded, co-signed.")
            else:
                dose_override(
                    dose=dose, user=acting_user(request), now=timezone.now(), reason=request.POST.get("reason", "")
                )
                messages.success(request, f"Dose {dose.number} overridden.")
            return redirect("orders:course", pk=pk)
        except PermissionDenied as error:
            messages.error(request, str(error) or "Not allowed.")
            status = 403
        except (Conflict, ValidationError) as error:
            messages.error(request, error_text(error))
            status = 409 if isinstance(error, Conflict) else 400
    now = timezone.now()
    doses = list(dose_list(user=request.user).filter(course=course).order_by("number"))
    gates = dose_gates(doses, now=now)
    context = {"course": course, "doses": [(d, gates[d.pk]) for d in doses]}
    return render(request, "orders/course.html", context, status=status)


@login_required
@require_POST
@permission_required("orders.manage_course", raise_exception=True)
def course_stop_page(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_object_or_404(course_list(user=request.user), pk=pk)
    try:
        course_stop(course=course, user=acting_user(request), now=timezone.now(), reason=request.POST.get("reason", ""))
        messages.success(request, "Course stopped; its planned doses are cancelled.")
    except (Conflict, ValidationError) as error:
        messages.error(request, error_text(error))
    return redirect("orders:course", pk=pk)


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
                    no_round_up=request.POST.get("no_round_up") == "on",
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
