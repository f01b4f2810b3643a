"""Identity before a dose reaches the patient: the bedside scan and the chain-of-identity hand-offs of a
cell product. A mismatch is recorded (a hard stop), not raised away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from core.times import duration_text
from orders import bags, bud
from orders.choices import COI_ORDER, CoiStep, DoseStatus, GateCheckPurpose, PremedicationClass, PreparationStatus
from orders.gate import dose_gate
from orders.models import Dose, Drug, IdentityCheck, Preparation, RegimenStep, TreatmentCourse
from orders.selectors import dose_step, latest_rescue_check
from orders.services._common import _hhmm, _local, _locked
from orders.services.courses import course_reschedule, therapy_plan_advance_for
from orders.services.doses import gate_record
from orders.services.errors import OrderConflict
from orders.services.tolerance import tolerance_problem

PREMEDICATION_WINDOW = timedelta(hours=4)


@dataclass
class ScanOutcome:
    preparation: Preparation
    check: IdentityCheck

    @property
    def matched(self) -> bool:
        return self.check.matched


def _bud_problem(prep: Preparation, now: datetime, infusion: timedelta) -> str | None:
    """Both stored clocks: start administration by, and (label in-use time) end the infusion by."""
    if prep.beyond_use_at is None:
        return "the preparation has no beyond-use time"
    stored = bud.BeyondUse(
        at=prep.beyond_use_at, limited_by="category", category_limit=timedelta(0), stability_limit=None,
        note=prep.beyond_use_note, infusion_end_by=prep.infusion_end_by,
    )  # fmt: skip
    return bud.administration_problem(bud=stored, starts_at=_local(now), infusion=infusion)


CHAIN_BEFORE_BEDSIDE = COI_ORDER[: COI_ORDER.index(CoiStep.BEDSIDE)]


def _cell_bedside_problems(prep: Preparation, coi_label: str, now: datetime, infusion: timedelta) -> list[str]:
    """The bag's COI label against the course, every hand-off recorded and matched in order, and the infusion
    ending within the thaw-to-infusion limit."""
    course, drug = prep.dose.course, prep.dose.course.regimen.drug
    problems = []
    scanned = coi_label.strip()
    if not scanned:
        problems.append("the bag's chain-of-identity label was not scanned")
    elif scanned != course.chain_of_identity:
        problems.append(f"the bag's chain-of-identity label {scanned} does not match this patient's product")
    first: dict[str, IdentityCheck] = {}
    for check in course.identity_checks.filter(matched=True, step__in=CHAIN_BEFORE_BEDSIDE).order_by("at", "id"):
        first.setdefault(check.step, check)
    missing = [step.label.lower() for step in CHAIN_BEFORE_BEDSIDE if step not in first]
    if missing:
        problems.append("hand-off not recorded: " + ", ".join(missing))
    elif [first[s].at for s in CHAIN_BEFORE_BEDSIDE] != sorted(first[s].at for s in CHAIN_BEFORE_BEDSIDE):
        problems.append("the hand-offs are not recorded in order (collection, shipment, receipt, thaw)")
    thaw = first.get(CoiStep.THAW)
    if thaw is not None and thaw.preparation_id not in (None, prep.pk):
        problems.append("the thaw recorded is of another bag")
    limit = drug.thaw_to_infusion_limit
    if limit is None:
        problems.append(f"the catalogue gives no thaw-to-infusion limit for {drug}")
    elif thaw is not None and now + infusion > thaw.at + limit:
        problems.append(
            f"thawed at {_hhmm(thaw.at)}: a {infusion.seconds // 60} min infusion starting {_hhmm(now)} would end "
            f"{_hhmm(now + infusion)}, after the {duration_text(limit)} thaw-to-infusion limit "
            f"({_hhmm(thaw.at + limit)})"
        )
    return problems


def fresh_product_problems(prep: Preparation, scanned: str, now: datetime) -> list[str]:
    """Why this fresh bag may not be given now: its own chain-of-identity ID against the scan, the collection
    and receipt recorded, and the product's expiry (none recorded: refused)."""
    problems = []
    label = scanned.strip()
    if not prep.bag_identity:
        problems.append("no leukapheresis (bag chain-of-identity ID) is recorded for this dose")
    elif not label:
        problems.append("the bag's chain-of-identity label was not scanned")
    elif label != prep.bag_identity:
        problems.append(f"the bag's chain-of-identity label {label[:40]} is not this dose's bag ({prep.bag_identity})")
    if prep.coa_recorded_at is None:
        problems.append("the bag's receipt is not recorded")
    if prep.product_expires_at is None:
        problems.append("no product expiry time is recorded: do not infuse")
    elif now >= prep.product_expires_at:
        problems.append(f"the product expired at {_hhmm(prep.product_expires_at)}: do not infuse expired product")
    return problems


def _step_premedication_problem(
    step: RegimenStep, dose_number: int, given_at: datetime | None, classes: Sequence[str], now: datetime
) -> str | None:
    """A step-up dose's premedication (its label: corticosteroid, H1 antagonist, antipyretic), each recorded,
    within the step's window; whatever the drug's own premedication says."""
    what = f"before step-up dose {dose_number} ({step.premedication or 'per the label'})"
    missing = [PremedicationClass(c).label for c in step.premedication_classes if c not in classes]
    if given_at is None:
        needed = ", ".join(PremedicationClass(c).label for c in step.premedication_classes)
        return f"premedication not recorded {what}: record when {needed} were given before starting"
    if missing:
        return f"premedication missing {what}: {', '.join(missing)} not recorded"
    window = timedelta(hours=step.premedication_within_hours)
    if given_at < now - window:
        return (
            f"premedication given {_hhmm(given_at)}, more than {duration_text(window)} before step-up dose "
            f"{dose_number}"
        )
    return None


def _premedication_problem(drug: Drug, given_at: datetime | None, note: str, now: datetime) -> str | None:
    if not drug.premedication:
        return None
    if given_at is None:
        return f"premedication not recorded ({drug.premedication}): record when it was given before starting"
    if given_at < now - PREMEDICATION_WINDOW:
        return (
            f"premedication given {_hhmm(given_at)}, more than {duration_text(PREMEDICATION_WINDOW)} before the "
            "infusion"
        )
    if not note.strip():
        return "premedication note missing: record what was given"
    return None


def _rescue_problem(course: TreatmentCourse, drug: Drug) -> str | None:
    """Rescue doses on hand (tocilizumab x 2 before a CAR-T or bispecific), confirmed by pharmacy."""
    needed = drug.rescue_doses_required
    if needed <= 0:
        return None
    if not drug.rescue_drug:
        return f"the catalogue names no rescue drug for {drug}"
    latest = latest_rescue_check(course, drug)
    if latest is None:
        return f"{drug.rescue_drug} not confirmed on hand by pharmacy ({needed} doses required)"
    if latest.doses_on_hand < needed:
        return f"only {latest.doses_on_hand} dose(s) of {drug.rescue_drug} confirmed on hand, {needed} required"
    return None


@transaction.atomic
def preparation_administer(
    *,
    preparation: Preparation,
    wristband: str,
    label: str,
    user: User,
    now: datetime,
    coi_label: str = "",
    premedication_given_at: datetime | None = None,
    premedication_note: str = "",
    premedication_classes: Sequence[str] = (),
) -> ScanOutcome:
    """Bedside check before the infusion starts: the wristband must carry the patient's MRN and the label this
    preparation's code; both beyond-use clocks must allow the whole infusion; the premedication the drug needs
    must be recorded (at most 4 h before); rescue doses on hand where the drug needs them; the dose gate must
    still be open. A cell product also needs its chain-of-identity label, every hand-off in order and the
    infusion ending within the thaw limit. Any failure is a hard stop: recorded, nothing else changes (callers
    answer 409)."""
    if premedication_given_at is not None and premedication_given_at > now:
        raise ValidationError({"premedication_given_at": "The premedication cannot have been given in the future."})
    if len(premedication_note) > 200:
        raise ValidationError({"premedication_note": "At most 200 characters."})
    unknown = [c for c in premedication_classes if c not in PremedicationClass.values]
    if unknown:
        raise ValidationError({"premedication_classes": f"Unknown premedication {unknown[0]!r}."})
    prep = _locked(preparation, "administer")
    course = prep.dose.course
    patient, regimen, drug = course.patient, course.regimen, course.regimen.drug
    # A bag of a continuous infusion runs its own hours (both beyond-use clocks must allow all of them).
    bag_hours = prep.dose.bag_hours
    infusion = timedelta(hours=bag_hours) if bag_hours is not None else timedelta(minutes=regimen.infusion_minutes)
    problems = []
    if wristband.strip().upper() != patient.mrn:
        problems.append("wristband does not match the patient")
    if label.strip().upper() != prep.code:
        problems.append("label does not match this preparation")
    if drug.fresh_product:  # sipuleucel-T: the bag's own ID and its expiry time, no thaw
        problems += fresh_product_problems(prep, coi_label, now)
    elif drug.cell_therapy:
        problems += _cell_bedside_problems(prep, coi_label, now, infusion)
    else:
        problems.append(_bud_problem(prep, now, infusion) or "")
    problems.append(_premedication_problem(drug, premedication_given_at, premedication_note, now) or "")
    step = dose_step(prep.dose)
    if step is not None and step.premedication_required:
        problems.append(
            _step_premedication_problem(step, prep.dose.number, premedication_given_at, premedication_classes, now)
            or ""
        )
    problems.append(_rescue_problem(course, drug) or "")
    problems.append(tolerance_problem(prep.dose, now) or "")
    gate = dose_gate(prep.dose, now=now)
    if not gate.is_open:
        reasons = [f.text for f in gate.open_findings] or gate.reasons + gate.pending
        problems.append(f"the dose gate is now {gate.verdict}: {'; '.join(reasons)}")
    problems = [p for p in problems if p]
    note = "STOP: " + "; ".join(problems) if problems else ""
    if drug.cell_therapy:
        note = f"{note} (COI label scanned: {coi_label.strip()[:40] or 'none'})".strip()
    check = IdentityCheck.objects.create(
        preparation=prep, course=course, step=CoiStep.BEDSIDE, at=now, by=user, scanned_wristband=wristband[:40],
        scanned_label=label[:40], matched=not problems, note=note,
    )  # fmt: skip
    if not problems:
        prep.status, prep.administered_by, prep.administration_started_at = PreparationStatus.ADMINISTERED, user, now
        prep.premedication_given_at, prep.premedication_note = premedication_given_at, premedication_note.strip()
        prep.premedication_classes_given = sorted(set(premedication_classes))
        prep.save(
            update_fields=["status", "administered_by", "administration_started_at", "premedication_given_at",
                           "premedication_note", "premedication_classes_given"]
        )  # fmt: skip
        Dose.objects.filter(pk=prep.dose_id).update(status=DoseStatus.GIVEN)
        gate_record(dose=prep.dose, gate=gate, user=user, now=now, purpose=GateCheckPurpose.ADMINISTER)
        if bag_hours is not None:
            _next_bag_follows(prep.dose, bag_hours, user, now)
        therapy_plan_advance_for(course_id=course.pk, now=now)
    return ScanOutcome(prep, check)


def _next_bag_follows(dose: Dose, hours: int, user: User, now: datetime) -> None:
    """A bag change leaves no gap: the next bag (and every later one with it) is due when this one, hung now,
    runs out (orders.bags.next_bag_due), wherever it was planned before."""
    following = Dose.objects.filter(course_id=dose.course_id, number=dose.number + 1, status=DoseStatus.PLANNED).first()
    due = bags.next_bag_due(started_at=now, hours=hours)
    if following is not None and following.planned_at != due:
        course_reschedule(dose=following, planned_at=due, user=user, now=now)


# Recorded with the preparation they belong to (cell_product_receive, cell_product_thaw, preparation_administer).
PREPARATION_STEPS = (CoiStep.RECEIPT, CoiStep.THAW, CoiStep.BEDSIDE)


@transaction.atomic
def chain_of_identity_handoff(
    *,
    course: TreatmentCourse,
    step: str,
    scanned: str,
    user: User,
    now: datetime,
    note: str = "",
    preparation: Preparation | None = None,
) -> IdentityCheck:
    """Log a CAR-T hand-off in order. A scanned ID that does not match is recorded as a mismatch and
    the step stays undone (callers answer 409). Receipt and thaw belong to the bag's preparation (the receipt
    carries the certificate of analysis, the thaw starts the infusion clock); the bedside step is the
    administration scan."""
    course = TreatmentCourse.objects.select_for_update().get(pk=course.pk)
    if not course.chain_of_identity:
        raise ValidationError({"course": "This course has no chain-of-identity ID."})
    if step not in CoiStep.values:
        raise ValidationError({"step": f"Unknown step {step!r}."})
    if step == CoiStep.BEDSIDE:
        raise ValidationError({"step": "The bedside check is the administration scan of the preparation."})
    if step in PREPARATION_STEPS and preparation is None:
        raise ValidationError(
            {"step": f"{CoiStep(step).label} is recorded on the preparation (receive, thaw), not as a bare hand-off."}
        )
    if preparation is not None and preparation.dose.course_id != course.pk:
        raise ValidationError({"preparation": "This preparation is not of this course."})
    done = set(course.identity_checks.filter(matched=True).values_list("step", flat=True))
    index = COI_ORDER.index(CoiStep(step))
    missing = [s.label for s in COI_ORDER[:index] if s not in done]
    if step in done:
        raise OrderConflict(f"{CoiStep(step).label} is already recorded.")
    if missing:
        raise OrderConflict(f"Record {', '.join(missing)} first.")
    matched = scanned.strip() == course.chain_of_identity
    stop = "" if matched else "STOP: the chain-of-identity ID does not match this patient's product. "
    return IdentityCheck.objects.create(
        preparation=preparation, course=course, step=step, at=now, by=user, scanned_label=scanned[:40],
        matched=matched, note=(stop + note).strip(),
    )  # fmt: skip
