"""The bedside tolerance check before each dose that needs one (high-dose aldesleukin after TIL): recorded as
found, judged by orders.tolerance, and read by the bedside check (orders.services.identity)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from orders.choices import DoseStatus
from orders.models import Dose, ToleranceCheck
from orders.services._common import _hhmm
from orders.tolerance import FINDING_FIELDS, ToleranceError, ToleranceFindings, ToleranceVerdict, assess_tolerance

# A check older than this no longer clears a dose (JITC 2024: assessed about 2 h before each dose).
TOLERANCE_CHECK_VALID_FOR = timedelta(hours=2)


@transaction.atomic
def tolerance_check_record(
    *, dose: Dose, user: User, now: datetime, checked_at: datetime | None = None, **findings: Any
) -> ToleranceCheck:
    """Record a tolerance check of a planned dose; the verdict comes from the findings (missing ones make it
    pending). Implausible values and a dose that needs no check are refused naming the field; nothing is written."""
    dose = Dose.objects.select_for_update(of=("self",)).select_related("course__regimen__drug").get(pk=dose.pk)
    if not dose.course.regimen.drug.tolerance_check_required:
        raise ValidationError({"dose": f"{dose.course.regimen.drug} needs no tolerance check."})
    if dose.status != DoseStatus.PLANNED:
        raise ValidationError({"dose": f"Dose {dose.number} is {dose.get_status_display().lower()}."})
    checked_at = checked_at or now
    if checked_at > now:
        raise ValidationError({"checked_at": "A check cannot be in the future."})
    unknown = set(findings) - set(FINDING_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Not a finding of the tolerance check."})
    try:
        result = assess_tolerance(ToleranceFindings(**findings))
    except ToleranceError as error:
        raise ValidationError({error.field: error.reason}) from None
    return ToleranceCheck.objects.create(
        dose=dose, checked_at=checked_at, checked_by=user, recorded_at=now, verdict=result.verdict,
        reasons=list(result.reasons), missing=list(result.missing), **findings,
    )  # fmt: skip


def tolerance_problem(dose: Dose, now: datetime) -> str | None:
    """Why the dose may not start for want of a tolerance check: none in the last 2 h, or the latest one holds
    the dose or is incomplete. None when the drug needs none or the latest check found it tolerated."""
    if not dose.course.regimen.drug.tolerance_check_required:
        return None
    latest = (
        dose.tolerance_checks.filter(checked_at__gte=now - TOLERANCE_CHECK_VALID_FOR, checked_at__lte=now)
        .order_by("-checked_at", "-id")
        .first()
    )
    if latest is None:
        return f"no bedside tolerance check in the last 2 h: record one before dose {dose.number}"
    if latest.verdict == ToleranceVerdict.HOLD:
        return f"tolerance check at {_hhmm(latest.checked_at)}: hold dose {dose.number} ({'; '.join(latest.reasons)})"
    if latest.verdict == ToleranceVerdict.PENDING:
        return f"tolerance check at {_hhmm(latest.checked_at)} incomplete: {', '.join(latest.missing)} not recorded"
    return None
