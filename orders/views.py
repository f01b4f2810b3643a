from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from accounts.selectors import acting_user, user_named
from core.errors import Conflict, form_refused
from core.numbers import plain_decimal
from core.views import html_view, posted_form, render_rows, step_messages
from orders.cells import cell_product_receive, cell_product_thaw
from orders.choices import (
    CompoundingCategory,
    DecisionKind,
    ExposureKind,
    PremedicationClass,
    PreparationStatus,
    Storage,
    VerificationMethod,
)
from orders.dosing import format_cells
from orders.forms import (
    AdministerForm,
    CellReceiveForm,
    CellThawForm,
    CourseForm,
    CourseStopForm,
    DoseDecisionForm,
    ExclusionForm,
    ExposureForm,
    FreshCollectForm,
    FreshReceiveForm,
    PreparationForm,
    ToleranceCheckForm,
    VerifyForm,
    VirusThawForm,
)
from orders.gate import dose_gates
from orders.gs1 import VialScanError, parse_vial_scan
from orders.models import Preparation
from orders.selectors import (
    active_regimens,
    course_doses,
    course_list,
    course_plan,
    dose_list,
    dose_step,
    dose_steps,
    expected_check_value,
    exposure_drugs,
    exposure_report_list,
    hospital_stays,
    preparation_list,
    therapy_plan_list,
    verification_queue,
    ward_bag_changes,
    ward_hospital_stays,
    ward_preparation_list,
    weight_recorded_at,
    worklist_doses,
    worklist_rows,
)
from orders.services.courses import course_start, course_stop, therapy_plan_start
from orders.services.doses import dose_continue_cosigned, dose_override
from orders.services.identity import ScanOutcome, preparation_administer
from orders.services.preparations import (
    preparation_end_administration,
    preparation_record,
    preparation_release,
    preparation_start,
    preparation_verify,
)
from orders.services.products import (
    exposure_report_record,
    fresh_product_collect,
    fresh_product_receive,
    preparer_exclusion_confirm,
    virus_thaw,
)
from orders.services.tolerance import tolerance_check_record
from patients.selectors import patient_list


@html_view("GET", perm="orders.view_preparation")
def worklist_page(request: HttpRequest) -> HttpResponse:
    """Today's and tomorrow's doses by planned time, each with its gate verdict and preparation state."""
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    page = Paginator(worklist_doses(user=request.user, start=start, days=2), 100).get_page(request.GET.get("page"))
    rows = worklist_rows(list(page), timezone.now())
    rows_html = render_rows(
        "orders/worklist_rows.html", request, rows=rows, can_prepare=request.user.has_perm("orders.prepare")
    )
    return render(request, "orders/worklist.html", {"rows_html": rows_html, "start": start, "page": page})


@html_view("POST", perm="orders.prepare")
def start(request: HttpRequest, pk: int) -> HttpResponse:
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    with step_messages(request) as step:
        user, now = acting_user(request), timezone.now()
        if prep.dose.course.regimen.drug.preparer_exclusions:  # T-VEC: confirmed with the start, never assumed
            answers = ExclusionForm(request.POST)
            answers.is_valid()
            preparer_exclusion_confirm(
                preparation=prep, user=user, now=now, not_pregnant=answers.cleaned_data.get("not_pregnant") is True,
                not_immunocompromised=answers.cleaned_data.get("not_immunocompromised") is True,
            )  # fmt: skip
        preparation_start(preparation=prep, user=user, now=now)
    return redirect("orders:worklist") if step.refused else redirect("orders:prepare", pk=pk)


def _cells(prep: Preparation) -> dict[str, str]:
    return {
        name: format_cells(value)
        for name, value in (("target", prep.cells_target), ("min", prep.cells_min), ("max", prep.cells_max),
                            ("coa", prep.coa_cells))
        if value
    }  # fmt: skip


def _cell_step(request: HttpRequest, prep: Preparation, form: forms.Form) -> tuple[HttpResponse | None, int]:
    """Receipt (with the certificate of analysis) or thaw of a cell product, from the prepare page."""
    user, now, data = acting_user(request), timezone.now(), form.cleaned_data
    if isinstance(form, CellReceiveForm):
        outcome = cell_product_receive(
            preparation=prep, coi_scanned=data["coi_scanned"], coa_cells=data["coa_cells"],
            coa_bag_volume_ml=data["coa_bag_volume_ml"], coa_lot=data["coa_lot"], user=user, now=now,
        )  # fmt: skip
        done = f"{prep.code} received: certificate of analysis recorded."
    else:
        outcome = cell_product_thaw(
            preparation=prep, coi_scanned=data["coi_scanned"], thawed_at=data["thawed_at"], user=user, now=now
        )
        done = f"{prep.code} thawed; a colleague verifies the bag next."
    if not outcome.matched:
        messages.error(request, f"{outcome.check.note} Do not use this bag.")
        return None, 409
    messages.success(request, done)
    if outcome.preparation.status == PreparationStatus.AWAITING_VERIFICATION:
        return redirect("orders:worklist"), 200
    return redirect("orders:prepare", pk=prep.pk), 200


def _product_form(prep: Preparation, data: Any) -> forms.Form | None:
    """The step form of a fresh cell product (collection, then receipt) or an oncolytic virus (thaw), or None."""
    drug = prep.dose.course.regimen.drug
    if drug.fresh_product:
        step = data.get("step") if data is not None else ("receive" if prep.bag_identity else "collect")
        return (FreshReceiveForm if step == "receive" else FreshCollectForm)(data)
    if drug.intralesional:
        return VirusThawForm(data)
    return None


def _product_step(request: HttpRequest, prep: Preparation, form: forms.Form) -> tuple[HttpResponse | None, int]:
    user, now, data = acting_user(request), timezone.now(), form.cleaned_data
    if isinstance(form, FreshCollectForm):
        fresh_product_collect(
            preparation=prep, bag_identity=data["bag_identity"], collected_at=data["collected_at"], user=user, now=now
        )
        messages.success(request, f"{prep.code}: leukapheresis recorded; start the preparation when the bag comes.")
        return redirect("orders:prepare", pk=prep.pk), 200
    if isinstance(form, FreshReceiveForm):
        outcome = fresh_product_receive(
            preparation=prep, coi_scanned=data["coi_scanned"], coa_cells=data["coa_cells"],
            coa_bag_volume_ml=data["coa_bag_volume_ml"], coa_lot=data["coa_lot"] or "", expires_at=data["expires_at"],
            user=user, now=now,
        )  # fmt: skip
        if not outcome.matched:
            messages.error(request, f"{outcome.check.note} Do not use this bag.")
            return None, 409
        messages.success(request, f"{prep.code} received; a colleague verifies the bag next.")
        return redirect("orders:worklist"), 200
    virus_thaw(
        preparation=prep, lesions_cm=data["lesions_cm"], vial_lot=data["vial_lot"] or "",
        vial_expiry=data["vial_expiry"], thawed_at=data["thawed_at"], user=user, now=now,
    )  # fmt: skip
    messages.success(request, f"{prep.code} thawed and planned; a colleague verifies the syringes next.")
    return redirect("orders:worklist"), 200


@html_view("GET", "POST", perm="orders.prepare")
def prepare(request: HttpRequest, pk: int) -> HttpResponse:
    """Scanner-friendly record: each scan fills a field and Enter moves on. A cell product is received
    (certificate of analysis) and thawed instead."""
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    cell = prep.dose.course.regimen.drug.cell_therapy
    data = request.POST if request.method == "POST" else None
    form: forms.Form
    product_form = _product_form(prep, data)
    if product_form is not None:
        form = product_form
    elif not cell:
        form = PreparationForm(data)
    else:
        form = (CellReceiveForm if data is not None and data.get("step") == "receive" else CellThawForm)(data)
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                if product_form is not None:
                    response, status = _product_step(request, prep, form)
                    if response is not None:
                        return response
                elif cell:
                    response, status = _cell_step(request, prep, form)
                    if response is not None:
                        return response
                else:
                    preparation_record(
                        preparation=prep, components=form.cleaned_data["components"],
                        category=form.cleaned_data["category"], storage=form.cleaned_data["storage"],
                        punctured_at=form.cleaned_data["punctured_at"], user=acting_user(request), now=timezone.now(),
                        closed_system_device=form.cleaned_data["closed_system_device"],
                        bag_volume_ml=form.cleaned_data["bag_volume_ml"],
                    )  # fmt: skip
                    messages.success(request, f"{prep.code} recorded; a colleague verifies it next.")
                    return redirect("orders:worklist")
            except (Conflict, ValidationError, PermissionDenied) as error:
                status = form_refused(form, error, getattr(form, "service_fields", None))
        prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    rows = [
        {name: form[f"{name}-{i}"] for name in ("kind", "scan", "product", "lot", "expiry", "volume")}
        | {"i": i, "gtin": form.scans[i].gtin if i in form.scans else ""}
        for i in range(3)
    ] if isinstance(form, PreparationForm) else []  # fmt: skip
    drug = prep.dose.course.regimen.drug
    context = {
        "prep": prep, "cell": cell and not drug.fresh_product, "cells": _cells(prep),
        "categories": CompoundingCategory.choices, "storages": Storage.choices, "rows": rows, "form": form,
        "drug": drug, "fresh": drug.fresh_product, "virus": drug.intralesional,
        "weight_recorded_at": _weight_recorded_at(prep), "products": _product_choices(prep),
    }  # fmt: skip
    return render(request, "orders/prepare.html", context, status=status)


def _product_choices(prep: Preparation) -> list[str]:
    """What a vial or diluent row may name (the service checks the same): the drug in each vial size, the diluents."""
    drug = prep.dose.course.regimen.drug
    vials = [f"{drug.name} {plain_decimal(content)} mg" for content in drug.vial_contents_mg]
    return vials + list(drug.allowed_diluents)


def _weight_recorded_at(prep: Preparation) -> datetime | None:
    weight = (prep.calculation or {}).get("weight_kg")
    try:
        return weight_recorded_at(prep.dose.course.patient, Decimal(weight)) if weight else None
    except ArithmeticError:
        return None  # a calculation stored before weights were recorded as numbers: the weight line stands alone


@html_view("GET", perm="orders.prepare")
def vial_scan(request: HttpRequest) -> JsonResponse:
    """The prepare page's scan field asks here as a vial is scanned, to fill the row at once; without JavaScript
    the form reads the same barcode on submit (PreparationForm). Holds no patient data."""
    try:
        scan = parse_vial_scan(request.GET.get("code", ""))
    except VialScanError as error:
        return JsonResponse({"code": [error.reason]}, status=400)
    expired = scan.expiry < timezone.localdate()
    return JsonResponse({
        "gtin": scan.gtin, "lot": scan.lot, "expiry": scan.expiry.isoformat(),
        "expired": f"Vial lot {scan.lot} expired on {scan.expiry:%Y-%m-%d}: do not use it." if expired else "",
    })  # fmt: skip


@html_view("GET", perm="orders.verify_preparation")
def verification_page(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/verification.html", {"preparations": verification_queue(user=request.user)})


@html_view("GET", "POST", perm="orders.verify_preparation")
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    cell = prep.dose.course.regimen.drug.cell_therapy
    form, status = posted_form(request, VerifyForm, cell=cell)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if cell:
                prep = preparation_verify(
                    preparation=prep, user=acting_user(request), password=data["password"], request=request,
                    method=VerificationMethod.CELL_PRODUCT, coi_label=data["coi_label"],
                    bag_intact=data["bag_intact"], now=timezone.now(),
                )  # fmt: skip
            else:
                prep = preparation_verify(
                    preparation=prep, user=acting_user(request), password=data["password"], request=request,
                    method=data["method"], measured=data["measured"], now=timezone.now(),
                )  # fmt: skip
            if prep.rejection_reason:
                messages.error(request, f"Rejected: {prep.rejection_reason}")
            else:
                messages.success(request, f"{prep.code} verified. Print the label and release it.")
            return redirect("orders:verify", pk=pk)
        except (Conflict, ValidationError, PermissionDenied) as error:
            status = form_refused(form, error)
    methods = [(v, label) for v, label in VerificationMethod.choices if v != VerificationMethod.CELL_PRODUCT]
    expected = {m: expected_check_value(prep, m) for m in VerificationMethod.values}
    context = {"prep": prep, "cell": cell, "cells": _cells(prep), "methods": methods, "expected": expected}
    return render(request, "orders/verify.html", context | {"form": form}, status=status)


@html_view("POST", perm="orders.prepare")
def release(request: HttpRequest, pk: int) -> HttpResponse:
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    with step_messages(request):
        preparation_release(preparation=prep, user=acting_user(request), now=timezone.now())
        messages.success(request, f"{prep.code} released to the ward.")
    return redirect("orders:verify", pk=pk)


@html_view("GET", "POST", perm="orders.administer")
def administer(request: HttpRequest, pk: int) -> HttpResponse:
    """Bedside: scan the wristband, then the bag label (a cell product also its chain-of-identity label),
    record the premedication where the drug needs it; any failed check stops with every reason. Then the end
    of the infusion."""
    prep = get_object_or_404(preparation_list(user=request.user), pk=pk)
    outcome: ScanOutcome | None = None
    form, status = posted_form(request, AdministerForm)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["step"] == "end":
                prep = preparation_end_administration(preparation=prep, user=acting_user(request), now=timezone.now())
                messages.success(request, f"End of infusion of {prep.code} recorded.")
                return redirect("orders:administer", pk=pk)
            outcome = preparation_administer(
                preparation=prep, wristband=data["wristband"], label=data["label"], coi_label=data["coi_label"],
                premedication_given_at=data["premedication_given_at"],
                premedication_note=data["premedication_note"], premedication_classes=data["premedication_classes"],
                user=acting_user(request), now=timezone.now(),
            )  # fmt: skip
            if outcome.matched:  # a state change: answered by a redirect, so reload or back never posts it again
                return redirect("orders:administer", pk=pk)
            status, prep = 409, outcome.preparation
        except (Conflict, ValidationError, PermissionDenied) as error:
            status = form_refused(form, error)
    drug = prep.dose.course.regimen.drug
    step = dose_step(prep.dose)
    classes = [PremedicationClass(c) for c in step.premedication_classes] if step else []
    context = {
        "prep": prep, "outcome": outcome, "drug": drug, "cells": _cells(prep), "form": form, "step": step,
        "step_classes": classes,
        "checked_classes": request.POST.getlist("premedication_classes") if request.method == "POST" else [],
    }  # fmt: skip
    return render(request, "orders/administer.html", context, status=status)


@html_view("GET", perm="orders.administer")
def ward_preparations(request: HttpRequest) -> HttpResponse:
    """Released preparations for the nurse's patients, and infusions running (to record their end)."""
    rows = ward_preparation_list(user=request.user)
    stays = ward_hospital_stays(user=request.user, now=timezone.now())
    bag_changes = ward_bag_changes(user=request.user)
    context = {"preparations": [(p, _cells(p)) for p in rows], "stays": stays, "bag_changes": bag_changes}
    return render(request, "orders/ward.html", context)


@html_view("GET", "POST", perm="orders.view_treatmentcourse", post_perm="orders.manage_course")
def course_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The oncologist's course page: doses, gate verdicts with their findings, decisions."""
    course = get_object_or_404(course_list(user=request.user), pk=pk)
    form, status = posted_form(request, DoseDecisionForm)
    if form.is_valid():
        data = form.cleaned_data
        dose = get_object_or_404(course_doses(user=request.user, course=course), pk=data["dose"])
        try:
            if data["decision"] == DecisionKind.COSIGNED:
                cosigner = user_named(data["cosigner"])
                dose_continue_cosigned(
                    dose=dose, user=acting_user(request), cosigner=cosigner, now=timezone.now(),
                    cosigner_password=data["cosigner_password"], reason=data["reason"], request=request,
                )  # fmt: skip
                messages.success(request, f"Dose {dose.number}: decision to continue recorded, co-signed.")
            else:
                dose_override(dose=dose, user=acting_user(request), now=timezone.now(), reason=data["reason"])
                messages.success(request, f"Dose {dose.number} overridden.")
            return redirect("orders:course", pk=pk)
        except (Conflict, ValidationError, PermissionDenied) as error:
            status = form_refused(form, error)
    doses = list(course_doses(user=request.user, course=course))
    now = timezone.now()
    gates = dose_gates(doses, now=now)
    steps, stays = dose_steps(doses), hospital_stays(doses, now=now)
    rows = [(d, gates[d.pk], steps.get(d.pk), stays.get(d.pk)) for d in doses]
    context = {"course": course, "doses": rows, "form": form, "plan": course_plan(user=request.user, course=course)}
    return render(request, "orders/course.html", context, status=status)


@html_view("POST", perm="orders.manage_course")
def course_stop_page(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_object_or_404(course_list(user=request.user), pk=pk)
    form = CourseStopForm(request.POST)
    with step_messages(request):
        if not form.is_valid():
            raise ValidationError(form.errors.as_data())
        course_stop(course=course, user=acting_user(request), now=timezone.now(), reason=form.cleaned_data["reason"])
        messages.success(request, "Course stopped; its planned doses are cancelled.")
    return redirect("orders:course", pk=pk)


@html_view("GET", "POST", perm="orders.manage_course")
def course_new(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Start a regimen, or a therapy plan (its first phase's regimens; the next phase starts by itself)."""
    patient = get_object_or_404(patient_list(user=request.user), pk=patient_pk)
    regimens, plans = active_regimens(), therapy_plan_list()
    form, status = posted_form(request, CourseForm)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["plan"] is not None:
                plan = plans.filter(pk=data["plan"]).first()
                if plan is None:
                    raise ValidationError({"plan": "Choose a plan."})
                treatment_plan = therapy_plan_start(
                    patient=patient, plan=plan, starts_at=data["starts_at"], user=acting_user(request),
                    now=timezone.now(), no_round_up=data["no_round_up"],
                )  # fmt: skip
                first = treatment_plan.courses.order_by("id").first()
                return redirect("orders:course", pk=first.pk) if first else redirect("orders:worklist")
            regimen = regimens.filter(pk=data["regimen"]).first()
            if regimen is None:
                raise ValidationError({"regimen": "Choose a regimen."})
            course = course_start(
                patient=patient, regimen=regimen, starts_at=data["starts_at"],
                user=acting_user(request), now=timezone.now(),
                chain_of_identity=data["chain_of_identity"],
                no_round_up=data["no_round_up"], bag_hours=data["bag_hours"],
            )  # fmt: skip
            return redirect("orders:course", pk=course.pk)
        except (Conflict, ValidationError) as error:
            status = form_refused(form, error)
    context = {
        "patient": patient, "regimens": regimens, "plans": plans, "tomorrow": timezone.now() + timedelta(days=1),
        "form": form,
    }  # fmt: skip
    return render(request, "orders/course_new.html", context, status=status)


@html_view("GET", "POST", perm="orders.prepare", post_perm="orders.view_preparation")
def exposures(request: HttpRequest) -> HttpResponse:
    """Accidental exposures to hazardous or genetically modified products: anyone handling them reports one
    (who, when, what, the action taken); pharmacy sees the list, newest first."""
    form, status = posted_form(request, ExposureForm)
    if form.is_valid():
        data = form.cleaned_data
        try:
            drug = exposure_drugs().filter(pk=data["drug"]).first()
            if drug is None:
                raise ValidationError({"drug": "Choose a hazardous or genetically modified product."})
            exposure_report_record(
                drug=drug, person=data["person"] or "", occurred_at=data["occurred_at"], kind=data["kind"],
                what=data["what"] or "", action_taken=data["action_taken"] or "", user=acting_user(request),
                now=timezone.now(),
            )  # fmt: skip
            messages.success(request, "Exposure reported; pharmacy has it on this list.")
            return redirect("orders:exposures")
        except (Conflict, ValidationError, PermissionDenied) as error:
            status = form_refused(form, error)
    page = Paginator(exposure_report_list(), 50).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "drugs": exposure_drugs(), "kinds": ExposureKind.choices}
    return render(request, "orders/exposures.html", context, status=status)


@html_view("GET", "POST", perm="orders.view_dose", post_perm="orders.administer")
def tolerance_check(request: HttpRequest, pk: int) -> HttpResponse:
    """The bedside tolerance check before a dose that needs one (aldesleukin after TIL), with the earlier checks of
    the dose; the verdict is computed, never typed."""
    dose = get_object_or_404(dose_list(user=request.user), pk=pk)
    form, status = posted_form(request, ToleranceCheckForm)
    if form.is_valid():
        try:
            check = tolerance_check_record(
                dose=dose, user=acting_user(request), now=timezone.now(), **form.cleaned_data
            )
            level = messages.success if check.verdict == "tolerated" else messages.error
            level(request, f"Tolerance check recorded: {check.get_verdict_display()}.")
            return redirect("orders:tolerance-check", pk=pk)
        except ValidationError as error:
            status = form_refused(form, error)
    checks = dose.tolerance_checks.select_related("checked_by")[:10]
    preparation = dose.preparations.filter(status=PreparationStatus.RELEASED).first()
    context = {"dose": dose, "form": form, "checks": checks, "preparation": preparation}
    return render(request, "orders/tolerance_check.html", context, status=status)
