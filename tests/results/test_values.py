"""A result's value as received and as stored (results/values.py): numbers in the catalogue unit, censored values
("<5", ">1000"), ranges and ratios, text, coded answers, and refusals that name the field. Pure: no database,
mutation-tested (docs/mutation-testing.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from results.values import (
    CODED_VALUE_TYPES,
    MAX_VALUE,
    TEXT_LIMIT,
    ParsedValue,
    _system,
    _words,
    match_answer,
    parse_value,
    refuse,
)

D = Decimal


@dataclass(frozen=True)
class Analyte:
    name: str = "Potassium"
    loinc_code: str = "2823-3"


@dataclass(frozen=True)
class Entry:
    value: str
    unit: str = "mmol/L"
    lab_test: Analyte = field(default_factory=Analyte)
    value_type: str = ""
    code: str = ""
    code_system: str = ""
    alt_code: str = ""
    alt_system: str = ""


@dataclass(frozen=True)
class Spec:
    value_type: str = "NM"
    unit: str = "mmol/L"
    decimal_places: int = 1


@dataclass(frozen=True)
class Answer:
    pk: int
    code: str
    system: str
    text: str
    abnormal: bool = False


CMV = Analyte("CMV PCR", "")
DETECTED = Answer(1, "260373001", "SCT", "Detected", abnormal=True)
NOT_DETECTED = Answer(2, "260415000", "SCT", "Not detected")
ANSWERS = (DETECTED, NOT_DETECTED)
CODED = Spec(value_type="CWE", unit="")


def refusal(error: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str, str]:
    """(field, code, message) of a refusal naming one field."""
    ((name, (only,)),) = error.value.error_dict.items()
    return name, str(only.code), str(only.message)


NM = Spec()


def parse(value, spec=NM, where="", answers=(), **fields):
    return parse_value(Entry(value, **fields), spec, where, answers)


def refused(value, spec=NM, where="", answers=(), **fields):
    with pytest.raises(ValidationError) as error:
        parse(value, spec, where, answers, **fields)
    return refusal(error)


def test_refuse_names_the_field_and_a_code():
    error = refuse("results[1].value", "A value is required.", "required")
    assert error.message_dict == {"results[1].value": ["A value is required."]}
    assert error.error_dict["results[1].value"][0].code == "required"


# ------------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("4.2", "4.2"),
        ("  4.2 ", "4.2"),
        ("+4.2", "4.2"),
        ("=4.2", "4.2"),  # "=" is no censoring
        ("4", "4.0"),
        ("4.", "4.0"),
        (".5", "0.5"),
        ("0", "0.0"),
        ("5.96", "6.0"),  # rounded to the spec's places, half to even
        ("5.95", "6.0"),
        ("5.85", "5.8"),
        ("999999999.94", "999999999.9"),
    ],
)
def test_an_exact_number_is_rounded_to_the_spec(value, number):
    parsed = parse(value)
    assert parsed == ParsedValue(number=D(number), unit="mmol/L")
    assert str(parsed.number) == number


def test_an_exact_number_takes_the_spec_places():
    assert parse("4.25", Spec(decimal_places=2)).number == D("4.25")
    assert str(parse("4", Spec(decimal_places=0)).number) == "4"
    assert str(parse("4", Spec(decimal_places=3)).number) == "4.000"


def test_a_number_is_converted_to_the_catalogue_unit():
    creatinine = Analyte("Creatinine", "2160-0")
    parsed = parse("1.0", Spec(unit="umol/L", decimal_places=0), unit="mg/dL", lab_test=creatinine)
    assert parsed == ParsedValue(number=D(88), unit="umol/L")
    assert parse("4.0", unit=" mEq/L ") == ParsedValue(number=D("4.0"), unit="mmol/L")


@pytest.mark.parametrize(
    ("unit", "message"),
    [("", "A unit is required."), ("furlongs", "Cannot convert 'furlongs' to 'mmol/L' for this test.")],
)
def test_a_unit_that_does_not_convert_is_refused_on_the_unit(unit, message):
    assert refused("4.0", unit=unit) == ("unit", "unit", message)
    assert refused("<4.0", where="results[3].", unit=unit) == ("results[3].unit", "unit", message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "'-1' is outside the range a lab value can take (0 to 10^9)."),
        ("-0.001", "'-0.001' is outside the range a lab value can take (0 to 10^9)."),
        ("1000000000", "'1000000000' is outside the range a lab value can take (0 to 10^9)."),
        (">1000000000", "'>1000000000' is outside the range a lab value can take (0 to 10^9)."),
    ],
)
def test_a_number_outside_what_a_result_holds_is_refused(value, message):
    assert refused(value) == ("value", "out_of_range", message)


def test_the_range_is_checked_again_after_conversion():
    albumin = Analyte("Albumin", "1751-7")
    spec = Spec(unit="g/L")
    # 99 999 999.99 g/dL is 999 999 999.9 g/L, the most a result holds; 10^8 g/dL is 10^9 g/L, too much
    assert parse("99999999.99", spec, unit="g/dL", lab_test=albumin).number == D("999999999.9")
    assert refused("100000000", spec, unit="g/dL", lab_test=albumin) == (
        "value",
        "out_of_range",
        "'100000000' g/dL is outside the range a lab value can take.",
    )
    assert D(10) ** 9 == MAX_VALUE


@pytest.mark.parametrize("value", ["abc", "5 mmol", "<", "<<5", "5e3", "1,5", "NaN", "inf", "<= five"])
def test_not_a_number_is_refused(value):
    assert refused(value, where="results[0].") == ("results[0].value", "not_a_number", f"{value!r} is not a number.")


@pytest.mark.parametrize(("value", "where"), [("", ""), ("   ", "results[2].")])
def test_a_value_is_required(value, where):
    assert refused(value, where=where) == (f"{where}value", "required", "A value is required.")
    assert refused(value, CODED, where, ANSWERS, code="  ") == (f"{where}value", "required", "A value is required.")


# --------------------------------------------------------------------------------------- censored values


@pytest.mark.parametrize(
    ("value", "comparator", "bound", "places"),
    [
        ("<5", "<", "5.0", 1),
        ("< 5", "<", "5.0", 1),
        ("<=5", "<=", "5.0", 1),
        (">1000", ">", "1000.0", 1),
        (">= 11.0", ">=", "11.0", 1),
        ("<5.000", "<", "5.0", 1),  # trailing zeros add no precision
        ("<500", "<", "500.0", 1),
        ("<0.05", "<", "0.05", 2),  # a bound is never rounded to the spec's places ...
        ("<0.123", "<", "0.123", 3),
        ("<0.1234", "<", "0.1234", 4),
        ("<0.123401", "<", "0.1235", 4),  # ... beyond four places "<" rounds up (still true) ...
        ("<=0.123401", "<=", "0.1235", 4),
        (">0.123499", ">", "0.1234", 4),  # ... and ">" down
        (">=0.123499", ">=", "0.1234", 4),
    ],
)
def test_a_censored_value_keeps_its_comparator_and_its_bound(value, comparator, bound, places):
    parsed = parse(value)
    assert parsed == ParsedValue(number=D(bound), comparator=comparator, decimal_places=places, unit="mmol/L")
    assert str(parsed.number) == bound


def test_a_censored_bound_is_converted_and_keeps_the_conversion_places():
    creatinine = Analyte("Creatinine", "2160-0")
    parsed = parse("<1", Spec(unit="umol/L", decimal_places=0), unit="mg/dL", lab_test=creatinine)
    assert parsed == ParsedValue(number=D("88.42"), comparator="<", decimal_places=2, unit="umol/L")


def test_a_censored_bound_takes_at_least_the_spec_places():
    parsed = parse(">5", Spec(decimal_places=3))
    assert (str(parsed.number), parsed.decimal_places) == ("5.000", 3)


# ---------------------------------------------------------------------------------------- ranges, ratios, text


@pytest.mark.parametrize(("value", "text"), [("1-3", "1-3"), (" 1 : 128 ", "1:128"), ("2+", "2+"), ("1/2", "1/2")])
def test_a_structured_numeric_spec_keeps_a_range_or_ratio_as_text(value, text):
    spec = Spec(value_type="SN")
    assert parse(value, spec, unit=" titre ") == ParsedValue(text=text, unit="titre")
    assert parse(value, spec, unit="u" * 40).unit == "u" * 30


@pytest.mark.parametrize("value", ["1-3", "1:128", "2+"])
def test_a_numeric_spec_refuses_a_range_or_ratio(value):
    assert refused(value, where="results[1].") == (
        "results[1].value",
        "range_or_ratio",
        "A range or ratio cannot be stored: Potassium is one number.",
    )


def test_text_is_kept_as_it_is():
    spec = Spec(value_type="ST")
    assert parse("  Haemolysed, see comment ", spec) == ParsedValue(text="Haemolysed, see comment")


def test_text_up_to_the_limit_is_kept_whole():
    text = "x" * TEXT_LIMIT
    assert parse(text, Spec(value_type="ST")) == ParsedValue(text=text)
    assert TEXT_LIMIT == 200


def test_longer_text_is_cut_with_an_ellipsis_and_kept_whole_as_overflow():
    text = "y" * (TEXT_LIMIT + 1)
    parsed = parse(text, Spec(value_type="ST"))
    assert parsed == ParsedValue(text="y" * 199 + "…", overflow=text)
    assert len(parsed.text) == TEXT_LIMIT


@pytest.mark.parametrize("value_type", ["CE", "CWE", "cwe", "CNE", "CF"])
def test_a_coded_value_for_a_number_is_refused(value_type):
    assert refused("5", value_type=value_type) == (
        "value",
        "coded_for_number",
        "A coded value cannot be stored: Potassium is a number.",
    )
    assert {"CE", "CWE", "CNE", "CF"} == CODED_VALUE_TYPES


@pytest.mark.parametrize("value_type", ["NM", "SN", "ST", ""])
def test_other_value_types_are_read_as_numbers(value_type):
    assert parse("5", value_type=value_type).number == D("5.0")


# ------------------------------------------------------------------------------------------- coded answers


def test_a_coded_value_is_stored_as_its_answer():
    parsed = parse("detected", CODED, "", ANSWERS, lab_test=CMV, code="260373001", code_system="SCT")
    assert parsed == ParsedValue(text="detected", answer=DETECTED, code="260373001", code_system="SCT")


def test_a_code_without_text_takes_the_answer_text():
    parsed = parse("", CODED, "", ANSWERS, lab_test=CMV, code="260415000", code_system="SCT")
    assert parsed == ParsedValue(text="Not detected", answer=NOT_DETECTED, code="260415000", code_system="SCT")


def test_a_coded_text_is_cut_to_the_limit():
    parsed = parse("z" * 250, CODED, "", ANSWERS, lab_test=CMV, code="260373001", code_system="SCT")
    assert parsed.text == "z" * TEXT_LIMIT
    assert parsed.answer is DETECTED


def test_an_unknown_answer_is_refused_naming_the_catalogue():
    assert refused("maybe", CODED, "results[4].", ANSWERS, lab_test=CMV) == (
        "results[4].value",
        "unknown_answer",
        "Not an answer of CMV PCR (catalogued: Detected, Not detected).",
    )
    assert refused("maybe", CODED, "", (), lab_test=CMV) == (
        "value",
        "unknown_answer",
        "Not an answer of CMV PCR (catalogued: none catalogued).",
    )


def entry(value="", **fields):
    return Entry(value, lab_test=CMV, **fields)


@pytest.mark.parametrize("text", ["Detected", "detected", " DETECTED ", "de-tec-ted!", "260373001"])
def test_an_answer_is_found_by_its_text_or_code_in_any_case_and_punctuation(text):
    assert match_answer(entry(text), ANSWERS, "") is DETECTED
    assert match_answer(entry(text), ANSWERS[::-1], "") is DETECTED


def test_text_matches_whole_words_not_parts():
    assert match_answer(entry("Not detected"), ANSWERS, "") is NOT_DETECTED


def test_a_code_is_matched_within_its_coding_system():
    local = Answer(3, "POS", "L", "Positive (local)")
    snomed = Answer(4, "POS", "SCT", "Positive")
    for answers in ((local, snomed), (snomed, local)):
        assert match_answer(entry(code="POS", code_system="sct"), answers, "") is snomed
        assert match_answer(entry(code=" POS ", code_system="L"), answers, "") is local


@pytest.mark.parametrize("system", ["SCT", "sct", "SNM", "SNM3", "SNOMED", "snomedct", "SNOMED-CT",
                                    "2.16.840.1.113883.6.96", "http://snomed.info/sct", " SCT "])  # fmt: skip
def test_every_name_of_snomed_ct_is_one_system(system):
    assert _system(system) == "SCT"
    loinc, snomed = Answer(3, "POS", "LN", "x"), Answer(4, "POS", "SNM", "y")
    assert match_answer(entry(code="POS", code_system=system), (loinc, snomed), "") is snomed


def test_other_systems_are_compared_by_name_in_any_case():
    assert _system(" ln ") == "LN"
    assert _system("99zzz") == "99ZZZ"


def test_the_alternate_triplet_is_tried_when_the_first_does_not_match():
    found = match_answer(entry(code="X1", code_system="LN", alt_code="260415000", alt_system="SCT"), ANSWERS, "")
    assert found is NOT_DETECTED


def test_the_first_triplet_wins_over_the_alternate():
    both = entry(code="260373001", code_system="SCT", alt_code="260415000", alt_system="SCT")
    assert match_answer(both, ANSWERS, "") is DETECTED


def test_a_code_of_another_system_is_still_read_as_text():
    # no triplet matches; the code itself names an answer ("detected"), as a text would
    assert match_answer(entry(code="detected", code_system="99LOCAL"), ANSWERS, "") is DETECTED
    assert match_answer(entry(code="260415000", code_system="LN"), ANSWERS, "") is NOT_DETECTED


def test_a_code_that_names_nothing_is_refused():
    with pytest.raises(ValidationError) as error:
        match_answer(entry(code="X9", code_system="99LOCAL"), ANSWERS, "")
    assert refusal(error) == (
        "value",
        "unknown_answer",
        "Not an answer of CMV PCR (catalogued: Detected, Not detected).",
    )


def test_the_text_beats_a_code_read_as_text():
    # the code matches no triplet and the text names an answer: the code is not consulted
    assert match_answer(entry("Not detected", code="detected", code_system="99LOCAL"), ANSWERS, "") is NOT_DETECTED


def test_code_and_text_that_agree():
    found = match_answer(entry("Detected", code="260373001", code_system="SCT"), ANSWERS, "")
    assert found is DETECTED


def test_code_and_text_that_name_different_answers_are_refused():
    with pytest.raises(ValidationError) as error:
        match_answer(entry("Not detected", code="260373001", code_system="SCT"), ANSWERS, "results[5].")
    assert refusal(error) == (
        "results[5].value",
        "answer_disagrees",
        "The code and the text of the answer name different answers.",
    )


def test_a_code_matched_by_system_is_not_second_guessed_by_the_same_code_elsewhere():
    local = Answer(3, "POS", "L", "Positive (local)")
    snomed = Answer(4, "POS", "SCT", "Positive")
    assert match_answer(entry(code="POS", code_system="SCT"), (local, snomed), "") is snomed


def test_a_value_without_letters_or_digits_matches_nothing():
    plus = Answer(5, "+", "L", "+")
    with pytest.raises(ValidationError) as error:
        match_answer(entry("?"), (plus,), "")
    assert refusal(error)[1] == "unknown_answer"


def test_words_keep_letters_and_digits_only():
    assert _words("Not-Detected (2x)!") == "notdetected2x"
    assert _words("ÄB c") == "bc"
