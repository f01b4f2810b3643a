"""Results out: the ORU^R01 outbox is written with the verification, and delivered over real MLLP sockets to a
receiver that drops the connection, times out and refuses before it accepts: each message arrives (is accepted)
exactly once, and a patient's messages in order. Most tests call the delivery service directly (with `now` moved
past the back-off); the last runs it through a real Celery worker and beat."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

import hl7  # type: ignore[import-untyped]
import hl7.mllp  # type: ignore[import-untyped]
import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from accounts.choices import Role
from labflow import metrics
from results.choices import OutboundStatus
from results.hl7.ack import build_ack, control_id_of, new_control_id
from results.hl7.errors import AckCode, Hl7Error
from results.models import OutboundMessage, Result
from results.outbox import backoff, outbound_message_resend, outbox_deliver, read_ack
from results.selectors import outbound_problems
from results.services import ResultEntry, result_amend, results_enter, results_verify
from results.tasks import deliver_outbound_messages
from tests import factories
from tests.polling import wait_for
from tests.results.helpers import analyte, collected_specimen
from tests.stack import celery_processes

pytestmark = pytest.mark.django_db


@pytest.fixture
def verifier(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "tech.verifier")


def _verified(patient, nurse, technician, verifier, name: str, value: str, unit: str) -> Result:
    specimen = collected_specimen(patient, nurse, name)
    entry = ResultEntry(specimen, analyte(name), value, unit, timezone.now() - timedelta(minutes=30))
    (result,) = results_enter(entries=[entry], user=technician, now=timezone.now())
    results_verify(results=[result], user=verifier, now=timezone.now())
    result.refresh_from_db()
    return result


def _obx(message: OutboundMessage) -> list[hl7.Segment]:
    return list(hl7.parse(message.payload.replace("\r", "\n").strip().replace("\n", "\r")).segments("OBX"))


# ---------------------------------------------------------------------------------------------------------
# Writing


def test_the_message_is_written_in_the_verification_transaction_and_rolls_back_with_it(
    patient_a, nurse_a, technician, verifier
):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    entry = ResultEntry(specimen, analyte("Potassium"), "4.2", "mmol/L", timezone.now())
    (result,) = results_enter(entries=[entry], user=technician, now=timezone.now())

    written: list[int] = []

    def verify_then_fail() -> None:
        with transaction.atomic():
            results_verify(results=[result], user=verifier, now=timezone.now())
            written.append(OutboundMessage.objects.filter(patient=patient_a).count())
            raise RuntimeError("something later in the verifying transaction fails")

    with pytest.raises(RuntimeError):
        verify_then_fail()
    assert written == [1]

    assert not OutboundMessage.objects.exists()
    result.refresh_from_db()
    assert result.status == "preliminary"

    results_verify(results=[result], user=verifier, now=timezone.now())
    (message,) = OutboundMessage.objects.all()
    assert (message.status, message.sequence, message.attempts) == (OutboundStatus.PENDING, 1, 0)
    assert list(message.results.all()) == [result]


def test_the_oru_carries_patient_loinc_ucum_range_flag_status_and_times(patient_a, nurse_a, technician, verifier):
    result = _verified(patient_a, nurse_a, technician, verifier, "Potassium", "6.8", "mmol/L")
    message = OutboundMessage.objects.get()
    parsed = hl7.parse(message.payload)

    msh, pid, obr = parsed.segment("MSH"), parsed.segment("PID"), parsed.segment("OBR")
    assert str(msh[9]) == "ORU^R01^ORU_R01"
    assert str(msh[10]) == message.control_id
    assert str(msh[12]) == "2.5.1"
    assert str(pid[3]) == f"{patient_a.mrn}^^^HOSP^MR"
    assert str(pid[5]) == f"{patient_a.family_name}^{patient_a.given_name}"
    assert str(obr[3]) == f"{result.specimen.accession}^LABFLOW"
    assert str(obr[25]) == "F"
    (obx,) = _obx(message)
    assert str(obx[2]) == "NM"
    assert str(obx[3][0][0]) == "2823-3"
    assert str(obx[3][0][2]) == "LN"
    assert str(obx[5]) == "6.8"
    assert str(obx[6][0][0]) == "mmol/L"
    assert str(obx[6][0][2]) == "UCUM"
    limits = [f"{v.normalize():f}" for v in (result.reference_low, result.reference_high) if v is not None]
    assert str(obx[7]).split("-") == limits
    assert len(limits) == 2
    assert str(obx[8]) == "HH"
    assert str(obx[11]) == "F"
    assert str(obx[14]) == result.observed_at.strftime("%Y%m%d%H%M%S+0000")


def test_a_verified_amendment_is_sent_as_a_correction_after_the_final(patient_a, nurse_a, technician, verifier):
    original = _verified(patient_a, nurse_a, technician, verifier, "Potassium", "6.8", "mmol/L")
    amended = result_amend(
        result=original, value="4.1", unit="mmol/L", reason="Haemolysed sample", user=technician, now=timezone.now()
    )
    assert OutboundMessage.objects.count() == 1  # an unverified amendment is not sent
    results_verify(results=[amended], user=verifier, now=timezone.now())

    first, correction = OutboundMessage.objects.order_by("sequence")
    assert (first.sequence, correction.sequence) == (1, 2)
    assert [str(o[11]) for o in _obx(first)] == ["F"]
    (obx,) = _obx(correction)
    assert (str(obx[5]), str(obx[11])) == ("4.1", "C")
    assert str(hl7.parse(correction.payload).segment("OBR")[25]) == "C"
    assert "Corrected: Haemolysed sample" in correction.payload


def test_without_an_endpoint_messages_stay_pending_and_are_listed(
    settings, client, patient_a, nurse_a, technician, verifier
):
    settings.HL7_OUTBOUND_HOST = ""
    _verified(patient_a, nurse_a, technician, verifier, "Potassium", "4.2", "mmol/L")

    assert deliver_outbound_messages() == 0
    message = OutboundMessage.objects.get()
    assert (message.status, message.attempts) == (OutboundStatus.PENDING, 0)
    client.force_login(technician)
    page = client.get("/results/interface-errors/")
    assert page.status_code == 200
    assert b'data-testid="no-endpoint"' in page.content
    assert message.control_id.encode() in page.content
    assert b"Interface errors" in page.content  # the nav link for lab roles
    client.force_login(nurse_a)
    assert client.get("/results/interface-errors/").status_code == 403


def _outbound_metrics() -> dict[str, float]:
    """The results-out series of /metrics, by state ("sent" for the counter)."""
    values = {}
    for family in metrics._outbound_metrics():
        for sample in family.samples:
            if sample.name.endswith("_sent_total"):
                values["sent"] = sample.value
            elif "state" in sample.labels:
                values[sample.labels["state"]] = sample.value
    return values


# ---------------------------------------------------------------------------------------------------------
# A real MLLP receiver with faults


@dataclass
class Receiver:
    """A scripted EHR: the n-th frame received gets ``script[n]`` (drop, timeout, AR, AE), later ones AA.
    A frame it does not accept is not kept; one it accepts is kept once (by control id, as an EHR dedups)."""

    script: list[str]
    arrivals: list[str] = field(default_factory=list)  # control ids of every frame received, faults included
    accepted: list[str] = field(default_factory=list)
    payloads: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def behaviour(self, text: str) -> str:
        with self.lock:
            control_id = control_id_of(text)
            self.arrivals.append(control_id)
            action = self.script.pop(0) if self.script else "AA"
            if action == "AA":
                self.accepted.append(control_id)
                self.payloads[control_id] = text
            return action


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    """python-hl7's MLLP server (asyncio, in a thread of its own) answering as the script says."""
    state = Receiver(script=["drop", "timeout", "AR", "AE"])

    async def connection(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        try:
            while not writer.is_closing():
                text = str(await reader.readmessage())
                action = state.behaviour(text)
                if action == "drop":
                    writer.close()
                    return
                if action == "timeout":
                    continue  # no ACK: the sender gives up and closes
                code = cast(AckCode, action)
                error = None if code == "AA" else Hl7Error(207, "EHR busy", ack_code=code)
                ack = build_ack(
                    original_text_or_message=text, code=code, error=error, now=timezone.now(),
                    control_id=new_control_id(),
                )  # fmt: skip
                writer.writemessage(hl7.parse(ack))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the sender hung up

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(hl7.mllp.start_hl7_server(connection, "127.0.0.1", 0), loop).result(
        timeout=10
    )
    try:
        yield state, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_every_result_arrives_once_and_in_order_per_patient_through_drops_timeouts_and_refusals(
    settings, receiver, patient_a, patient_b, nurse_a, nurse_b, technician, verifier
):
    state, port = receiver
    settings.HL7_OUTBOUND_HOST, settings.HL7_OUTBOUND_PORT = "127.0.0.1", port
    settings.HL7_OUTBOUND_TIMEOUT_SECONDS = 0.5
    k = _verified(patient_a, nurse_a, technician, verifier, "Potassium", "6.8", "mmol/L")
    _verified(patient_b, nurse_b, technician, verifier, "Potassium", "4.0", "mmol/L")
    _verified(patient_a, nurse_a, technician, verifier, "Creatinine", "1.1", "mg/dL")
    amendment = result_amend(
        result=k, value="4.1", unit="mmol/L", reason="Haemolysed", user=technician, now=k.observed_at
    )
    results_verify(results=[amendment], user=verifier, now=timezone.now())
    _verified(patient_b, nurse_b, technician, verifier, "Creatinine", "0.9", "mg/dL")
    messages = list(OutboundMessage.objects.order_by("patient_id", "sequence"))
    assert len(messages) == 5

    moment: datetime = timezone.now()
    seen_refusals: set[str] = set()
    for _ in range(30):
        outbox_deliver(now=moment)
        for problem in outbound_problems(user=technician):
            if problem.status == OutboundStatus.ERROR:
                seen_refusals.add(problem.ack_code)
                assert problem.last_error  # the ACK's text is kept for the page
                outbound_message_resend(message=problem, user=technician, now=moment)
        if not OutboundMessage.objects.exclude(status=OutboundStatus.SENT).exists():
            break
        moment += timedelta(hours=1)  # past any back-off
    assert not OutboundMessage.objects.exclude(status=OutboundStatus.SENT).exists()

    assert seen_refusals == {"AR", "AE"}
    assert state.script == []  # every fault happened
    by_id = {m.control_id: m for m in messages}
    assert sorted(state.accepted) == sorted(by_id)  # each accepted exactly once
    assert len(state.accepted) == len(set(state.accepted))
    for patient in (patient_a, patient_b):
        # Every frame of a patient, failed attempts included, arrived in the patient's order.
        sequences = [by_id[c].sequence for c in state.arrivals if by_id[c].patient_id == patient.pk]
        assert sequences == sorted(sequences)
        accepted = [by_id[c].sequence for c in state.accepted if by_id[c].patient_id == patient.pk]
        assert accepted == list(range(1, len(accepted) + 1))
    obx_statuses = [str(o[11]) for c in state.accepted if by_id[c].patient_id == patient_a.pk for o in _obx(by_id[c])]
    assert obx_statuses == ["F", "F", "C"]
    assert all(m.attempts >= 1 for m in OutboundMessage.objects.all())


def test_a_refused_message_holds_the_patients_later_ones_until_resent(
    settings, receiver, patient_a, nurse_a, technician, verifier
):
    state, port = receiver
    state.script[:] = ["AR"]
    settings.HL7_OUTBOUND_HOST, settings.HL7_OUTBOUND_PORT = "127.0.0.1", port
    _verified(patient_a, nurse_a, technician, verifier, "Potassium", "4.2", "mmol/L")
    _verified(patient_a, nurse_a, technician, verifier, "Creatinine", "1.1", "mg/dL")
    first, second = OutboundMessage.objects.order_by("sequence")

    report = outbox_deliver()
    assert (report.sent, report.refused) == (0, 1)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.ack_code, first.last_error) == (
        OutboundStatus.ERROR,
        "AR",
        "EHR busy; 207 Application internal error",
    )
    assert (second.status, second.attempts) == (OutboundStatus.PENDING, 0)
    assert state.arrivals == [first.control_id]

    assert _outbound_metrics() == {"sent": 0, "waiting": 1, "retrying": 0, "refused": 1}

    outbound_message_resend(message=first, user=technician, now=timezone.now())
    assert outbox_deliver().sent == 2
    assert _outbound_metrics() == {"sent": 2, "waiting": 0, "retrying": 0, "refused": 0}
    assert state.accepted == [first.control_id, second.control_id]


def test_a_timeout_backs_off_exponentially(settings, receiver, patient_a, nurse_a, technician, verifier):
    state, port = receiver
    state.script[:] = ["timeout", "timeout"]
    settings.HL7_OUTBOUND_HOST, settings.HL7_OUTBOUND_PORT = "127.0.0.1", port
    settings.HL7_OUTBOUND_TIMEOUT_SECONDS = 0.3
    settings.HL7_OUTBOUND_RETRY_BASE_SECONDS = 10
    _verified(patient_a, nurse_a, technician, verifier, "Potassium", "4.2", "mmol/L")
    message = OutboundMessage.objects.get()
    start = timezone.now()

    assert outbox_deliver(now=start).failed == 1
    message.refresh_from_db()
    assert message.next_attempt_at == start + timedelta(seconds=10)
    assert message.last_error.startswith("timeout")
    assert outbox_deliver(now=start + timedelta(seconds=9)).failed == 0  # not due yet: nothing sent
    assert len(state.arrivals) == 1
    second_try = start + timedelta(seconds=10)
    assert outbox_deliver(now=second_try).failed == 1
    message.refresh_from_db()
    assert message.next_attempt_at == second_try + timedelta(seconds=20)
    assert outbox_deliver(now=second_try + timedelta(seconds=20)).sent == 1
    assert backoff(40) == timedelta(seconds=settings.HL7_OUTBOUND_RETRY_MAX_SECONDS)


def test_resend_page_puts_a_refused_message_back_and_refuses_a_sent_one(
    settings, client, receiver, patient_a, nurse_a, technician, verifier
):
    state, port = receiver
    state.script[:] = ["AE"]
    settings.HL7_OUTBOUND_HOST, settings.HL7_OUTBOUND_PORT = "127.0.0.1", port
    _verified(patient_a, nurse_a, technician, verifier, "Potassium", "4.2", "mmol/L")
    outbox_deliver()
    message = OutboundMessage.objects.get()
    client.force_login(technician)
    page = client.get("/results/interface-errors/")
    assert b'data-testid="interface-error-row"' in page.content
    assert b">AE<" in page.content

    response = client.post(f"/results/interface-errors/{message.pk}/resend/")
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.status, message.resent_by) == (OutboundStatus.PENDING, technician)
    outbox_deliver()
    message.refresh_from_db()
    assert message.status == OutboundStatus.SENT
    client.post(f"/results/interface-errors/{message.pk}/resend/", follow=True)
    message.refresh_from_db()
    assert message.status == OutboundStatus.SENT
    assert client.post("/results/interface-errors/999999/resend/").status_code == 404


def test_read_ack_reads_code_control_id_and_error():
    ack = build_ack(
        original_text_or_message="MSH|^~\\&|A|B|C|D|20260101||ORU^R01|X1|P|2.5.1\r",
        code="AE",
        error=Hl7Error(207, "busy"),
        now=timezone.now(),
        control_id="Z",
    )
    parsed = read_ack(ack)
    assert parsed is not None
    assert (parsed.code, parsed.control_id) == ("AE", "X1")
    assert "207" in parsed.text
    assert read_ack("garbage") is None


@pytest.mark.celery_stack
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_and_beat_deliver_each_message_once_in_order_through_faults(
    reference_db, tmp_path, monkeypatch, receiver, patient_a, nurse_a, technician, verifier
):
    state, port = receiver
    state.script[:] = ["drop", "timeout", "AE"]
    for name, value in {
        "HL7_OUTBOUND_HOST": "127.0.0.1",
        "HL7_OUTBOUND_PORT": str(port),
        "HL7_OUTBOUND_TIMEOUT_SECONDS": "0.5",
        "HL7_OUTBOUND_RETRY_BASE_SECONDS": "0.2",
        "HL7_OUTBOUND_RETRY_MAX_SECONDS": "1",
        "HL7_OUTBOUND_INTERVAL_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    first = _verified(patient_a, nurse_a, technician, verifier, "Potassium", "6.8", "mmol/L")
    _verified(patient_a, nurse_a, technician, verifier, "Creatinine", "1.1", "mg/dL")
    amendment = result_amend(
        result=first, value="4.1", unit="mmol/L", reason="Haemolysed", user=technician, now=timezone.now()
    )
    results_verify(results=[amendment], user=verifier, now=timezone.now())
    messages = {m.control_id: m for m in OutboundMessage.objects.all()}
    assert len(messages) == 3

    with celery_processes(tmp_path, django_settings.REDIS_URL) as logs:
        try:
            wait_for(lambda: OutboundMessage.objects.filter(status=OutboundStatus.ERROR).exists(), timeout=60)
            refused = OutboundMessage.objects.get(status=OutboundStatus.ERROR)
            assert refused.ack_code == "AE"
            outbound_message_resend(message=refused, user=technician, now=timezone.now())
            wait_for(lambda: not OutboundMessage.objects.exclude(status=OutboundStatus.SENT).exists(), timeout=60)
        except TimeoutError:
            pytest.fail("not delivered; worker log:\n" + Path(logs["worker"]).read_text()[-3000:])

    assert state.script == []
    assert sorted(state.accepted) == sorted(messages)
    assert len(state.accepted) == len(set(state.accepted))
    assert [messages[c].sequence for c in state.accepted] == [1, 2, 3]
    arrivals = [messages[c].sequence for c in state.arrivals]
    assert arrivals == sorted(arrivals)
    assert "results.deliver_outbound_messages" in Path(logs["worker"]).read_text()
