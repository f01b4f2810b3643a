"""Writes that rely on the dose gate's verdict (orders.gate reads it): hold rule versions, gate checks,
the oncologists' decisions, and the discontinuation findings raised when results are verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.services import confirm_password
from alerts.choices import AlertAudience, AlertSeverity
from alerts.findings import Finding as AlertFinding
from orders.choices import CourseStatus, DecisionKind, DoseStatus, GateCheckPurpose, GateVerdict, Reference
from orders.gate import FindingKind, Gate, dose_gate, dose_gates
from orders.models import Dose, DoseDecision, GateCheck, HoldRule
from orders.services.errors import OrderConflict
from orders.versioning import revised_values, rule_revise
from patients.selectors import patient_list
from results.models import Result

HOLD_RULE_FIELDS = (
    "lab_test", "comparator", "threshold", "reference", "unit", "action", "lookback_days", "requires_result",
    "description", "source", "effective_from",
)  # fmt: skip


def _check_hold_rule(values: dict[str, object]) -> None:
    if values.get("reference") == Reference.ABSOLUTE and not str(values.get("unit") or "").strip():
        raise ValidationError({"unit": "An absolute threshold needs its unit (UCUM), so results can be converted."})


def hold_rule_revise(*, rule: HoldRule, changes: dict[str, object], user: User | None, now: datetime) -> HoldRule:
    """Edit a hold rule: a new version with the changes; the old one is kept, inactive and superseded.
    Its drugs and regimens carry over unless `changes` names them."""
    _check_hold_rule(revised_values(rule, HOLD_RULE_FIELDS, changes))
    return rule_revise(rule=rule, fields=HOLD_RULE_FIELDS, changes=changes, user=user, now=now)


def gate_record(*, dose: Dose, gate: Gate, user: User, now: datetime, purpose: GateCheckPurpose) -> GateCheck:
    """Keep the verdict a step relied on, with the hold-rule versions that decided it."""
    check = GateCheck.objects.create(
        dose=dose, at=now, by=user, purpose=purpose, verdict=gate.verdict,
        reasons=[{"key": f.key, "kind": str(f.kind), "text": f.text} for f in gate.findings],
    )  # fmt: skip
    check.hold_rules.set(gate.hold_rule_ids)
    return check


def _decidable(dose: Dose, now: datetime) -> tuple[Dose, Gate]:
    dose = (
        Dose.objects.select_for_update(of=("self",))
        .select_related("course__patient", "course__regimen")
        .get(pk=dose.pk)
    )
    if dose.status != DoseStatus.PLANNED or dose.course.status != CourseStatus.ACTIVE:
        raise OrderConflict(f"Dose {dose.number} is not planned on an active course.")
    gate = dose_gate(dose, now=now)
    if gate.verdict == GateVerdict.BLOCKED:
        limits = "; ".join(f.text for f in gate.open_findings if f.kind is FindingKind.LIMIT)
        raise OrderConflict(f"A dose limit of the regimen holds this dose and cannot be overridden: {limits}")
    if not gate.open_findings:
        raise OrderConflict(f"Dose {dose.number} is {gate.verdict.label.lower()}: nothing to decide.")
    return dose, gate


def _record_decision(
    dose: Dose, gate: Gate, kind: DecisionKind, user: User, now: datetime, reason: str, cosigner: User | None = None
) -> DoseDecision:
    decision = DoseDecision.objects.create(
        dose=dose, kind=kind, at=now, by=user, cosigned_by=cosigner, reason=reason,
        covers=[f.key for f in gate.open_findings],
    )  # fmt: skip
    decision.hold_rules.set(gate.hold_rule_ids)
    gate_record(dose=dose, gate=gate, user=user, now=now, purpose=GateCheckPurpose.DECISION)
    return decision


@transaction.atomic
def dose_override(*, dose: Dose, user: User, now: datetime, reason: str) -> DoseDecision:
    """One oncologist gives a withheld or pending dose, with a reason. It covers the findings of now only."""
    if not reason.strip():
        raise ValidationError({"reason": "An override needs a reason."})
    dose, gate = _decidable(dose, now)
    if gate.verdict == GateVerdict.DISCONTINUED:
        raise OrderConflict(
            "A permanent-discontinuation rule is met: stop the course, or two oncologists decide to continue "
            "(the second co-signs with their password)."
        )
    return _record_decision(dose, gate, DecisionKind.OVERRIDE, user, now, reason.strip())


def dose_continue_cosigned(
    *,
    dose: Dose,
    user: User,
    cosigner: User | None,
    cosigner_password: str,
    request: HttpRequest | Request,
    now: datetime,
    reason: str,
) -> DoseDecision:
    """Two oncologists document the decision to give a dose despite a permanent-discontinuation finding:
    the second, another oncologist of the patient's care team, signs with their password. A wrong password
    counts toward the cosigner's login lock-out (accounts.services.confirm_password)."""
    if not reason.strip():
        raise ValidationError({"reason": "A decision to continue needs the documented reason."})
    if cosigner is None or not cosigner.is_active:
        raise ValidationError({"cosigner": "Name the second oncologist."})
    if cosigner.pk == user.pk:
        raise PermissionDenied("The second oncologist must be someone else.")
    if not cosigner.has_perm("orders.manage_course"):
        raise ValidationError({"cosigner": f"{cosigner} is not an oncologist who may decide on doses."})
    if not patient_list(user=cosigner).filter(pk=dose.course.patient_id).exists():
        raise ValidationError({"cosigner": f"{cosigner} is not on this patient's care team."})
    # Before the decision's transaction: a refused signature writes nothing but its counted failure.
    confirm_password(
        request=request, user=cosigner, password=cosigner_password,
        refusal="The second oncologist's password does not match.",
    )  # fmt: skip
    return _continue_cosigned(dose=dose, user=user, cosigner=cosigner, now=now, reason=reason.strip())


@transaction.atomic
def _continue_cosigned(*, dose: Dose, user: User, cosigner: User, now: datetime, reason: str) -> DoseDecision:
    dose, gate = _decidable(dose, now)
    return _record_decision(dose, gate, DecisionKind.COSIGNED, user, now, reason, cosigner)


def doses_discontinue_findings(*, patient_ids: set[int], now: datetime) -> list[tuple[int, AlertFinding]]:
    """Findings for the results alert when the next planned dose of an active course meets a permanent-
    discontinuation rule: high severity, for the oncologists, one per dose and rule (a repeat folds)."""
    next_doses = (
        Dose.objects.filter(
            course__patient_id__in=patient_ids, course__status=CourseStatus.ACTIVE, status=DoseStatus.PLANNED
        )
        .select_related("course__patient", "course__regimen__drug")
        .order_by("course_id", "number")
        .distinct("course_id")
    )
    doses = list(next_doses)
    gates = dose_gates(doses, now=now)
    findings = []
    for dose in doses:
        for stop in (f for f in gates[dose.pk].open_findings if f.kind is FindingKind.DISCONTINUE):
            label = f"{dose.course.regimen.drug}: dose {dose.number} meets a discontinuation rule: {stop.text}"
            finding = AlertFinding(
                key=f"dose:{dose.pk}:rule:{stop.hold_rule_id}",
                label=label[:160],
                severity=AlertSeverity.HIGH,
                audience=AlertAudience.ONCOLOGISTS,
            )
            findings.append((dose.course.patient_id, finding))
    return findings


def on_results_verified(*, results: Sequence[Result], now: datetime) -> list[tuple[int, AlertFinding]]:
    """A hook of `results_verify` (settings.RESULTS_VERIFIED_HOOKS): runs inside the verifying transaction and
    returns its findings for the results' alert."""
    return doses_discontinue_findings(patient_ids={r.patient_id for r in results}, now=now)
