"""Products that are neither compounded in mg nor frozen CAR-T bags (docs/clinical-sources.md §11).

- Fresh autologous cell products (sipuleucel-T): each dose is made from its own leukapheresis about 3 days
  earlier, so each bag carries its own chain-of-identity ID (recorded at collection on the dose's preparation).
  The bag is not frozen (never thawed): at receipt the technician scans the bag and records the certificate's
  cells and the product's expiry time; the infusion must begin before it (checked at verification and at the
  bedside; no expiry recorded: refused).
- Oncolytic viruses (talimogene laherparepvec): the preparer first confirms they are not excluded from handling
  it (pregnant or immunocompromised staff, label §5.1); the frozen vial is thawed and the visit's volume is
  planned from the lesions' sizes (orders.lesions); accidental exposures are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.times import after_elapsed, duration_text
from orders import dosing, lesions
from orders.cells import certificate_check
from orders.choices import CoiStep, ComponentKind, ExposureKind, PreparationStatus, Storage
from orders.models import Drug, ExposureReport, IdentityCheck, Preparation, PreparationComponent
from orders.services._common import _hhmm, _locked
from orders.services.errors import OrderConflict
from orders.services.identity import ScanOutcome

__all__ = [
    "exposure_report_record",
    "fresh_product_collect",
    "fresh_product_receive",
    "preparer_exclusion_confirm",
    "virus_thaw",
]

COLLECTION_BEFORE_INFUSION = timedelta(days=7)  # a bag is made from a leukapheresis days, not weeks, before
MAX_PRODUCT_SHELF = timedelta(days=7)  # an expiry further ahead than this is a typing mistake


def _fresh(prep: Preparation) -> Drug:
    drug = prep.dose.course.regimen.drug
    if not drug.fresh_product:
        raise OrderConflict(f"{drug} is not a fresh cell product: its bags share the course's chain of identity.")
    return drug


@transaction.atomic
def fresh_product_collect(
    *, preparation: Preparation, bag_identity: str, collected_at: datetime, user: User, now: datetime
) -> Preparation:
    """The leukapheresis for this dose: its bag's own chain-of-identity ID (the COLLECTION hand-off of this
    preparation). Recorded once per preparation; a wasted bag's new order needs a new collection."""
    coi = bag_identity.strip()
    if not coi or len(coi) > 40:
        raise ValidationError({"bag_identity": "The chain-of-identity ID of this collection, at most 40 characters."})
    if collected_at.tzinfo is None or not now - COLLECTION_BEFORE_INFUSION <= collected_at <= now:
        raise ValidationError({"collected_at": "The leukapheresis lies within the last 7 days, not in the future."})
    prep = _locked(preparation, "recalculate")  # ordered (or rejected): before any receipt
    _fresh(prep)
    if prep.bag_identity:
        raise OrderConflict(f"The collection of this dose is already recorded ({prep.bag_identity}).")
    clash = Preparation.objects.filter(bag_identity=coi).exclude(pk=prep.pk).exists()
    if clash:
        raise ValidationError({"bag_identity": f"{coi} is already the identity of another bag."})
    prep.bag_identity, prep.collected_at = coi, collected_at
    prep.save(update_fields=["bag_identity", "collected_at"])
    IdentityCheck.objects.create(
        preparation=prep, course=prep.dose.course, step=CoiStep.COLLECTION, at=collected_at, by=user,
        scanned_label=coi, matched=True, note=f"Leukapheresis for dose {prep.dose.number}",
    )  # fmt: skip
    return prep


@transaction.atomic
def fresh_product_receive(
    *,
    preparation: Preparation,
    coi_scanned: str,
    coa_cells: int,
    coa_bag_volume_ml: Decimal,
    coa_lot: str,
    expires_at: datetime | None,
    user: User,
    now: datetime,
) -> ScanOutcome:
    """Receipt of a fresh bag by the technician who started the preparation: the bag's label must carry this
    dose's own chain-of-identity ID (a mismatch is recorded and nothing else is kept: 409); the certificate's
    cells must meet the order's minimum; the product's expiry time is recorded and must lie ahead. The bag then
    waits for verification (it is not thawed: never frozen)."""
    if expires_at is None:
        raise ValidationError({"expires_at": "Record the product's expiry date and time from its label."})
    if expires_at.tzinfo is None:
        raise ValidationError({"expires_at": "Give the expiry time with its time zone."})
    certificate_check(coa_cells=coa_cells, coa_bag_volume_ml=coa_bag_volume_ml, coa_lot=coa_lot,
                      coi_scanned=coi_scanned)  # fmt: skip
    prep = _locked(preparation, "record")
    _fresh(prep)
    if prep.prepared_by_id != user.pk:
        raise PermissionDenied("Only the technician who started this preparation can record its receipt.")
    if not prep.bag_identity:
        raise OrderConflict("Record this dose's leukapheresis (its chain-of-identity ID) first.")
    if expires_at <= now:
        raise ValidationError({"expires_at": f"The product expired at {_hhmm(expires_at)}: do not use it."})
    if expires_at > now + MAX_PRODUCT_SHELF:
        raise ValidationError({"expires_at": "The expiry lies more than 7 days ahead: check the label."})
    scanned = coi_scanned.strip()
    matched = scanned == prep.bag_identity
    check = IdentityCheck.objects.create(
        preparation=prep, course=prep.dose.course, step=CoiStep.RECEIPT, at=now, by=user, scanned_label=scanned[:40],
        matched=matched,
        note="" if matched else f"STOP: the bag's ID {scanned[:40]} is not this dose's ({prep.bag_identity}).",
    )  # fmt: skip
    if not matched:
        return ScanOutcome(prep, check)
    dose = dosing.CellDose(target_cells=prep.cells_target, min_cells=prep.cells_min, max_cells=prep.cells_max, note="")
    problem = dosing.check_cell_product(dose=dose, certified_cells=coa_cells)
    if problem:
        raise ValidationError({"coa_cells": f"{problem[0].upper()}{problem[1:]}: do not accept this bag."})
    prep.coa_cells, prep.coa_bag_volume_ml, prep.coa_lot = coa_cells, coa_bag_volume_ml, coa_lot.strip()
    prep.coa_recorded_by, prep.coa_recorded_at, prep.product_expires_at = user, now, expires_at
    prep.status, prep.ended_at, prep.storage, prep.category = (
        PreparationStatus.AWAITING_VERIFICATION,
        now,
        Storage.ROOM,
        "",
    )
    prep.beyond_use_at, prep.infusion_end_by = expires_at, None
    prep.beyond_use_note = f"Fresh cell product: the infusion must begin before its expiry {_hhmm(expires_at)}"
    prep.save()
    return ScanOutcome(prep, check)


@transaction.atomic
def preparer_exclusion_confirm(
    *, preparation: Preparation, user: User, now: datetime, not_pregnant: bool, not_immunocompromised: bool
) -> Preparation:
    """The preparer confirms, before starting, that they are not excluded from handling the product (T-VEC:
    staff who are pregnant or immunocompromised must not prepare or administer it). Both answers are needed."""
    if not user.has_perm("orders.prepare"):
        raise PermissionDenied("Only a technician who prepares doses confirms this.")
    prep = _locked(preparation, "start")
    drug = prep.dose.course.regimen.drug
    if not drug.preparer_exclusions:
        raise ValidationError({"preparation": f"{drug} has no preparer exclusions to confirm."})
    errors = {}
    if not_pregnant is not True:
        errors["not_pregnant"] = "Confirm you are not pregnant; otherwise a colleague prepares this dose."
    if not_immunocompromised is not True:
        errors["not_immunocompromised"] = "Confirm you are not immunocompromised; otherwise a colleague prepares it."
    if errors:
        raise ValidationError(errors)
    prep.exclusion_confirmed_by, prep.exclusion_confirmed_at = user, now
    prep.save(update_fields=["exclusion_confirmed_by", "exclusion_confirmed_at"])
    return prep


def exclusion_problem(prep: Preparation, user: User) -> str | None:
    """Fail closed: a drug with preparer exclusions starts only after this user confirmed them."""
    drug = prep.dose.course.regimen.drug
    if drug.preparer_exclusions and prep.exclusion_confirmed_by_id != user.pk:
        return f"Confirm first that you are not excluded from preparing {drug} ({drug.preparer_exclusions})."
    return None


@transaction.atomic
def virus_thaw(
    *,
    preparation: Preparation,
    lesions_cm: Sequence[object],
    vial_lot: str,
    vial_expiry: date,
    user: User,
    now: datetime,
    thawed_at: datetime | None = None,
) -> Preparation:
    """The oncolytic virus' "record" step: the vial of this dose's concentration thawed (the clock starts), and
    the visit's volume planned from the lesions, largest first, at most the regimen's volume per visit."""
    prep = _locked(preparation, "record")
    drug = prep.dose.course.regimen.drug
    if not drug.intralesional:
        raise OrderConflict(f"{drug} is not injected into lesions.")
    if prep.prepared_by_id != user.pk:
        raise PermissionDenied("Only the technician who started this preparation can record its thaw.")
    if prep.concentration_pfu_per_ml is None or prep.max_volume_ml is None:
        raise OrderConflict("The order has no concentration or volume per visit: recalculate it.")
    limit = drug.thaw_to_infusion_limit
    if limit is None:
        raise OrderConflict(f"The catalogue gives no limit after thawing for {drug}: it cannot be thawed.")
    if not vial_lot.strip() or len(vial_lot.strip()) > 40:
        raise ValidationError({"vial_lot": "The vial's lot number, at most 40 characters."})
    at = thawed_at or now
    started = prep.started_at or now
    if at.tzinfo is None or not started <= at <= now:
        raise ValidationError({"thawed_at": f"The thaw lies between the start ({_hhmm(started)}) and now."})
    if vial_expiry < at.date():
        raise ValidationError({"vial_expiry": f"The vial expired on {vial_expiry:%Y-%m-%d}."})
    try:
        plan = lesions.injection_plan(lesions_cm, max_total_ml=prep.max_volume_ml)
    except lesions.LesionError as error:
        raise ValidationError({error.field: error.reason}) from None
    PreparationComponent.objects.create(
        preparation=prep, kind=ComponentKind.VIAL,
        product=f"{drug.name} {lesions.format_pfu(prep.concentration_pfu_per_ml)} PFU/mL"[:80], lot=vial_lot.strip(),
        expiry=vial_expiry, volume_ml=plan.total_ml.quantize(Decimal("0.1")), count=1,
    )  # fmt: skip
    prep.lesion_plan, prep.volume_ml_planned = plan.as_record(), plan.total_ml
    prep.status, prep.punctured_at, prep.ended_at = PreparationStatus.AWAITING_VERIFICATION, at, now
    prep.storage, prep.category = Storage.ROOM, ""
    prep.beyond_use_at = prep.infusion_end_by = after_elapsed(at, limit)
    prep.beyond_use_note = f"Thawed {_hhmm(at)}: inject within {duration_text(limit)} of the thaw (do not refreeze)"
    prep.save()
    return prep


MAX_TEXT = 2000


@transaction.atomic
def exposure_report_record(
    *,
    drug: Drug,
    person: str,
    occurred_at: datetime,
    kind: str,
    what: str,
    action_taken: str,
    user: User,
    now: datetime,
    preparation: Preparation | None = None,
) -> ExposureReport:
    """An accidental exposure (who, when, what, the action taken), kept as written for the pharmacist."""
    errors = {}
    if not person.strip() or len(person.strip()) > 120:
        errors["person"] = "Who was exposed, at most 120 characters."
    if occurred_at.tzinfo is None or occurred_at > now:
        errors["occurred_at"] = "When it happened: not in the future, with its time zone."
    if kind not in ExposureKind.values:
        errors["kind"] = f"Choose one of {', '.join(ExposureKind.values)}."
    if not what.strip() or len(what) > MAX_TEXT:
        errors["what"] = "What happened (at most 2000 characters)."
    if not action_taken.strip() or len(action_taken) > MAX_TEXT:
        errors["action_taken"] = "What was done about it (at most 2000 characters)."
    if preparation is not None and preparation.dose.course.regimen.drug_id != drug.pk:
        errors["preparation"] = "This preparation is not of this drug."
    if errors:
        raise ValidationError(errors)
    if not (drug.intralesional or drug.biosafety_level or drug.hazardous):
        raise ValidationError({"drug": f"{drug} is not a hazardous or genetically modified product."})
    return ExposureReport.objects.create(
        preparation=preparation, drug=drug, person=person.strip(), occurred_at=occurred_at, kind=kind,
        what=what.strip(), action_taken=action_taken.strip(), reported_by=user, reported_at=now,
    )  # fmt: skip
