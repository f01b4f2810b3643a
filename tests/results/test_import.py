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
from results.importing import import_oru_message, interface_user
from results.mllp import send, serve
from results.models import Result
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


@pytest.fixture
def mllp_server(reference_db):
    user = interface_user()
    stop, ready = threading.Event(), threading.Event()
    bound: list[tuple[str, int]] = []

    def handler(text: str) -> str:
        try:
            return import_oru_message(text, user=user, now=timezone.now()).ack
        finally:
            connections.close_all()

    thread = threading.Thread(target=serve, args=("127.0.0.1", 0, handler),
                              kwargs={"ready": ready, "stop": stop, "bound": bound}, daemon=True)  # fmt: skip
    thread.start()
    assert ready.wait(10)
    yield bound[0]
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
