"""HL7 v2 over a real MLLP socket, and file import (HL7 and CSV)."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path

import hl7  # type: ignore[import-untyped]
import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from accounts.choices import Role
from results.importing import import_hl7_frame, import_oru_message, interface_user
from results.mllp import send, serve
from results.models import InboundMessage, Result
from tests import factories
from tests.results.helpers import collected_specimen


def oru(patient, specimen, observations, control_id="MSG0001"):
    obx = "\r".join(
        f"OBX|{i}|NM|{code}^{name}^LN||{value}|{unit}|||||F|||20261122101500+0000"
        for i, (code, name, value, unit) in enumerate(observations, start=1)
    )
    return (
        f"MSH|^~\\&|ANALYZER|CORE LAB|LABFLOW|ONCOLOGY|20261122102000+0000||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r"
        f"PID|1||{patient.mrn}^^^HOSP^MR||{patient.family_name}^{patient.given_name}||19600517|F\r"
        f"OBR|1|PL1|{specimen.accession}|24323-8^Comprehensive metabolic panel^LN|||20261122093000+0000\r"
        f"{obx}\r"
        f"SPM|1|{specimen.accession}||SER^Serum^HL70487\r"
    )


TWO_OBX = [("2823-3", "Potassium", "4.1", "mmol/L"), ("2160-0", "Creatinine", "88", "umol/L")]


def _msa(ack: str) -> tuple[str, str]:
    message = hl7.parse(ack.replace("\n", "\r"))
    return str(message.segment("MSA")[1]), str(message.segment("MSA")[2])


def _listener(handler_barrier: threading.Barrier | None = None):
    """An MLLP listener as `mllp_listen` runs it (its own thread, its own database connection)."""
    user = interface_user()
    stop, ready = threading.Event(), threading.Event()
    bound: list[tuple[str, int]] = []

    def handler(text: str) -> str:
        try:
            if handler_barrier is not None:
                handler_barrier.wait(10)  # both listeners have the message before either stores it
            return import_hl7_frame(text, user=user, now=timezone.now())[0]
        finally:
            connections.close_all()

    thread = threading.Thread(target=serve, args=("127.0.0.1", 0, handler),
                              kwargs={"ready": ready, "stop": stop, "bound": bound}, daemon=True)  # fmt: skip
    thread.start()
    assert ready.wait(10)
    return bound[0], stop, thread


@pytest.fixture
def mllp_server(reference_db):
    address, stop, thread = _listener()
    yield address
    stop.set()
    thread.join(10)


@pytest.mark.django_db(transaction=True)
def test_oru_with_two_obx_over_mllp_is_stored_and_acked_aa(mllp_server, team_a):
    nurse = factories.make_user(Role.NURSE, team_a)
    patient = factories.make_patient(team_a)
    specimen = collected_specimen(patient, nurse, "Comprehensive metabolic panel")
    host, port = mllp_server

    ack = send(host, port, oru(patient, specimen, TWO_OBX))
    assert _msa(ack) == ("AA", "MSG0001")
    stored = {r.lab_test.name: r for r in Result.objects.select_related("lab_test")}
    assert set(stored) == {"Potassium", "Creatinine"}
    assert stored["Creatinine"].value_numeric == pytest.approx(1.0, abs=0.01)  # 88 umol/L in mg/dL
    assert stored["Potassium"].source == "hl7"
    assert stored["Potassium"].message_control_id == "MSG0001"
    assert stored["Potassium"].status == "preliminary"

    assert _msa(send(host, port, oru(patient, specimen, TWO_OBX))) == ("AA", "MSG0001")  # a resend
    assert Result.objects.count() == 2

    bad = oru(patient, specimen, [("2951-2", "Sodium", "140", "mmol/L"), ("99999-9", "Mystery", "1", "U/L")], "MSG2")
    ack = send(host, port, bad)
    code, control = _msa(ack)
    assert (code, control) == ("AE", "MSG2")
    err = hl7.parse(ack.replace("\n", "\r")).segment("ERR")
    assert "204" in str(err[3])
    assert "Unknown test code" in ack
    assert Result.objects.count() == 2  # the sodium of the bad message was not stored either


@pytest.mark.django_db
def test_unknown_patient_specimen_mismatch_and_bad_unit_are_refused(team_a, nurse_a, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    other = factories.make_patient(team_a)
    user = interface_user()
    now = timezone.now()
    outcome = import_oru_message(oru(other, specimen, TWO_OBX), user=user, now=now)
    assert _msa(outcome.ack)[0] == "AE"
    assert "another patient" in outcome.error
    outcome = import_oru_message(oru(patient_a, specimen, [("2823-3", "Potassium", "4.1", "U/L")]), user=user, now=now)
    assert _msa(outcome.ack)[0] == "AE"
    assert "Cannot convert" in outcome.error
    outcome = import_oru_message("garbage", user=user, now=now)
    assert _msa(outcome.ack)[0] == "AR"
    assert not Result.objects.exists()


@pytest.mark.django_db
def test_import_results_command_reads_hl7_and_csv(tmp_path: Path, team_a, nurse_a, patient_a):
    cmp_specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    cbc_specimen = collected_specimen(patient_a, nurse_a, "CBC with differential")
    hl7_file = tmp_path / "batch.hl7"
    hl7_file.write_text(oru(patient_a, cmp_specimen, TWO_OBX) + "\n")
    csv_file = tmp_path / "cbc.csv"
    when = (timezone.now() - timedelta(hours=1)).isoformat()
    csv_file.write_text(
        "accession,mrn,loinc,value,unit,observed_at\n"
        f"{cbc_specimen.accession},{patient_a.mrn},6690-2,5.2,10*3/uL,{when}\n"
        f"{cbc_specimen.accession},{patient_a.mrn},777-3,40,10^9/L,{when}\n"
        f"999999999,{patient_a.mrn},777-3,40,10^9/L,{when}\n"
    )
    out, err = StringIO(), StringIO()
    call_command("import_results", str(hl7_file), str(csv_file), "--no-progress", stdout=out, stderr=err)
    assert "Stored 4 results; refused 1" in out.getvalue()
    assert "unknown accession" in err.getvalue()
    platelets = Result.objects.get(lab_test__name="Platelets")
    assert platelets.flag == "L"
    assert platelets.ctcae_grade == 3  # 40 x 10^9/L: "<50,000 - 25,000/mm3"


@pytest.mark.django_db(transaction=True)
def test_two_listeners_receiving_the_same_message_at_once_both_ack_aa_and_store_it_once(reference_db, team_a):
    nurse = factories.make_user(Role.NURSE, team_a)
    patient = factories.make_patient(team_a)
    specimen = collected_specimen(patient, nurse, "Comprehensive metabolic panel")
    barrier = threading.Barrier(2)
    listeners = [_listener(barrier), _listener(barrier)]
    message = oru(patient, specimen, TWO_OBX, "SAME-1")
    acks: list[str] = []
    try:
        senders = [
            threading.Thread(target=lambda address=address: acks.append(send(address[0], address[1], message)))
            for address, _, _ in listeners
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(20)
    finally:
        for _, stop, thread in listeners:
            stop.set()
            thread.join(10)
    assert sorted(_msa(a) for a in acks) == [("AA", "SAME-1"), ("AA", "SAME-1")]
    assert sum("Duplicate" in a for a in acks) == 1
    assert Result.objects.count() == 2
    assert InboundMessage.objects.get(control_id="SAME-1").results_stored == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_over_mllp_gets_a_batch_of_acks(reference_db, team_a):
    nurse = factories.make_user(Role.NURSE, team_a)
    patient = factories.make_patient(team_a)
    specimen = collected_specimen(patient, nurse, "Comprehensive metabolic panel")
    batch = (
        "FHS|^~\\&|ANALYZER\rBHS|^~\\&|ANALYZER||||20261122||||BATCH-9\r"
        + oru(patient, specimen, TWO_OBX[:1], "B-1")
        + oru(patient, specimen, [("99999-9", "Mystery", "1", "U/L")], "B-2")
        + "BTS|2\rFTS|1\r"
    )
    address, stop, thread = _listener()
    try:
        reply = send(address[0], address[1], batch)
    finally:
        stop.set()
        thread.join(10)
    ids = [s.split("|")[0] for s in reply.split("\r") if s]
    assert ids == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "ERR", "BTS", "FTS"]
    assert "MSA|AA|B-1" in reply
    assert "MSA|AE|B-2" in reply
    assert "|BATCH-9\r" in reply
    assert Result.objects.count() == 1


@pytest.mark.django_db
def test_import_results_reads_an_fhs_bhs_batch_file(tmp_path: Path, team_a, nurse_a, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    other_sender = oru(patient_a, specimen, TWO_OBX[1:], "MSG0001").replace("|ANALYZER|", "|SECOND ANALYZER|")
    batch = tmp_path / "batch.hl7"
    batch.write_text(
        "FHS|^~\\&|ANALYZER\nBHS|^~\\&|ANALYZER\n"
        + oru(patient_a, specimen, TWO_OBX[:1], "MSG0001").replace("\r", "\n")
        + oru(patient_a, specimen, TWO_OBX[:1], "MSG0001").replace("\r", "\n")  # the same message again
        + other_sender.replace("\r", "\n")  # another sender reusing the control id
        + "BTS|3\nFTS|1\n"
    )
    out, err = StringIO(), StringIO()
    call_command("import_results", str(batch), "--no-progress", stdout=out, stderr=err)
    assert "Stored 2 results; refused 0" in out.getvalue()
    assert InboundMessage.objects.filter(control_id="MSG0001").count() == 2
    assert {r.lab_test.name for r in Result.objects.select_related("lab_test")} == {"Potassium", "Creatinine"}
