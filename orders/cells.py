"""Cell products (CAR-T): receipt with the certificate of analysis, thaw, and rescue medication on hand.

A cell product is not compounded: the technician records its receipt (the certificate of analysis gives the
viable cells and the bag volume; no mg, no volume to draw) and its thaw instead of vials, so the preparation's
"start -> record" becomes "start -> receive -> thaw" (receipt may come before the start). Both are hand-offs of
the chain of identity, recorded on the preparation. The thaw starts the clock: the infusion must END within the
drug's thaw-to-infusion limit (stored as both beyond-use clocks), checked at verification and at the bedside.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from core.times import after_elapsed, duration_text
from orders import dosing
from orders.choices import CoiStep, CourseStatus, PreparationStatus, Storage
from orders.models import Preparation, RescueMedicationCheck, TreatmentCourse
from orders.services._common import _hhmm, _locked
from orders.services.errors import OrderConflict
from orders.services.identity import ScanOutcome, chain_of_identity_handoff

__all__ = ["cell_product_receive", "cell_product_thaw", "rescue_medication_confirm"]

MAX_BAG_ML = Decimal(1000)
MAX_RESCUE_DOSES = 50


def _cell_preparation(preparation: Preparation) -> Preparation:
    prep = (
        Preparation.objects.select_for_update(of=("self",))
        .select_related("dose__course__regimen__drug", "dose__course__patient")
        .get(pk=preparation.pk)
    )
    drug = prep.dose.course.regimen.drug
    if not drug.cell_therapy:
        raise OrderConflict(f"{drug} is not a cell product: record its vials.")
    if drug.fresh_product:
        raise OrderConflict(f"{drug} is a fresh product: receive its bag with its own ID and expiry time.")
    return prep


def certificate_check(*, coa_cells: int, coa_bag_volume_ml: Decimal, coa_lot: str, coi_scanned: str) -> None:
    """What a cell product's receipt records from its certificate of analysis and bag label (a frozen CAR-T bag
    or a fresh sipuleucel-T bag), refused naming the field before anything is read or written."""
    if isinstance(coa_cells, bool) or not isinstance(coa_cells, int) or coa_cells <= 0:
        raise ValidationError({"coa_cells": "The certificate's viable cells: a whole number above 0."})
    if not isinstance(coa_bag_volume_ml, Decimal) or not coa_bag_volume_ml.is_finite():
        raise ValidationError({"coa_bag_volume_ml": "The certificate's bag volume in mL."})
    if not Decimal(0) < coa_bag_volume_ml <= MAX_BAG_ML:
        raise ValidationError({"coa_bag_volume_ml": f"The bag volume lies above 0 and at most {MAX_BAG_ML} mL."})
    if not coa_lot.strip() or len(coa_lot.strip()) > 60:
        raise ValidationError({"coa_lot": "The lot (batch) number on the certificate, at most 60 characters."})
    if not coi_scanned.strip():
        raise ValidationError({"coi_scanned": "Scan the chain-of-identity label of the bag or cassette."})


@transaction.atomic
def cell_product_receive(
    *,
    preparation: Preparation,
    coi_scanned: str,
    coa_cells: int,
    coa_bag_volume_ml: Decimal,
    coa_lot: str,
    user: User,
    now: datetime,
) -> ScanOutcome:
    """Receive the product: the RECEIPT hand-off (after collection and shipment) with the certificate of
    analysis. A scanned chain-of-identity ID that does not match is recorded as a mismatch and nothing else
    is kept (409). The certified viable cells must lie in the order's range (else nothing is written)."""
    certificate_check(coa_cells=coa_cells, coa_bag_volume_ml=coa_bag_volume_ml, coa_lot=coa_lot,
                      coi_scanned=coi_scanned)  # fmt: skip
    prep = _cell_preparation(preparation)
    if prep.status not in (PreparationStatus.ORDERED, PreparationStatus.IN_PREPARATION):
        raise OrderConflict(f"Cannot receive a preparation that is {prep.get_status_display().lower()}.")
    if prep.coa_recorded_at is not None:
        raise OrderConflict("The product is already received with its certificate of analysis.")
    if prep.cells_min is None and prep.cells_max is None:
        raise OrderConflict("The order has no cell dose to check the certificate against: recalculate it.")
    course = prep.dose.course
    check = chain_of_identity_handoff(
        course=course, step=CoiStep.RECEIPT, scanned=coi_scanned, user=user, now=now, preparation=prep,
        note=f"Certificate of analysis lot {coa_lot.strip()}",
    )  # fmt: skip
    if not check.matched:
        return ScanOutcome(prep, check)
    dose = dosing.CellDose(target_cells=prep.cells_target, min_cells=prep.cells_min, max_cells=prep.cells_max, note="")
    problem = dosing.check_cell_product(dose=dose, certified_cells=coa_cells)
    if problem:  # raising undoes the receipt hand-off too
        raise ValidationError({"coa_cells": f"{problem[0].upper()}{problem[1:]}: do not accept this bag."})
    prep.coa_cells, prep.coa_bag_volume_ml, prep.coa_lot = coa_cells, coa_bag_volume_ml, coa_lot.strip()
    prep.coa_recorded_by, prep.coa_recorded_at = user, now
    prep.save(update_fields=["coa_cells", "coa_bag_volume_ml", "coa_lot", "coa_recorded_by", "coa_recorded_at"])
    return ScanOutcome(prep, check)


@transaction.atomic
def cell_product_thaw(
    *, preparation: Preparation, coi_scanned: str, user: User, now: datetime, thawed_at: datetime | None = None
) -> ScanOutcome:
    """The THAW hand-off, the "record" step of a cell product (by the technician who started it): the bag goes
    to verification, and the infusion must end within the drug's thaw-to-infusion limit (both clocks)."""
    if not coi_scanned.strip():
        raise ValidationError({"coi_scanned": "Scan the chain-of-identity label of the bag."})
    prep = _locked(preparation, "record")
    if not prep.dose.course.regimen.drug.cell_therapy:
        raise OrderConflict(f"{prep.dose.course.regimen.drug} is not a cell product: record its vials.")
    if prep.dose.course.regimen.drug.fresh_product:
        raise OrderConflict(f"{prep.dose.course.regimen.drug} is not frozen: do not thaw it.")
    if prep.prepared_by_id != user.pk:
        raise PermissionDenied("Only the technician who started this preparation can record its thaw.")
    if prep.coa_recorded_at is None:
        raise OrderConflict("Record the receipt with the certificate of analysis first.")
    drug = prep.dose.course.regimen.drug
    limit = drug.thaw_to_infusion_limit
    if limit is None:
        raise OrderConflict(f"The catalogue gives no thaw-to-infusion limit for {drug}: it cannot be thawed.")
    at = thawed_at or now
    earliest = max(t for t in (prep.started_at, prep.coa_recorded_at) if t is not None)
    if at.tzinfo is None or not earliest <= at <= now:
        raise ValidationError({"thawed_at": f"The thaw lies between {_hhmm(earliest)} and now."})
    check = chain_of_identity_handoff(
        course=prep.dose.course, step=CoiStep.THAW, scanned=coi_scanned, user=user, now=at, preparation=prep
    )
    if not check.matched:
        return ScanOutcome(prep, check)
    prep.status, prep.punctured_at, prep.ended_at = PreparationStatus.AWAITING_VERIFICATION, at, at
    prep.storage, prep.category = Storage.ROOM, ""
    prep.beyond_use_at = prep.infusion_end_by = after_elapsed(at, limit)
    prep.beyond_use_note = (
        f"Cell product thawed {_hhmm(at)}: the infusion must end within {duration_text(limit)} of thaw"
    )
    prep.save(
        update_fields=["status", "punctured_at", "ended_at", "storage", "category", "beyond_use_at",
                       "infusion_end_by", "beyond_use_note"]
    )  # fmt: skip
    return ScanOutcome(prep, check)


@transaction.atomic
def rescue_medication_confirm(
    *, course: TreatmentCourse, doses_on_hand: int, user: User, now: datetime, note: str = ""
) -> RescueMedicationCheck:
    """Pharmacy confirms the rescue doses on hand for this patient (tocilizumab x 2 before a CAR-T or
    bispecific infusion). The latest confirmation counts at the bedside."""
    if not user.has_perm("orders.prepare"):
        raise PermissionDenied("Pharmacy confirms rescue medication on hand.")
    if isinstance(doses_on_hand, bool) or not isinstance(doses_on_hand, int):
        raise ValidationError({"doses_on_hand": "A whole number of doses."})
    if not 0 <= doses_on_hand <= MAX_RESCUE_DOSES:
        raise ValidationError({"doses_on_hand": f"Between 0 and {MAX_RESCUE_DOSES} doses."})
    if len(note) > 2000:
        raise ValidationError({"note": "At most 2000 characters."})
    course = TreatmentCourse.objects.select_for_update().select_related("regimen__drug").get(pk=course.pk)
    if course.status != CourseStatus.ACTIVE:
        raise OrderConflict("The course is stopped.")
    drug = course.regimen.drug
    if not drug.rescue_drug:
        raise ValidationError({"course": f"{drug} needs no rescue medication on hand."})
    return RescueMedicationCheck.objects.create(
        course=course, drug=drug.rescue_drug, doses_on_hand=doses_on_hand, confirmed_by=user, at=now,
        note=note.strip(),
    )  # fmt: skip
