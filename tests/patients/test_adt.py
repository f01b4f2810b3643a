"""The ADT patient feed (docs/interfaces.md, "ADT in"): A01/A04 create, A08 update (weight → recalculation),
A02 transfer (care-team scope follows), A40 merge (history kept), and the refusals (AE + ERR, nothing written)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import hl7  # type: ignore[import-untyped]
import pghistory
import pghistory.models
import pytest
from django.db import connections
from django.utils import timezone

from monitoring.models import MonitoringTest
from patients.models import Patient, PatientAlias, WardCareTeam
from patients.selectors import patient_by_mrn, patient_list, patient_record_ids
from results.adt import import_adt_message
from results.hl7.adt import parse_adt
from results.hl7.errors import Hl7Error
from results.importing import import_oru_message, interface_user
from results.management.commands.mllp_listen import frame_handler
from results.mllp import MllpClient, serve
from results.models import Result
from tests import factories
from tests.orders.cell_helpers import CAR_T, COI, yescarta_as_labelled
from tests.orders.helpers import first_dose, live_preparation, start_course
from tests.results.helpers import collected_specimen
from tests.results.test_import import TWO_OBX, oru

AUTHORITY = "HOSP"


@pytest.fixture(autouse=True)
def _mrn_authority(settings):
    settings.HL7_MRN_AUTHORITY = AUTHORITY


@pytest.fixture
def wards(team_a, team_b):
    WardCareTeam.objects.create(ward="4A", care_team=team_a)
    WardCareTeam.objects.create(ward="7B", care_team=team_b)


def adt(
    trigger: str,
    mrn: str = "H100200",
    *,
    control_id: str = "ADT0001",
    pid3: str | None = None,
    family: str = "Kowalski",
    birth: str = "19600517",
    sex: str = "F",
    ward: str = "4A",
    weight: str | None = "70",
    height: str | None = "170",
    height_unit: str = "cm",
    mrg: str | None = None,
) -> str:
    """An ADT message: PID-3 with an outside identifier first and our authority's MRN second, as EHRs send them."""
    pid3 = pid3 if pid3 is not None else f"999888^^^NATIONAL^NI~{mrn}^^^{AUTHORITY}^MR"
    segments = [
        f"MSH|^~\\&|EHR|HOSPITAL|LABFLOW|ONC|20261201101500+0000||ADT^{trigger}^ADT_A01|{control_id}|P|2.5.1",
        f"EVN|{trigger}|20261201101400+0000",
        f"PID|1||{pid3}||{family}^Anna||{birth}|{sex}",
    ]
    if mrg is not None:
        segments.append(f"MRG|{mrg}")
    segments.append(f"PV1|1|I|{ward}^12^1")
    if weight is not None:
        segments.append(f"OBX|1|NM|29463-7^Body weight^LN||{weight}|kg|||||F")
    if height is not None:
        segments.append(f"OBX|2|NM|8302-2^Body height^LN||{height}|{height_unit}|||||F")
    return "\r".join(segments) + "\r"


def send(text: str):
    with pghistory.context(interface="mllp"):
        return import_adt_message(text, now=timezone.now())


def ack_parts(ack: str) -> tuple[str, str, str]:
    """MSA-1, ERR-3.1 and ERR-8 (the code and the text the sender sees)."""
    message = hl7.parse(ack)
    err = message.segments("ERR")[0] if "\rERR|" in ack else None
    return str(message.segment("MSA")[1]), str(err[3][0][0]) if err else "", str(err[8]) if err else ""


def snapshot() -> tuple[int, int, int, list[tuple]]:
    return (
        Patient.objects.count(),
        PatientAlias.objects.count(),
        pghistory.models.Events.objects.count(),
        list(Patient.objects.order_by("pk").values_list("mrn", "care_team", "weight_kg", "ward", "merged_into")),
    )


# ---------------------------------------------------------------------------------------------------------
# Events


@pytest.mark.django_db
def test_a01_creates_the_patient_in_the_wards_care_team_under_the_listeners_audit_context(wards, team_a):
    outcome = send(adt("A01"))

    assert ack_parts(outcome.ack) == ("AA", "", "")
    assert "MSA|AA|ADT0001" in outcome.ack
    patient = Patient.objects.get(mrn="H100200")  # the HOSP repetition, not the national identifier first
    assert (patient.family_name, patient.given_name, patient.birth_date, patient.sex) == (
        "Kowalski", "Anna", date(1960, 5, 17), "F"
    )  # fmt: skip
    assert (patient.weight_kg, patient.height_cm, patient.ward, patient.care_team) == (
        Decimal("70.0"), Decimal("170.0"), "4A", team_a
    )  # fmt: skip
    event = pghistory.models.Events.objects.references(patient).get()
    assert event.pgh_context["interface"] == "mllp"

    # A resent admission of the same person changes nothing and is accepted.
    assert ack_parts(send(adt("A01")).ack)[0] == "AA"
    assert Patient.objects.filter(mrn="H100200").count() == 1


@pytest.mark.django_db
def test_a04_registers_and_a31_updates_demographics(wards):
    assert ack_parts(send(adt("A04", weight="65.4", height="1.62", height_unit="m")).ack)[0] == "AA"
    text = adt("A31", family="Kowalska", weight=None, height=None).replace("OBX", "XXX")
    assert ack_parts(send(text).ack)[0] == "AA"
    patient = Patient.objects.get(mrn="H100200")
    assert patient.family_name == "Kowalska"
    assert (patient.weight_kg, patient.height_cm) == (Decimal("65.4"), Decimal("162.0"))  # m → cm


@pytest.mark.django_db
def test_a08_weight_change_of_ten_percent_flags_open_preparations(wards, team_a, oncologist_a):
    patient = factories.make_patient(team_a, mrn="H100200", family_name="Kowalski", birth_date=date(1960, 5, 17))
    prep = live_preparation(first_dose(start_course(patient, oncologist_a, "Ipilimumab 3 mg/kg q3w x4")))
    assert prep.recalculation_needed is False

    assert ack_parts(send(adt("A08", weight="75")).ack)[0] == "AA"  # +7 %: below the 10 % rule
    prep.refresh_from_db()
    assert prep.recalculation_needed is False

    assert ack_parts(send(adt("A08", weight="77", control_id="ADT0002")).ack)[0] == "AA"  # +10 % of 70
    patient.refresh_from_db()
    prep.refresh_from_db()
    assert patient.weight_kg == Decimal("77.0")
    assert prep.recalculation_needed is True


@pytest.mark.django_db
def test_a02_transfer_moves_the_patient_to_the_new_wards_team_and_nurse_scope_follows(wards, team_a, nurse_a, nurse_b):
    send(adt("A01"))
    patient = Patient.objects.get(mrn="H100200")
    assert patient in patient_list(user=nurse_a)
    assert patient not in patient_list(user=nurse_b)

    assert ack_parts(send(adt("A02", ward="7B", control_id="ADT0002")).ack)[0] == "AA"

    patient.refresh_from_db()
    assert patient.ward == "7B"
    assert patient not in patient_list(user=nurse_a)
    assert patient in patient_list(user=nurse_b)

    assert ack_parts(send(adt("A03", ward="7B", control_id="ADT0003")).ack)[0] == "AA"
    patient.refresh_from_db()
    assert patient.discharged_at is not None
    assert patient in patient_list(user=nurse_b)


@pytest.mark.django_db
def test_a40_merge_keeps_both_records_their_rows_and_history_and_the_old_mrn_resolves(wards, team_a, team_b):
    survivor = factories.make_patient(team_a, mrn="H100200", family_name="Kowalski", birth_date=date(1960, 5, 17))
    prior = factories.make_patient(team_b, mrn="H555000", family_name="Kowalsky")
    test = factories.make_test(prior)
    prior_events = pghistory.models.Events.objects.references(prior).count()

    outcome = send(adt("A40", mrg=f"H555000^^^{AUTHORITY}^MR"))

    assert ack_parts(outcome.ack)[0] == "AA"
    prior.refresh_from_db()
    assert prior.merged_into == survivor
    assert prior.merged_at is not None
    assert prior.mrn == "H555000"
    assert prior.family_name == "Kowalsky"
    assert prior.care_team == team_a  # its rows are seen by the survivor's team
    assert MonitoringTest.objects.get(pk=test.pk).patient_id == prior.pk  # the clinical row is untouched
    assert set(patient_record_ids(survivor)) == {survivor.pk, prior.pk}
    assert PatientAlias.objects.get(mrn="H555000").patient == survivor
    assert patient_by_mrn("H555000") == survivor
    assert pghistory.models.Events.objects.references(prior).count() > prior_events  # the merge is audited

    assert ack_parts(send(adt("A40", mrg=f"H555000^^^{AUTHORITY}^MR")).ack)[0] == "AA"  # a resend is a no-op
    assert PatientAlias.objects.count() == 1
    # The merged MRN no longer takes updates of its own.
    code, err, text = ack_parts(send(adt("A08", "H555000", control_id="ADT9")).ack)
    assert (code, err) == ("AE", "205")
    assert "merged record" in text


# ---------------------------------------------------------------------------------------------------------
# Refusals: AE with an ERR that says what and where, and nothing written


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("message", "error", "words"),
    [
        (lambda: adt("A01", ward="9Z"), "204", "PV1-3 ward has no care-team mapping"),
        (lambda: adt("A01", pid3="H100200^^^OTHER^MR"), "101", "PID-3 has no identifier of the configured"),
        (lambda: adt("A01", pid3=f"H1^^^{AUTHORITY}^MR~H2^^^{AUTHORITY}^MR"), "205", "conflicting identifiers"),
        (lambda: adt("A01", birth="19700101"), "205", "PID-7 birth date"),
        (lambda: adt("A01", "H777777", weight=None), "101", "OBX body weight"),
        (lambda: adt("A08", "H999999"), "204", "PID-3 names no known patient"),
        (lambda: adt("A02", ward="9Z"), "204", "PV1-3 ward has no care-team mapping"),
        (lambda: adt("A08", weight="abc"), "102", "OBX-5 body weight is not a number"),
        (lambda: adt("A08", weight="900"), "102", "OBX-5"),
        (lambda: adt("A40", mrg=f"H100200^^^{AUTHORITY}^MR"), "205", "same record"),
        (lambda: adt("A40", mrg=f"H404404^^^{AUTHORITY}^MR"), "204", "MRG-1 names no known patient"),
    ],
)
def test_refusals_are_ae_with_the_reason_and_write_nothing(wards, team_a, message, error, words):
    factories.make_patient(team_a, mrn="H100200", family_name="Kowalski", birth_date=date(1960, 5, 17))
    before = snapshot()

    code, err, text = ack_parts(send(message()).ack)

    assert (code, err) == ("AE", error)
    assert words in text
    assert snapshot() == before


@pytest.mark.django_db
def test_a40_of_a_patient_on_an_active_cell_therapy_course_is_refused(wards, team_a, oncologist_a):
    survivor = factories.make_patient(team_a, mrn="H100200", family_name="Kowalski", birth_date=date(1960, 5, 17))
    prior = factories.make_patient(team_a, mrn="H555000")
    yescarta_as_labelled()
    start_course(prior, oncologist_a, CAR_T, chain_of_identity=COI)
    before = snapshot()

    code, err, text = ack_parts(send(adt("A40", mrg=f"H555000^^^{AUTHORITY}^MR")).ack)

    assert (code, err) == ("AE", "207")
    assert "MRG-1: the patient is on an active cell-therapy course" in text
    assert snapshot() == before
    assert Patient.objects.get(pk=prior.pk).merged_into is None
    assert survivor.merged_records.count() == 0


@pytest.mark.django_db
def test_without_a_configured_mrn_authority_every_adt_message_is_refused(wards, settings):
    settings.HL7_MRN_AUTHORITY = ""
    code, err, text = ack_parts(send(adt("A01")).ack)
    assert (code, err) == ("AE", "207")
    assert "HL7_MRN_AUTHORITY" in text
    assert not Patient.objects.exists()


@pytest.mark.django_db
def test_an_unsupported_adt_event_is_rejected_ar(wards):
    code, err, _ = ack_parts(send(adt("A05")).ack)
    assert (code, err) == ("AR", "201")
    assert not Patient.objects.exists()


# ---------------------------------------------------------------------------------------------------------
# Through a real MLLP socket, as `mllp_listen` runs it


@pytest.mark.django_db(transaction=True)
def test_adt_and_oru_share_the_listener_over_a_real_socket(reference_db, wards, team_a, team_b, nurse_b):
    user = interface_user()
    stop, ready = threading.Event(), threading.Event()
    bound: list[tuple[str, int]] = []

    listen = frame_handler(user)  # the handler `manage.py mllp_listen` serves

    def handler(text: str) -> str:
        try:
            return listen(text)
        finally:
            connections.close_all()  # the server thread's connection, so the test database can be flushed

    thread = threading.Thread(target=serve, args=("127.0.0.1", 0, handler),
                              kwargs={"ready": ready, "stop": stop, "bound": bound}, daemon=True)  # fmt: skip
    thread.start()
    assert ready.wait(10)
    try:
        with MllpClient(*bound[0]) as client:
            assert ack_parts(client.send(adt("A01")))[0] == "AA"
            assert ack_parts(client.send(adt("A02", ward="7B", control_id="ADT0002")))[0] == "AA"
            refused = client.send(adt("A02", ward="9Z", control_id="ADT0003"))
            assert ack_parts(refused)[:2] == ("AE", "204")
            assert "MSA|AE|ADT0003" in refused
            # An ORU on the same connection still goes to the results import (unknown patient: AE 204 there).
            oru = client.send(
                "MSH|^~\\&|LIS|LAB|LABFLOW|ONC|20261201101500||ORU^R01|ORU1|P|2.5.1\r"
                "PID|1||NOBODY^^^HOSP^MR||Doe^Jane||19800214|F\r"
                "OBR|1|PL1|FL1|24323-8^CMP^LN\rOBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F\rSPM|1|A1\r"
            )
            assert ack_parts(oru)[:2] == ("AE", "204")
            assert "Unknown patient identifier" in oru
    finally:
        stop.set()
        thread.join(10)
    patient = Patient.objects.get(mrn="H100200")
    contexts = {e.pgh_context["interface"] for e in pghistory.models.Events.objects.references(patient)}
    assert contexts == {"mllp"}
    assert patient.ward == "7B"
    assert patient.care_team == team_b
    assert patient in patient_list(user=nurse_b)


@pytest.mark.django_db
def test_after_a40_a_result_for_the_merged_records_specimen_is_taken_under_the_survivors_mrn(wards, team_a, nurse_a):
    survivor = factories.make_patient(team_a, mrn="H100200", family_name="Kowalski", birth_date=date(1960, 5, 17))
    prior = factories.make_patient(team_a, mrn="H555000")
    specimen = collected_specimen(prior, nurse_a, "Comprehensive metabolic panel")
    stranger = factories.make_patient(team_a)
    other = collected_specimen(stranger, nurse_a, "Comprehensive metabolic panel")
    user, now = interface_user(), timezone.now()

    assert import_oru_message(oru(survivor, specimen, TWO_OBX), user=user, now=now).error.endswith("another patient.")
    assert ack_parts(send(adt("A40", mrg=f"H555000^^^{AUTHORITY}^MR")).ack)[0] == "AA"

    outcome = import_oru_message(oru(survivor, specimen, TWO_OBX, "MSG2"), user=user, now=now)
    assert (outcome.error, outcome.stored) == ("", 2)
    assert set(Result.objects.values_list("specimen__patient", flat=True)) == {prior.pk}  # on the specimen's record
    refused = import_oru_message(oru(survivor, other, TWO_OBX, "MSG3"), user=user, now=now)
    assert "another patient" in refused.error  # a record not merged into the survivor is still another patient


# ---------------------------------------------------------------------------------------------------------
# Parsing alone (no database)


def test_parse_reads_the_configured_authoritys_mrn_units_event_time_and_the_merged_mrn():
    text = adt("A40", pid3=f"X1^^^OTHER^MR~H100200^^^{AUTHORITY}^MR", weight="71500", mrg=f"H555000^^^{AUTHORITY}^MR")
    event = parse_adt(text.replace("|kg|", "|g|"), mrn_authority=AUTHORITY)
    assert (event.trigger, event.patient.mrn, event.prior_mrn) == ("A40", "H100200", "H555000")
    assert (event.patient.weight_kg, event.patient.height_cm, event.patient.ward) == (
        Decimal("71.5"), Decimal("170.0"), "4A"
    )  # fmt: skip
    assert event.event_at == datetime(2026, 12, 1, 10, 14, tzinfo=UTC)  # EVN-2, not MSH-7


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        (adt("A01", sex="X"), 103, "PID-8"),
        (adt("A01", weight="70").replace("|kg|", "|lb|"), 103, "OBX-6 body weight unit"),
        (adt("A01", birth="1960-05-17"), 102, "PID-7"),
        (adt("A40"), 100, "no MRG segment"),
        (adt("A40", mrg="H555000^^^OTHER^MR"), 101, "MRG-1 has no identifier of the configured"),
    ],
)
def test_parse_refuses_what_it_cannot_read(text, code, words):
    with pytest.raises(Hl7Error) as refused:
        parse_adt(text, mrn_authority=AUTHORITY)
    assert refused.value.code == code
    assert words in refused.value.message
