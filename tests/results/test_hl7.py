"""HL7 v2 ORU^R01 parsing and ACK building (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hl7  # type: ignore[import-untyped]
import pytest

from results.hl7.ack import acknowledge, build_ack, control_id_of, new_control_id
from results.hl7.batch import batch_header, split_batch, wrap_batch
from results.hl7.encoding import escape
from results.hl7.errors import Hl7Error
from results.hl7.messages import Observation, OruMessage
from results.hl7.parsing import parse_oru
from results.hl7.segments import parse_timestamp

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


def observations_of(obx1: str, obx2: str, *more: str) -> list[Observation]:
    """The observations of the sample message with its two OBX segments replaced and `more` segments added."""
    text = oru(replace={"OBX|1": obx1, "OBX|2": obx2}) + "".join(f"{segment}\r" for segment in more)
    return parse_oru(text).observations


def parse_back(ack: str) -> hl7.Message:
    return hl7.parse(ack)


def attributes(obj: object, expected: dict[str, object]) -> dict[str, object]:
    """`obj`'s values of the attributes `expected` names, to compare as one dict (one diff on failure)."""
    return {name: getattr(obj, name) for name in expected}


MESSAGE_FIELDS: dict[str, object] = {
    "control_id": "MSG00001",
    "sending_application": "COBAS",
    "sending_facility": "CENTRAL LAB",
    "receiving_application": "LABFLOW",
    "message_type": "ORU^R01",
    "version": "2.5.1",
    "processing_id": "P",
    "patient_mrn": "H12345",
    "patient_family": "Doe",
    "patient_given": "Jane",
    "patient_birth_date": date(1980, 2, 14),
    "accession": "A24000123",
    "collected_at": datetime(2024, 3, 5, 6, 45, tzinfo=UTC),
}
POTASSIUM_FIELDS: dict[str, object] = {
    "set_id": "1",
    "loinc_code": "2823-3",
    "coding_system": "LN",
    "name": "Potassium [Moles/volume] in Serum or Plasma",
    "value_type": "NM",
    "value": "5.9",
    "unit": "mmol/L",
    "reference_range": "3.5-5.1",
    "abnormal_flags": "H",
    "status": "F",
    "observed_at": datetime(2024, 3, 5, 9, 0, tzinfo=UTC),
    "accession": "A24000123",
    "notes": ["Haemolysed sample & repeat advised"],
}


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
    assert attributes(message, MESSAGE_FIELDS) == MESSAGE_FIELDS

    potassium, creatinine = message.observations
    assert attributes(potassium, POTASSIUM_FIELDS) == POTASSIUM_FIELDS
    assert potassium.observed_at is not None
    assert potassium.observed_at.utcoffset() == timedelta(hours=1)

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
    sn, coded, tx = observations_of(
        "OBX|1|SN|1988-5^CRP^LN||<^5|mg/L||N|||F",
        "OBX|2|CWE|1234-5^Culture^LN||POS^Positive^L||||||F",
        "OBX|3|TX|8251-1^Comment^LN||line one~line two||||||F",
    )

    assert sn.value == "<5"
    assert coded.value == "Positive"
    assert tx.value == "line one\nline two"


def test_loinc_from_the_alternate_identifier_and_local_codes_kept():
    alternate, local = observations_of(
        "OBX|1|NM|K^Potassium^L^2823-3^Potassium^LN||5.9|mmol/L|||||F",
        "OBX|2|NM|CREA^Creatinine^99LAB||1.1|mg/dL|||||F",
    )

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
    assert str(parsed.segment("MSH")(9)) == "ACK^A01"  # v2.3: message type and trigger, no structure
    assert str(parsed["MSH.F12"]) == "2.3"
    assert str(parsed.segment("ERR")(1)) == "MSH^1^9^200&Unsupported message type&HL70357"  # v2.3: ERR-1 only
    assert len(parsed.segment("ERR")) == 2
    assert str(parsed.segment("MSA")(6)) == "200^Unsupported message type^HL70357"


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


# ---------------------------------------------------------------------------------------------------------
# Values beyond numbers, versions of ACKs, batches


@pytest.mark.parametrize(
    ("sn", "rendered"),
    [("<^5", "<5"), (">^11.0", ">11.0"), ("<=^0.5", "<=0.5"), ("=^7", "7"), ("^182", "182"), ("^1^-^3", "1-3"),
     ("^1^:^128", "1:128"), ("^2^+", "2+")],
)  # fmt: skip
def test_structured_numeric_shapes(sn, rendered):
    text = oru(replace={"OBX|1": f"OBX|1|SN|1988-5^CRP^LN||{sn}|mg/L|||||F"})
    assert parse_oru(text).observations[0].value == rendered


@pytest.mark.parametrize("sn", ["<>^5", "#^5", "^1^-", "^1^*^3", "<", "^x"])
def test_malformed_structured_numeric_is_a_data_type_error(sn):
    with pytest.raises(Hl7Error) as caught:
        parse_oru(oru(replace={"OBX|1": f"OBX|1|SN|1988-5^CRP^LN||{sn}|mg/L|||||F"}))
    assert (caught.value.code, caught.value.segment, caught.value.field) == (102, "OBX", 5)


def test_coded_value_keeps_both_triplets_and_the_obx_sequence():
    text = oru(replace={"OBX|2": "OBX|2|CWE|5196-1^HBsAg^LN||NR^Non-reactive^L^131194007^Non-reactive^SCT||||||F"})
    coded = parse_oru(text).observations[1]
    assert coded.value == "Non-reactive"
    assert coded.coded is not None
    assert (coded.coded.code, coded.coded.system, coded.coded.alt_code, coded.coded.alt_system) == (
        "NR", "L", "131194007", "SCT"
    )  # fmt: skip
    assert coded.sequence == 2


def test_accession_location_names_the_segment_it_came_from():
    assert parse_oru(ORU).observations[0].accession_at == ("SPM", 1, 2)
    assert parse_oru(oru(drop=("SPM",))).observations[0].accession_at == ("OBR", 1, 3)


@pytest.mark.parametrize(
    ("version", "msh9"),
    [("2.1", "ACK"), ("2.2", "ACK^R01"), ("2.3", "ACK^R01"), ("2.3.1", "ACK^R01^ACK"), ("2.4", "ACK^R01^ACK"),
     ("2.5", "ACK^R01^ACK"), ("2.5.1", "ACK^R01^ACK"), ("2.6", "ACK^R01^ACK")],
)  # fmt: skip
def test_ack_message_type_and_error_segment_follow_the_version(version, msh9):
    error = Hl7Error(101, "PID-3 patient identifier is missing", "PID", 3)
    ack = build_ack(original_text_or_message=ORU.replace("|2.5.1", f"|{version}"), code="AE", error=error, now=NOW,
                    control_id="V1")  # fmt: skip
    parsed = parse_back(ack)
    assert str(parsed.segment("MSH")(9)) == msh9
    assert str(parsed["MSH.F12"]) == version
    err = parsed.segment("ERR")
    if version in ("2.5", "2.5.1", "2.6"):
        assert (str(err(1)), str(err(2)), str(err(3)), str(err(4))) == (
            "", "PID^1^3", "101^Required field missing^HL70357", "E"
        )  # fmt: skip
    else:
        assert len(err) == 2  # ERR-1 only
        assert str(err(1)) == "PID^1^3^101&Required field missing&HL70357"


def _strict(ack: str, version: str):
    """Validate an ACK with hl7apy (an independent implementation of the HL7 v2 tables), strictly."""
    from hl7apy.consts import VALIDATION_LEVEL  # type: ignore[import-untyped]
    from hl7apy.core import Message  # type: ignore[import-untyped]
    from hl7apy.parser import parse_message, parse_segment  # type: ignore[import-untyped]

    if version >= "2.3.1":  # MSH-9.3 names the message structure: hl7apy can find it itself
        message = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    else:  # before v2.3.1 the structure (ACK) is not in MSH-9: build it and add each strictly parsed segment
        message = Message("ACK", version=version, validation_level=VALIDATION_LEVEL.STRICT)
        first, *rest = [s for s in ack.split("\r") if s]
        message.msh = parse_segment(first, version=version, validation_level=VALIDATION_LEVEL.STRICT)
        for segment in rest:
            message.add(parse_segment(segment, version=version, validation_level=VALIDATION_LEVEL.STRICT))
    assert message.validate()
    return message


@pytest.mark.parametrize("version", ["2.3", "2.5.1"])
def test_acks_are_valid_for_hl7apy_in_the_message_version(version):
    original = ORU.replace("|2.5.1", f"|{version}")
    accepted = build_ack(original_text_or_message=original, code="AA", now=NOW, control_id="V2")
    error = Hl7Error(204, "Unknown specimen (accession number).", "SPM", 2)
    refused = build_ack(original_text_or_message=original, code="AE", error=error, now=NOW, control_id="V3")
    rejected_type = original.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01")
    with pytest.raises(Hl7Error) as caught:
        parse_oru(rejected_type)
    rejected = build_ack(original_text_or_message=rejected_type, code=caught.value.ack_code, error=caught.value,
                         now=NOW, control_id="V4")  # fmt: skip

    for ack in (accepted, refused, rejected):
        message = _strict(ack, version)
        assert message.msh.msh_12.to_er7() == version
    assert _strict(rejected, version).msa.msa_1.to_er7() == "AR"
    assert _strict(refused, version).msa.msa_2.to_er7() == "MSG00001"
    if version == "2.5.1":
        assert _strict(refused, version).err.err_2.to_er7() == "SPM^1^2"
        assert _strict(refused, version).err.err_3.to_er7() == "204^Unknown key identifier^HL70357"
    else:
        assert _strict(refused, version).err.err_1.to_er7() == "SPM^1^2^204&Unknown key identifier&HL70357"


def test_batch_acks_are_wrapped_like_the_batch():
    second = ORU.replace("MSG00001", "MSG00002")
    batch = "FHS|^~\\&|COBAS\rBHS|^~\\&|COBAS||||20240305||||B-77\r" + ORU + second + "BTS|2\rFTS|1\r"
    assert batch_header(batch) == (True, True, "B-77")
    acks = [build_ack(original_text_or_message=m, code="AA", now=NOW, control_id="X") for m in split_batch(batch)]

    reply = wrap_batch(acks, text=batch, now=NOW, control_id="R1")

    ids = [s.split("|")[0] for s in reply.split("\r") if s]
    assert ids == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "BTS", "FTS"]
    assert "|R1|B-77\r" in reply
    assert "BTS|2\r" in reply
    assert batch_header(ORU) == (False, False, "")
