"""Results out: verified results to the EHR as ORU^R01 over MLLP, through a transactional outbox.

`outbox_write` runs inside `results_verify`: one message per patient per verification call (one OBR per specimen,
one OBX per result), so the message and the verification commit or roll back together. `outbox_deliver` (the
Celery task `results.deliver_outbound_messages`) sends them in each patient's order; `outbound_message_resend`
puts a refused one back (the interface-errors page). docs/interfaces.md, "Results out (ORU^R01 over MLLP)".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from core.errors import Conflict
from core.numbers import plain_decimal
from results.choices import OutboundStatus, ResultStatus
from results.hl7.ack import new_control_id
from results.hl7.encoding import encoding_of, escape, unescape
from results.hl7.errors import Hl7Error
from results.hl7.segments import format_timestamp, segment_lines
from results.mllp import MllpClient
from results.models import OutboundMessage, Result

logger = logging.getLogger(__name__)

ORU_R01 = "ORU^R01"
ACCEPTED = ("AA", "CA")  # original and enhanced mode: the receiver has the message


# ---------------------------------------------------------------------------------------------------------
# Building the message


def _ts(moment: datetime | None) -> str:
    return format_timestamp(moment.astimezone(UTC)) if moment is not None else ""


def _number(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


def _reference_range(result: Result) -> str:
    """OBX-7: "low-high", "> low" or "< high" (HL7 v2.5.1 §7.4.2.7), empty without limits."""
    low, high = result.reference_low, result.reference_high
    if low is not None and high is not None:
        return f"{plain_decimal(low)}-{plain_decimal(high)}"
    if low is not None:
        return f">{plain_decimal(low)}"
    if high is not None:
        return f"<{plain_decimal(high)}"
    return ""


def _value(result: Result) -> tuple[str, str]:
    """OBX-2 and OBX-5."""
    if result.value_code:
        return "CWE", "^".join([escape(result.value_code), escape(result.value_text), escape(result.value_code_system)])
    if result.value_numeric is not None:
        number = _number(result.value_numeric, result.decimal_places)
        if result.value_comparator:
            return "SN", f"{escape(result.value_comparator)}^{number}"
        return "NM", number
    return "ST", escape(result.value_text)


def _observation_status(result: Result) -> str:
    """OBX-11 (HL7 0085): C for a verified amendment (a correction of a result sent as F), else F."""
    return "C" if result.status == ResultStatus.AMENDED else "F"


def _obx(set_id: int, result: Result) -> list[str]:
    value_type, value = _value(result)
    test = result.lab_test
    code = (
        f"{escape(test.loinc_code)}^{escape(test.name)}^LN" if test.loinc_code else f"{test.pk}^{escape(test.name)}^L"
    )
    unit = f"{escape(result.unit)}^{escape(result.unit)}^UCUM" if result.unit else ""
    fields = [
        "OBX",
        str(set_id),
        value_type,
        code,
        "",
        value,
        unit,  # OBX-6, UCUM
        _reference_range(result),  # OBX-7
        result.flag,  # OBX-8, HL7 0078
        "",
        "",
        _observation_status(result),  # OBX-11
        "",
        "",
        _ts(result.observed_at),  # OBX-14
        "",
        "",
        "",
        "",
        _ts(result.verified_at),  # OBX-19, date/time of the analysis's verification
    ]
    segments = ["|".join(fields).rstrip("|")]
    if result.status == ResultStatus.AMENDED and result.amendment_reason:
        segments.append(f"NTE|1|L|{escape('Corrected: ' + result.amendment_reason)}")
    return segments


def build_oru(*, results: Sequence[Result], control_id: str, now: datetime) -> str:
    """An ORU^R01 (v2.5.1) with the verified ``results`` of one patient: PID, then ORC/OBR per specimen."""
    patient = results[0].patient
    if any(r.patient_id != patient.pk for r in results):
        raise ValueError("an ORU^R01 carries one patient's results")
    lines = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                escape(settings.HL7_OUTBOUND_SENDING_APPLICATION),
                escape(settings.HL7_OUTBOUND_SENDING_FACILITY),
                escape(settings.HL7_OUTBOUND_RECEIVING_APPLICATION),
                escape(settings.HL7_OUTBOUND_RECEIVING_FACILITY),
                _ts(now),
                "",
                "ORU^R01^ORU_R01",
                escape(control_id),
                "P",
                "2.5.1",
            ]
        ),
        "|".join(
            [
                "PID",
                "1",
                "",
                f"{escape(patient.mrn)}^^^{escape(settings.HL7_OUTBOUND_MRN_AUTHORITY)}^MR",
                "",
                f"{escape(patient.family_name)}^{escape(patient.given_name)}",
                "",
                patient.birth_date.strftime("%Y%m%d"),
                patient.sex or "U",
            ]
        ),
    ]
    by_specimen: dict[int, list[Result]] = defaultdict(list)
    for r in sorted(results, key=lambda r: (r.specimen_id, r.lab_test.name, r.pk)):
        by_specimen[r.specimen_id].append(r)
    for obr_id, rows in enumerate(by_specimen.values(), start=1):
        specimen = rows[0].specimen
        filler = f"{escape(specimen.accession)}^{escape(settings.HL7_OUTBOUND_SENDING_APPLICATION)}"
        corrected = any(r.status == ResultStatus.AMENDED for r in rows)
        lines.append(f"ORC|RE||{filler}")
        obr = ["OBR", str(obr_id), "", filler, "LABRESULTS^Laboratory results^L", "", "", _ts(specimen.collected_at)]
        obr += [""] * 6 + [""]  # OBR-8 .. OBR-14
        obr += [""] * 7 + [_ts(max(r.verified_at or now for r in rows)), "", "", "C" if corrected else "F"]
        lines.append("|".join(obr).rstrip("|"))
        for set_id, result in enumerate(rows, start=1):
            lines += _obx(set_id, result)
    return "\r".join(lines) + "\r"


# ---------------------------------------------------------------------------------------------------------
# Writing (inside the verification transaction)


def outbox_write(*, results: Sequence[Result], now: datetime) -> list[OutboundMessage]:
    """One pending ORU^R01 per patient of ``results``, numbered after the patient's last message.

    Must run in the verifying transaction: the messages exist exactly when the verification does."""
    if not results:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_write must run inside the verification transaction")
    rows = list(Result.objects.filter(pk__in=[r.pk for r in results]).select_related("patient", "specimen", "lab_test"))
    by_patient: dict[int, list[Result]] = defaultdict(list)
    for r in rows:
        by_patient[r.patient_id].append(r)
    written = []
    with connection.cursor() as cursor:
        for patient_id in sorted(by_patient):
            # Serialise the numbering per patient (two verifications at once), without locking the patient row.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('labflow.outbox'), %s)", [patient_id])
            last = OutboundMessage.objects.filter(patient_id=patient_id).aggregate(n=Max("sequence"))["n"] or 0
            control_id = new_control_id(now)
            message = OutboundMessage.objects.create(
                patient_id=patient_id,
                kind=ORU_R01,
                payload=build_oru(results=by_patient[patient_id], control_id=control_id, now=now),
                control_id=control_id,
                sequence=last + 1,
                next_attempt_at=now,
                created_at=now,
            )
            message.results.set(by_patient[patient_id])
            written.append(message)
    return written


# ---------------------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class Ack:
    code: str
    control_id: str
    text: str


def read_ack(text: str) -> Ack | None:
    """MSA-1, MSA-2 and the error text (MSA-3, ERR-3 code and text) of an ACK; None when it has no MSA."""
    lines = segment_lines(text)
    if not lines:
        return None
    try:
        enc = encoding_of(lines[0])
    except Hl7Error:
        return None
    fields = {line[:3]: line.split(enc.field) for line in reversed(lines)}
    msa = fields.get("MSA")
    if msa is None or len(msa) < 3:
        return None
    detail = [unescape(msa[3], enc)] if len(msa) > 3 and msa[3] else []
    err = fields.get("ERR")
    if err is not None and len(err) > 3 and err[3]:
        code = err[3].split(enc.component)
        detail.append(" ".join(unescape(part, enc) for part in code[:2]))
    return Ack(unescape(msa[1], enc).strip(), unescape(msa[2], enc).strip(), "; ".join(d for d in detail if d))


def _next_due(now: datetime) -> OutboundMessage | None:
    """The oldest due message that heads its patient's queue (every earlier one accepted), locked; messages
    another worker holds are skipped, and so, through the head rule, are the later ones of that patient."""
    earlier_unsent = OutboundMessage.objects.filter(
        patient_id=OuterRef("patient_id"), sequence__lt=OuterRef("sequence")
    ).exclude(status=OutboundStatus.SENT)
    return (
        OutboundMessage.objects.filter(status=OutboundStatus.PENDING, next_attempt_at__lte=now)
        .exclude(Exists(earlier_unsent))
        .select_for_update(skip_locked=True)
        .order_by("next_attempt_at", "id")
        .first()
    )


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base * 2^(attempts - 1), capped."""
    base, cap = settings.HL7_OUTBOUND_RETRY_BASE_SECONDS, settings.HL7_OUTBOUND_RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** min(max(attempts - 1, 0), 30)))


@dataclass
class DeliveryReport:
    sent: int = 0
    refused: int = 0
    failed: int = 0


def _retry_later(message: OutboundMessage, reason: str, now: datetime) -> None:
    message.next_attempt_at = now + backoff(message.attempts)
    message.last_error = reason[:300]
    message.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at", "last_error"])


def outbox_deliver(*, now: datetime | None = None, limit: int = 500) -> DeliveryReport:
    """Send due messages until none is due, ``limit`` is reached or the endpoint fails (one connection).

    Each message is locked while it is sent (its own transaction) and marked sent only on AA/CA. A timeout, a
    dropped connection or an unreadable / mismatched ACK leaves it pending with a back-off, and ends the run; AE,
    AR, CE or CR put it in error (shown on the interface-errors page), which holds the patient's later messages
    until someone re-sends it. Without HL7_OUTBOUND_HOST nothing is sent."""
    report = DeliveryReport()
    host = settings.HL7_OUTBOUND_HOST
    if not host:
        return report
    client: MllpClient | None = None
    try:
        for _ in range(limit):
            moment = now or timezone.now()
            with transaction.atomic():
                message = _next_due(moment)
                if message is None:
                    break
                message.attempts += 1
                message.last_attempt_at = moment
                try:
                    if client is None:
                        client = MllpClient(host, settings.HL7_OUTBOUND_PORT, settings.HL7_OUTBOUND_TIMEOUT_SECONDS)
                    reply = client.send(message.payload)
                except OSError as exc:  # refused, dropped, timed out (MllpError and TimeoutError are OSErrors)
                    if client is not None:
                        client.close()
                        client = None
                    reason = "timeout: no ACK in time" if isinstance(exc, TimeoutError) else f"connection: {exc}"
                    _retry_later(message, reason, moment)
                    report.failed += 1
                    logger.warning(
                        "ORU %s attempt %d failed: %s", message.control_id, message.attempts, type(exc).__name__
                    )
                    break
                ack = read_ack(reply)
                if ack is None or ack.control_id != message.control_id:
                    client.close()
                    client = None
                    _retry_later(message, "the reply is not an ACK of this message", moment)
                    report.failed += 1
                    break
                message.ack_code = ack.code[:2]
                if ack.code in ACCEPTED:
                    message.status, message.sent_at, message.last_error = OutboundStatus.SENT, moment, ""
                    report.sent += 1
                else:
                    message.status, message.last_error = OutboundStatus.ERROR, (ack.text or "refused")[:300]
                    report.refused += 1
                    logger.warning("ORU %s refused by the receiver: %s", message.control_id, ack.code)
                message.save(
                    update_fields=["attempts", "last_attempt_at", "ack_code", "status", "sent_at", "last_error"]
                )
    finally:
        if client is not None:
            client.close()
    return report


# ---------------------------------------------------------------------------------------------------------
# Re-send


@transaction.atomic
def outbound_message_resend(*, message: OutboundMessage, user: User, now: datetime) -> OutboundMessage:
    """Put a refused or retrying message back to pending, due now (the same payload and control id)."""
    locked = OutboundMessage.objects.select_for_update().get(pk=message.pk)
    if locked.status == OutboundStatus.SENT:
        raise Conflict("This message was accepted by the receiver: there is nothing to re-send.")
    locked.status, locked.next_attempt_at = OutboundStatus.PENDING, now
    locked.resent_at, locked.resent_by = now, user
    locked.save(update_fields=["status", "next_attempt_at", "resent_at", "resent_by"])
    return locked
