"""The preparation lifecycle (recalculate, start, record, verify, release, end, waste, expire): every
step locks the order and may only start from the states it allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.services import confirm_password
from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.services import AlertCondition, alerts_raise
from orders import bags, bud
from orders.choices import (
    ComponentKind,
    CourseStatus,
    DoseStatus,
    GateCheckPurpose,
    PreparationStatus,
    VerificationMethod,
)
from orders.gate import dose_gate
from orders.models import Preparation, PreparationComponent, TreatmentCourse
from orders.selectors import calculate_for, expected_check_value, use_by
from orders.services._common import _apply, _hhmm, _local, _locked, _order_preparation
from orders.services.doses import gate_record
from orders.services.errors import DoseBlocked, OrderConflict
from orders.services.identity import fresh_product_problems
from orders.services.products import exclusion_problem
from patients.models import Patient

PREPARER_MAY_NOT_VERIFY = "You prepared this dose: another technician must verify it."


def _weight_changed(course: TreatmentCourse, patient: Patient) -> bool:
    start = course.weight_kg_at_start
    return abs(patient.weight_kg - start) / start * 100 >= Decimal(str(settings.RECALCULATE_WEIGHT_CHANGE_PERCENT))


#: Preparations whose calculation can still change: not yet made.
OPEN_PREPARATION = (PreparationStatus.ORDERED, PreparationStatus.REJECTED)


def preparations_flag_weight_change(*, patient: Patient, now: datetime) -> list[int]:
    """A hook of a patient's weight change (settings.PATIENT_WEIGHT_CHANGED_HOOKS, e.g. an ADT A08): flags the
    patient's open preparations on active courses for recalculation by the same 10 % rule `preparation_start`
    applies. Runs in the caller's transaction; returns the flagged preparation ids."""
    open_preps = (
        Preparation.objects.select_for_update(of=("self",))
        .filter(dose__course__patient=patient, dose__course__status=CourseStatus.ACTIVE)
        .filter(status__in=OPEN_PREPARATION, recalculation_needed=False)
        .select_related("dose__course")
    )
    flagged = [prep.pk for prep in open_preps if _weight_changed(prep.dose.course, patient)]
    Preparation.objects.filter(pk__in=flagged).update(recalculation_needed=True)
    return flagged


@transaction.atomic
def preparation_recalculate(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    """Redo the dose calculation with the patient's current weight and height."""
    prep = _locked(preparation, "recalculate")
    course = prep.dose.course
    _apply(prep, calculate_for(prep.dose, course.patient))
    prep.recalculation_needed = False
    prep.save()
    # The new weight is the reference for the 10 % check from now on.
    TreatmentCourse.objects.filter(pk=course.pk).update(
        weight_kg_at_start=course.patient.weight_kg, height_cm_at_start=course.patient.height_cm
    )
    return prep


def preparation_start(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    """A technician starts preparing: only a cleared (or overridden) dose, with an up-to-date calculation.
    A weight change of 10 % or more since the course started flags the order (the flag is kept) and refuses."""
    with transaction.atomic():
        prep = _locked(preparation, "start")
        dose, course = prep.dose, prep.dose.course
        if course.status != CourseStatus.ACTIVE or dose.status != DoseStatus.PLANNED:
            raise OrderConflict("The dose is not planned on an active course.")
        gate = dose_gate(dose, now=now)
        if not gate.is_open:
            raise DoseBlocked(gate.verdict, [f.text for f in gate.open_findings])
        excluded = exclusion_problem(prep, user)
        if excluded:
            raise OrderConflict(excluded)
        if not prep.recalculation_needed and _weight_changed(course, course.patient):
            prep.recalculation_needed = True
            prep.save(update_fields=["recalculation_needed"])
        if not prep.recalculation_needed:
            prep.status, prep.prepared_by, prep.started_at = PreparationStatus.IN_PREPARATION, user, now
            prep.verified_by, prep.verified_at, prep.rejection_reason = None, None, ""
            fields = ["status", "prepared_by", "started_at", "verified_by", "verified_at", "rejection_reason"]
            prep.save(update_fields=fields)
            gate_record(dose=dose, gate=gate, user=user, now=now, purpose=GateCheckPurpose.START)
            return prep
    raise OrderConflict("The patient's weight changed by 10 % or more since the course started: recalculate first.")


@dataclass(frozen=True)
class ComponentInput:
    kind: ComponentKind
    product: str
    lot: str
    expiry: date
    volume_ml: Decimal
    count: int = 1


def _choice(enum: type[bud.CompoundingCategory] | type[bud.Storage], value: str, field_name: str) -> str:
    try:
        return str(enum(value))
    except ValueError:
        raise ValidationError({field_name: f"Choose one of {', '.join(e.value for e in enum)}."}) from None


@transaction.atomic
def preparation_record(
    *,
    preparation: Preparation,
    components: Sequence[ComponentInput],
    category: str,
    storage: str,
    user: User,
    now: datetime,
    punctured_at: datetime | None = None,
    closed_system_device: str = "",
    bag_volume_ml: Decimal | None = None,
) -> Preparation:
    """Record what went into the bag. Both beyond-use clocks (USP <797> "start administration by" and, where
    the label's in-use time includes the infusion, "end the infusion by") start at the first vial puncture or
    dilution (`punctured_at`, by default the start of preparation), never at recording. An expired vial, or
    one expiring before the later clock, is refused. A cell product is received and thawed instead. A bag of a
    continuous infusion (blinatumomab) has no calculated volume: the preparer enters the bag's final volume from
    the label's table (`bag_volume_ml`, what the verifier measures), and a bag that could not run its hours within
    the label's in-use time even if hung at once is refused (orders.bags)."""
    prep = _locked(preparation, "record")
    if prep.prepared_by_id != user.pk:
        raise PermissionDenied("Only the technician who started this preparation can record it.")
    drug = prep.dose.course.regimen.drug
    if drug.cell_therapy:
        raise OrderConflict(
            f"{drug} is a cell product: record its receipt (certificate of analysis) and thaw, not vials."
        )
    if drug.intralesional:
        raise OrderConflict(f"{drug} is thawed and planned by lesion size, not recorded in mg.")
    bag_hours = prep.dose.bag_hours
    if bag_hours is None and prep.volume_to_draw_ml is None:
        raise OrderConflict("The order has no volume to draw: recalculate it.")
    if bag_hours is None and bag_volume_ml is not None:
        raise ValidationError({"bag_volume_ml": "Only a bag of a continuous infusion takes an entered volume."})
    if bag_hours is not None and (bag_volume_ml is None or bag_volume_ml <= 0):
        raise ValidationError({"bag_volume_ml": "Enter the bag's final volume (mL) from the label's table."})
    device = closed_system_device.strip()
    if drug.hazardous and not device:
        raise ValidationError(
            {"closed_system_device": f"{drug} is a hazardous drug (USP <800>): name the closed-system transfer "
                                     "device used."}
        )  # fmt: skip
    if len(device) > 80:
        raise ValidationError({"closed_system_device": "At most 80 characters."})
    started = prep.started_at or now
    punctured = punctured_at or started
    if punctured_at is not None and punctured_at.tzinfo is None:
        raise ValidationError({"punctured_at": "Give the time with its time zone."})
    if not started <= punctured <= now:
        raise ValidationError(
            {"punctured_at": f"The first puncture lies between the start of preparation ({_hhmm(started)}) and now."}
        )
    use_by = bud.beyond_use(
        prepared_at=punctured, category=bud.CompoundingCategory(_choice(bud.CompoundingCategory, category, "category")),
        storage=bud.Storage(_choice(bud.Storage, storage, "storage")), stability_room=drug.stability_room,
        stability_refrigerated=drug.stability_refrigerated, stability_includes_infusion=drug.in_use_includes_infusion,
    )  # fmt: skip
    if bag_hours is not None:
        problem = bags.bag_record_problem(use_by=use_by, prepared_at=_local(punctured), hours=bag_hours)
        if problem:
            raise ValidationError({"storage": f"A {bag_hours} h bag: {problem}."})
    last_use = max(use_by.at, use_by.infusion_end_by or use_by.at)
    vials = [c for c in components if c.kind == ComponentKind.VIAL]
    if not vials:
        raise ValidationError({"components": "Record at least one drug vial with its lot and expiry."})
    for index, c in enumerate(components):
        where = f"components[{index}]."
        if not c.lot.strip():
            raise ValidationError({f"{where}lot": "The lot number is required."})
        if c.expiry < now.date():
            raise ValidationError({f"{where}expiry": f"{c.product} lot {c.lot} expired on {c.expiry:%Y-%m-%d}."})
        if c.expiry < _local(last_use).date():
            raise ValidationError(
                {f"{where}expiry": f"{c.product} lot {c.lot} expires {c.expiry:%Y-%m-%d}, before the beyond-use time."}
            )
        if c.kind == ComponentKind.VIAL and drug.name.lower() not in c.product.lower():
            raise ValidationError({f"{where}product": f"{c.product!r} is not {drug.name}."})
        if (
            c.kind == ComponentKind.DILUENT
            and drug.allowed_diluents
            and not any(d.lower() in c.product.lower() for d in drug.allowed_diluents)
        ):
            raise ValidationError(
                {f"{where}product": f"{drug.name} may be diluted in {', '.join(drug.allowed_diluents)} only."}
            )
    drawn = sum((c.volume_ml for c in vials), Decimal(0))
    if bag_hours is not None:
        problem = (
            "the bag has no dose" if prep.dose_mg is None
            else bags.bag_drug_problem(dose_mg=prep.dose_mg, drawn_ml=drawn, strength_mg_per_ml=drug.strength_mg_per_ml)
        )  # fmt: skip
        if problem:
            raise ValidationError({"components": f"Bag {prep.dose.number}: {problem}."})
    if prep.volume_to_draw_ml is not None and abs(drawn - prep.volume_to_draw_ml) > prep.volume_to_draw_ml * Decimal(
        "0.05"
    ):
        raise ValidationError({"components": f"Drawn {drawn} mL; the order needs {prep.volume_to_draw_ml} mL."})
    PreparationComponent.objects.bulk_create(
        PreparationComponent(
            preparation=prep,
            kind=c.kind,
            product=c.product.strip(),
            lot=c.lot.strip(),
            expiry=c.expiry,
            volume_ml=c.volume_ml,
            count=c.count,
        )
        for c in components
    )
    prep.status, prep.ended_at, prep.punctured_at = PreparationStatus.AWAITING_VERIFICATION, now, punctured
    prep.category, prep.storage, prep.closed_system_device = category, storage, device
    prep.beyond_use_at, prep.infusion_end_by, prep.beyond_use_note = (
        use_by.at,
        use_by.infusion_end_by,
        use_by.note[:200],
    )
    fields = ["status", "ended_at", "punctured_at", "category", "storage", "beyond_use_at", "infusion_end_by",
              "beyond_use_note", "closed_system_device"]  # fmt: skip
    if bag_hours is not None:
        prep.final_volume_ml = bag_volume_ml
        fields.append("final_volume_ml")
    prep.save(update_fields=fields)
    return prep


def _cell_verification_problems(prep: Preparation, coi_label: str, bag_intact: bool, now: datetime) -> list[str]:
    course = prep.dose.course
    if course.regimen.drug.fresh_product:  # its own bag ID and expiry time, never thawed
        problems = fresh_product_problems(prep, coi_label, now)
        return problems + ([] if bag_intact else ["the bag is not intact: do not infuse"])
    problems = []
    if coi_label.strip() != course.chain_of_identity:
        problems.append(
            f"the bag's chain-of-identity label {coi_label.strip()!r} does not match this patient's product"
        )
    if not bag_intact:
        problems.append("the bag is not intact: do not infuse")
    if prep.beyond_use_at is None:
        problems.append("no thaw is recorded")
    elif now > prep.beyond_use_at:
        problems.append(
            f"thawed at {_hhmm(prep.ended_at or prep.beyond_use_at)}: infuse-by {_hhmm(prep.beyond_use_at)} has passed"
        )
    return problems


def preparation_verify(
    *,
    preparation: Preparation,
    user: User,
    password: str,
    request: HttpRequest | Request,
    method: str,
    now: datetime,
    measured: Decimal | None = None,
    coi_label: str = "",
    bag_intact: bool | None = None,
) -> Preparation:
    """Independent check by another technician who re-enters their password. A compounded dose is weighed or
    measured: outside the tolerance (default ±5 %) it is rejected with the reason. A cell product's check is the
    bag's chain-of-identity label, its integrity and the time since thaw: any failure rejects it. A wrong
    password counts toward the technician's login lock-out (accounts.services.confirm_password)."""
    if preparation.prepared_by_id == user.pk:
        raise PermissionDenied(PREPARER_MAY_NOT_VERIFY)
    # Before the verification's transaction: a refused signature writes nothing but its counted failure.
    confirm_password(
        request=request, user=user, password=password,
        refusal="Password does not match: re-enter your own password to sign the verification.",
    )  # fmt: skip
    return _verify(
        preparation=preparation, user=user, method=method, now=now, measured=measured, coi_label=coi_label,
        bag_intact=bag_intact,
    )  # fmt: skip


@transaction.atomic
def _verify(
    *,
    preparation: Preparation,
    user: User,
    method: str,
    now: datetime,
    measured: Decimal | None,
    coi_label: str,
    bag_intact: bool | None,
) -> Preparation:
    prep = _locked(preparation, "verify")
    if prep.prepared_by_id == user.pk:
        raise PermissionDenied(PREPARER_MAY_NOT_VERIFY)
    if prep.verified_at is not None:
        raise OrderConflict("This preparation is already verified.")
    if method not in VerificationMethod.values:
        raise ValidationError({"method": f"Choose one of {', '.join(VerificationMethod.values)}."})
    cell = prep.dose.course.regimen.drug.cell_therapy
    if cell != (method == VerificationMethod.CELL_PRODUCT):
        raise ValidationError(
            {"method": "A cell product is verified by its bag (cell_product)." if cell
             else "Weigh or measure a compounded dose (gravimetric or volumetric)."}
        )  # fmt: skip
    prep.verification_method, prep.verified_by, prep.verified_at = method, user, now
    if cell:
        if not coi_label.strip():
            raise ValidationError({"coi_label": "Scan the bag's chain-of-identity label."})
        if bag_intact is None:
            raise ValidationError({"bag_intact": "Confirm whether the bag is intact."})
        problems = _cell_verification_problems(prep, coi_label, bag_intact, now)
        prep.bag_intact, prep.expected_value, prep.measured_value = bag_intact, None, None
        if problems:
            prep.status = PreparationStatus.REJECTED
            prep.rejection_reason = "Cell product check failed: " + "; ".join(problems) + "."
        prep.save()
        return prep
    if measured is None:
        raise ValidationError({"measured": "Enter the measured value."})
    expected = expected_check_value(prep, method)
    if not expected:
        raise OrderConflict("The order has no volume to check against: recalculate it.")
    deviation = abs(measured - expected) / expected * 100
    prep.expected_value, prep.measured_value = expected, measured
    tolerance = Decimal(str(settings.PREPARATION_TOLERANCE_PERCENT))
    if deviation > tolerance:
        prep.status = PreparationStatus.REJECTED
        unit = "g" if method == VerificationMethod.GRAVIMETRIC else "mL"
        prep.rejection_reason = (
            f"{method.title()} check failed: measured {measured} {unit}, expected {expected} {unit} "
            f"({deviation:.1f} % off, tolerance ±{tolerance} %)."
        )
    prep.save()
    return prep


@transaction.atomic
def preparation_release(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    prep = _locked(preparation, "release")
    if prep.verified_at is None:
        raise OrderConflict("An independent verification must pass before release.")
    drug = prep.dose.course.regimen.drug
    if drug.hazardous and not prep.closed_system_device:
        raise OrderConflict(
            f"{drug} is a hazardous drug (USP <800>): no closed-system transfer device is recorded, so it is "
            "not released."
        )
    prep.status, prep.released_by, prep.released_at = PreparationStatus.RELEASED, user, now
    prep.save(update_fields=["status", "released_by", "released_at"])
    return prep


@transaction.atomic
def preparation_end_administration(*, preparation: Preparation, user: User, now: datetime) -> Preparation:
    """The end of the infusion: once, and never before its start (a clock that jumped back, a wrong time)."""
    prep = _locked(preparation, "end_administration")
    if prep.administration_ended_at is not None:
        raise OrderConflict("The infusion end is already recorded.")
    started = prep.administration_started_at
    if started is None or now < started:
        raise OrderConflict(
            "The infusion end cannot come before its start"
            + (f" ({_hhmm(started)})." if started is not None else ": no start is recorded.")
        )
    prep.administration_ended_at, prep.closed_at = now, now
    prep.save(update_fields=["administration_ended_at", "closed_at"])
    return prep


@transaction.atomic
def preparation_waste(*, preparation: Preparation, user: User, now: datetime, reason: str) -> Preparation:
    """Waste with a reason; the dose gets a fresh order (the wasted one stays on record)."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the preparation is wasted."})
    prep = _locked(preparation, "waste")
    prep.status, prep.wasted_reason, prep.closed_at = PreparationStatus.WASTED, reason.strip(), now
    prep.save(update_fields=["status", "wasted_reason", "closed_at"])
    if prep.dose.status == DoseStatus.PLANNED and prep.dose.course.status == CourseStatus.ACTIVE:
        _order_preparation(prep.dose, now)
    return prep


def preparations_expire(*, now: datetime) -> list[int]:
    """Released preparations past either beyond-use clock expire; the lab is alerted once for each."""
    with transaction.atomic():
        released = Preparation.objects.select_for_update(skip_locked=True).filter(status=PreparationStatus.RELEASED)
        expired = list(
            (released.filter(beyond_use_at__lte=now) | released.filter(infusion_end_by__lte=now))
            .select_related("dose__course__regimen__drug", "dose__course")
            .order_by("id")
        )
        for prep in expired:
            prep.status, prep.closed_at = PreparationStatus.EXPIRED, now
            prep.save(update_fields=["status", "closed_at"])
        alerts_raise(
            kind=AlertKind.PREPARATION_EXPIRED,
            severity=AlertSeverity.HIGH,
            subject_model=Preparation,
            conditions=[
                AlertCondition(
                    p.pk,
                    p.dose.course.patient_id,
                    f"{p.code} {p.dose.course.regimen.drug} expired unused (BUD {_local(use_by(p) or now):%H:%M})",
                )
                for p in expired
            ],
            now=now,
            audience=AlertAudience.LAB,
        )
        for prep in expired:
            if prep.dose.status == DoseStatus.PLANNED:
                _order_preparation(prep.dose, now)
    return [p.pk for p in expired]
