"""HL7 v2 ORU^R01 parsing and ACK building (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hl7  # type: ignore[import-untyped]
import pytest

from results.hl7 import (
    Hl7Error,
    OruMessage,
    acknowledge,
    build_ack,
    control_id_of,
    escape,
    new_control_id,
    parse_oru,
    parse_timestamp,
    split_batch,
)

NOW = datetime(2024, 3, 5, 10, 30, tzinfo=UTC)

SEGMENTS = [
    "MSH|^~\\&|COBAS|CENTRAL LAB^1.2.3.4^ISO|LABFLOW|ONCOLOGY|20240305101500+0100||ORU^R01^ORU_R01|MSG00001|P|2.5.1",
    "PID|1||H12345^^^HOSP^MR~999-88-7777^^^SSA^SS||Doe^Jane^Q||19800214|F",
    "PV1|1|O|ONC^4A",
    "ORC|RE|PL778|FL991",
    "OBR|1|PL778|FL991|24323-8^Comprehensive metabolic panel^LN|||20240305080000+0100",
    "OBX|1|NM|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN||5.9|mmol/L^^UCUM|3.5-5.1|H|||F|||"
    "20240305100000+0100",
    "NTE|1|L|Haemolysed sample \\T\\ repeat advised",
    "OBX|2|NM|2160-0^Creatinine [Mass/volume] in Serum or Plasma^LN||1.1|mg/dL|0.6-1.2|N|||F|||20240305100000",
    "SPM|1|A24000123^F998877||SER^Serum^HL70487|||||||||||||20240305074500+0100",
]
ORU = "\r".join(SEGMENTS) + "\r"


def oru(*, replace: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> str:
    """The sample message with whole segments replaced (by segment ID + set id prefix) or dropped."""
    out = []
    for segment in SEGMENTS:
        key = next((k for k in (replace or {}) if segment.startswith(k)), None)
        if segment[:3] in drop:
            continue
        out.append(replace[key] if replace and key else segment)
    return "\r".join(out) + "\r"


def parse_back(ack: str) -> hl7.Message:
    return hl7.parse(ack)


# ---------------------------------------------------------------------------------------------------------
# parse_oru


@pytest.mark.parametrize(
    "text",
    [
        ORU,
        ORU.replace("\r", "\n"),
        ORU.replace("\r", "\r\n"),
        "\x0b" + ORU + "\x1c\r",
        "\ufeff" + ORU.replace("\r", "\n") + "\n\n",
        ORU.encode("utf-8"),
    ],
    ids=["cr", "lf", "crlf", "mllp", "bom-blank-lines", "bytes"],
)
def test_parse_realistic_oru(text):
    message = parse_oru(text)

    assert isinstance(message, OruMessage)
    assert message.control_id == "MSG00001"
    assert message.sending_application == "COBAS"
    assert message.sending_facility == "CENTRAL LAB"
    assert message.receiving_application == "LABFLOW"
    assert message.message_type == "ORU^R01"
    assert message.version == "2.5.1"
    assert message.processing_id == "P"
    assert message.patient_mrn == "H12345"
    assert (message.patient_family, message.patient_given) == ("Doe", "Jane")
    assert message.patient_birth_date == date(1980, 2, 14)
    assert message.accession == "A24000123"
    assert message.collected_at == datetime(2024, 3, 5, 6, 45, tzinfo=UTC)

    potassium, creatinine = message.observations
    assert potassium.set_id == "1"
    assert potassium.loinc_code == "2823-3"
    assert potassium.coding_system == "LN"
    assert potassium.name == "Potassium [Moles/volume] in Serum or Plasma"
    assert potassium.value_type == "NM"
    assert potassium.value == "5.9"
    assert potassium.unit == "mmol/L"
    assert potassium.reference_range == "3.5-5.1"
    assert potassium.abnormal_flags == "H"
    assert potassium.status == "F"
    assert potassium.observed_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    assert potassium.observed_at.utcoffset() == timedelta(hours=1)
    assert potassium.accession == "A24000123"
    assert potassium.notes == ["Haemolysed sample & repeat advised"]

    assert creatinine.loinc_code == "2160-0"
    assert (creatinine.value, creatinine.unit, creatinine.abnormal_flags) == ("1.1", "mg/dL", "N")
    assert creatinine.notes == []
    # No offset: UTC by default.
    assert creatinine.observed_at == datetime(2024, 3, 5, 10, 0, tzinfo=UTC)


def test_naive_timestamps_in_the_given_zone():
    message = parse_oru(ORU, tz=ZoneInfo("Europe/Berlin"))

    creatinine = message.observations[1]
    assert creatinine.observed_at is not None
    assert creatinine.observed_at.utcoffset() == timedelta(hours=1)  # CET in March
    assert creatinine.observed_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    # An explicit offset wins over the zone.
    assert message.observations[0].observed_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)


def test_mrn_prefers_the_mr_typed_repetition_else_the_first():
    typed_second = oru(replace={"PID": "PID|1||999-88-7777^^^SSA^SS~H777^^^HOSP^MR||Doe^Jane"})
    assert parse_oru(typed_second).patient_mrn == "H777"

    untyped = oru(replace={"PID": "PID|1||H555~H556||Doe^Jane"})
    assert parse_oru(untyped).patient_mrn == "H555"


def test_accession_falls_back_to_filler_then_placer_order_number():
    spm_filler_only = oru(replace={"SPM": "SPM|1|^F998877||SER"})
    assert parse_oru(spm_filler_only).accession == "F998877"

    no_spm = oru(drop=("SPM",))
    assert parse_oru(no_spm).accession == "FL991"
    assert parse_oru(no_spm).collected_at == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)  # OBR-7

    placer_only = oru(drop=("SPM",), replace={"OBR": "OBR|1|PL778||24323-8^CMP^LN"})
    assert parse_oru(placer_only).accession == "PL778"


def test_each_observation_carries_the_accession_of_its_obr_group():
    text = ORU + "OBR|2|PL779|FL992|58410-2^CBC panel^LN\rOBX|1|NM|718-7^Haemoglobin^LN||9.8|g/dL|12-16|L|||P\r"

    message = parse_oru(text)

    assert [o.accession for o in message.observations] == ["A24000123", "A24000123", "FL992"]
    assert message.observations[2].status == "P"
    assert message.accession == "A24000123"


def test_escape_sequences_in_values_are_decoded():
    text = oru(
        replace={
            "OBX|2": "OBX|2|ST|2160-0^Creatinine^LN||see \\F\\ note \\S\\ a \\T\\ b \\R\\ c \\E\\ d \\X41\\||||||C",
        }
    )

    observation = parse_oru(text).observations[1]

    assert observation.value == "see | note ^ a & b ~ c \\ d A"
    assert observation.status == "C"


def test_structured_numeric_coded_and_text_values():
    text = oru(
        replace={
            "OBX|1": "OBX|1|SN|1988-5^CRP^LN||<^5|mg/L||N|||F",
            "OBX|2": "OBX|2|CWE|1234-5^Culture^LN||POS^Positive^L||||||F",
        }
    )
    text += "OBX|3|TX|8251-1^Comment^LN||line one~line two||||||F\r"

    sn, coded, tx = parse_oru(text).observations

    assert sn.value == "<5"
    assert coded.value == "Positive"
    assert tx.value == "line one\nline two"


def test_loinc_from_the_alternate_identifier_and_local_codes_kept():
    text = oru(
        replace={
            "OBX|1": "OBX|1|NM|K^Potassium^L^2823-3^Potassium^LN||5.9|mmol/L|||||F",
            "OBX|2": "OBX|2|NM|CREA^Creatinine^99LAB||1.1|mg/dL|||||F",
        }
    )

    alternate, local = parse_oru(text).observations

    assert (alternate.loinc_code, alternate.code, alternate.coding_system) == ("2823-3", "K", "L")
    assert (local.loinc_code, local.code, local.coding_system) == ("", "CREA", "99LAB")


def test_missing_pid3_is_required_field_missing():
    with pytest.raises(Hl7Error) as caught:
        parse_oru(oru(replace={"PID": "PID|1||||Doe^Jane||19800214|F"}))

    error = caught.value
    assert (error.code, error.segment, error.sequence, error.field) == (101, "PID", 1, 3)
    assert error.ack_code == "AE"
    assert error.location == "PID^1^3"


def test_wrong_message_type_is_unsupported():
    adt = ORU.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01")

    with pytest.raises(Hl7Error) as caught:
        parse_oru(adt)

    assert (caught.value.code, caught.value.segment, caught.value.field) == (200, "MSH", 9)
    assert caught.value.ack_code == "AR"


def test_wrong_event_is_unsupported_event():
    with pytest.raises(Hl7Error) as caught:
        parse_oru(ORU.replace("ORU^R01^ORU_R01", "ORU^R30"))
    assert caught.value.code == 201


def test_missing_control_id():
    with pytest.raises(Hl7Error) as caught:
        parse_oru(ORU.replace("|MSG00001|", "||"))
    assert (caught.value.code, caught.value.segment, caught.value.field) == (101, "MSH", 10)


@pytest.mark.parametrize(
    ("text", "code", "segment"),
    [
        (oru(drop=("OBX", "NTE")), 100, "OBX"),
        (oru(drop=("PID",)), 100, "PID"),
        ("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rPID|1||H1\rOBX|1|NM|2823-3^K^LN||5|mmol/L||||F\r", 100, "OBX"),
        ("not an hl7 message at all", 100, "MSH"),
        ("", 100, "MSH"),
        (ORU.replace("|P|2.5.1", "|P|3.0"), 203, "MSH"),
        (ORU.replace("|P|2.5.1", "|Q|2.5.1"), 202, "MSH"),
        (ORU + ORU, 100, "MSH"),
    ],
    ids=["no-obx", "no-pid", "obx-before-obr", "garbage", "empty", "version", "processing-id", "two-messages"],
)
def test_structural_errors(text, code, segment):
    with pytest.raises(Hl7Error) as caught:
        parse_oru(text)
    assert (caught.value.code, caught.value.segment) == (code, segment)


@pytest.mark.parametrize(
    ("replacement", "code", "field"),
    [
        ("OBX|2|NM|2160-0^Creatinine^LN||1.1|mg/dL|||||F|||2024-03-05", 102, 14),
        ("OBX|2|NM|2160-0^Creatinine^LN||one point one|mg/dL|||||F", 102, 5),
        ("OBX|2|NM|2160-0^Creatinine^LN||1.1|mg/dL|||||Z", 103, 11),
        ("OBX|2|NM|2160-0^Creatinine^LN||1.1|mg/dL", 101, 11),
        ("OBX|2|NM|||1.1|mg/dL|||||F", 101, 3),
        ("OBX|2|QQ|2160-0^Creatinine^LN||1.1|mg/dL|||||F", 103, 2),
    ],
    ids=["timestamp", "numeric", "status-table", "status-missing", "identifier-missing", "value-type"],
)
def test_observation_errors_point_at_the_second_obx(replacement, code, field):
    with pytest.raises(Hl7Error) as caught:
        parse_oru(oru(replace={"OBX|2": replacement}))

    error = caught.value
    assert (error.code, error.segment, error.sequence, error.field) == (code, "OBX", 2, field)
    assert "one point one" not in str(error)  # messages name positions, never values
    assert "2024-03-05" not in str(error)


def test_bad_birth_date():
    with pytest.raises(Hl7Error) as caught:
        parse_oru(oru(replace={"PID": "PID|1||H12345^^^HOSP^MR||Doe^Jane||19801345"}))
    assert (caught.value.code, caught.value.field) == (102, 7)


def test_parse_timestamp_precisions():
    assert parse_timestamp("") is None
    assert parse_timestamp("2024") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_timestamp("202403051015") == datetime(2024, 3, 5, 10, 15, tzinfo=UTC)
    assert parse_timestamp("20240305101530.25-0500") == datetime(
        2024, 3, 5, 10, 15, 30, 250000, tzinfo=timezone(timedelta(hours=-5))
    )
    for bad in ("2024-03-05", "20241301", "202403051", "20240305+01"):
        with pytest.raises(ValueError, match=r"malformed|month"):
            parse_timestamp(bad)


# ---------------------------------------------------------------------------------------------------------
# split_batch


def test_split_batch_ignores_wrappers():
    second = ORU.replace("MSG00001", "MSG00002")
    batch = "FHS|^~\\&|COBAS\nBHS|^~\\&|COBAS\n" + ORU.replace("\r", "\n") + second + "BTS|2\nFTS|1\n"

    messages = split_batch(batch)

    assert len(messages) == 2
    assert [parse_oru(m).control_id for m in messages] == ["MSG00001", "MSG00002"]
    assert all(m.endswith("\r") and "\n" not in m for m in messages)
    assert split_batch("") == []


def test_split_batch_keeps_leading_junk_as_its_own_message():
    messages = split_batch("junk line\n" + ORU)

    assert len(messages) == 2
    with pytest.raises(Hl7Error):
        parse_oru(messages[0])
    assert parse_oru(messages[1]).control_id == "MSG00001"


# ---------------------------------------------------------------------------------------------------------
# build_ack


def test_ack_aa_shape():
    ack = build_ack(original_text_or_message=ORU, code="AA", now=NOW, control_id="ACK0001")

    assert ack.endswith("\r")
    parsed = parse_back(ack)
    assert [str(s[0]) for s in parsed] == ["MSH", "MSA"]
    assert str(parsed["MSH.F3"]) == "LABFLOW"  # sender and receiver swapped
    assert str(parsed["MSH.F4"]) == "ONCOLOGY"
    assert str(parsed["MSH.F5"]) == "COBAS"
    assert str(parsed.segment("MSH")(6)) == "CENTRAL LAB^1.2.3.4^ISO"
    assert str(parsed["MSH.F7"]) == "20240305103000+0000"
    assert str(parsed.segment("MSH")(9)) == "ACK^R01^ACK"
    assert str(parsed["MSH.F10"]) == "ACK0001"
    assert str(parsed["MSH.F11"]) == "P"
    assert str(parsed["MSH.F12"]) == "2.5.1"
    assert str(parsed["MSA.F1"]) == "AA"
    assert str(parsed["MSA.F2"]) == "MSG00001"


def test_ack_ae_with_err_segment():
    error = Hl7Error(101, "PID-3 patient identifier is missing", "PID", 3)

    ack = build_ack(original_text_or_message=ORU, code="AE", error=error, now=NOW, control_id="ACK0002")

    parsed = parse_back(ack)
    assert str(parsed["MSA.F1"]) == "AE"
    assert str(parsed["MSA.F2"]) == "MSG00001"
    assert str(parsed["MSA.F3"]) == "PID-3 patient identifier is missing"
    err = parsed.segment("ERR")
    assert str(err(2)) == "PID^1^3"
    assert str(err(3)) == "101^Required field missing^HL70357"
    assert str(parsed["ERR.F3.R1.C1"]) == "101"
    assert str(err(4)) == "E"
    assert str(err(8)) == "PID-3 patient identifier is missing"
    assert str(err(1)) == ""  # ERR-1 only for versions before 2.5


def test_ack_ar_for_unparseable_original():
    ack = build_ack(
        original_text_or_message="GET / HTTP/1.1\r\n",
        code="AE",
        error=Hl7Error(100, "not HL7"),
        now=NOW,
        control_id="ACK0003",
    )

    parsed = parse_back(ack)
    assert str(parsed["MSA.F1"]) == "AR"
    assert str(parsed["MSA.F2"]) == ""
    assert str(parsed["MSH.F12"]) == "2.5.1"
    assert str(parsed.segment("MSH")(9)) == "ACK^R01^ACK"
    assert str(parsed["ERR.F3.R1.C1"]) == "100"
    assert str(parsed.segment("ERR")(2)) == ""

    assert "MSA|AR\r" in build_ack(original_text_or_message=None, code="AA", now=NOW, control_id="X")


def test_ack_from_a_rejected_message_keeps_its_control_id_and_version():
    adt = ORU.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01").replace("|2.5.1", "|2.3")
    with pytest.raises(Hl7Error) as caught:
        parse_oru(adt)

    ack = build_ack(
        original_text_or_message=adt, code=caught.value.ack_code, error=caught.value, now=NOW, control_id="A4"
    )

    parsed = parse_back(ack)
    assert str(parsed["MSA.F1"]) == "AR"
    assert str(parsed["MSA.F2"]) == "MSG00001"
    assert str(parsed.segment("MSH")(9)) == "ACK^A01^ACK"
    assert str(parsed["MSH.F12"]) == "2.3"
    assert str(parsed["ERR.F3.R1.C1"]) == "200"
    assert str(parsed.segment("ERR")(1)) == "MSH^1^9^200&Unsupported message type&HL70357"  # v2.3: ERR-1


def test_ack_from_parsed_message_and_text_escaping():
    message = parse_oru(ORU)

    ack = build_ack(
        original_text_or_message=message, code="AA", text="stored | 2 results ^ ok", now=NOW, control_id="A5"
    )

    parsed = parse_back(ack)
    assert str(parsed["MSA.F2"]) == "MSG00001"
    assert parsed["MSA.F3"] == "stored | 2 results ^ ok"  # python-hl7 unescapes on access
    assert "MSA|AA|MSG00001|stored \\F\\ 2 results \\S\\ ok\r" in ack
    assert str(parsed.segment("MSH")(6)) == "CENTRAL LAB^1.2.3.4^ISO"


def test_ack_re_encodes_non_standard_delimiters():
    odd = ORU.replace("MSH|^~\\&|", "MSH#!~\\&#").replace("|", "#").replace("CENTRAL LAB^1.2.3.4^ISO", "LAB!1.2!ISO")
    ack = build_ack(original_text_or_message=odd, code="AA", now=NOW, control_id="A6")

    parsed = parse_back(ack)
    assert str(parsed.segment("MSH")(6)) == "LAB^1.2^ISO"
    assert str(parsed["MSA.F2"]) == "MSG00001"


def test_escape_and_control_ids():
    assert escape("a|b^c~d\\e&f\rg") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f g"
    assert control_id_of(ORU) == "MSG00001"
    assert control_id_of("garbage") == ""
    first, second = new_control_id(NOW), new_control_id(NOW)
    assert len(first) == 20
    assert first.startswith("20240305103000")
    assert first != second


# ---------------------------------------------------------------------------------------------------------
# acknowledge


def test_acknowledge_accepts_and_passes_the_message_on():
    seen: list[OruMessage] = []

    def store(message: OruMessage) -> str:
        seen.append(message)
        return "2 results stored"

    ack = acknowledge(ORU, store, now=NOW, control_id="A7")

    assert [m.control_id for m in seen] == ["MSG00001"]
    parsed = parse_back(ack)
    assert (str(parsed["MSA.F1"]), str(parsed["MSA.F2"]), str(parsed["MSA.F3"])) == (
        "AA",
        "MSG00001",
        "2 results stored",
    )


def test_acknowledge_turns_hl7_errors_into_ae_and_ar():
    def unknown_accession(message: OruMessage) -> None:
        raise Hl7Error(204, "accession not found", "SPM", 2)

    ack = parse_back(acknowledge(ORU, unknown_accession, now=NOW, control_id="A8"))
    assert (str(ack["MSA.F1"]), str(ack["ERR.F3.R1.C1"]), str(ack.segment("ERR")(2))) == ("AE", "204", "SPM^1^2")

    rejected = parse_back(acknowledge(ORU.replace("ORU^R01", "ADT^A01"), unknown_accession, now=NOW))
    assert (str(rejected["MSA.F1"]), str(rejected["ERR.F3.R1.C1"])) == ("AR", "200")


def test_acknowledge_lets_other_exceptions_through():
    def broken(message: OruMessage) -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        acknowledge(ORU, broken, now=NOW)
