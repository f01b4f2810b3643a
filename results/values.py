"""A result's value as received and as stored: a number in the catalogue unit, a censored number ("<5", ">1000"),
a range or ratio, text, or a catalogue answer for a coded value. Bad input is refused naming the field
(docs/architecture.md §7). Pure: no database and no models (read through the protocols below), so it is
mutation-tested without one (docs/mutation-testing.md)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any, Protocol, TypeVar

from django.core.exceptions import ValidationError

from results.choices import ValueType
from results.units import UnitError, convert

MAX_VALUE = Decimal(10) ** 9  # value_numeric holds 10 integer digits
TEXT_LIMIT = 200  # Result.value_text
CODED_VALUE_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
#: Names of SNOMED CT as coding systems arrive in CWE-3 (HL7 0396 "SCT", older "SNM"/"SNM3", OIDs, URIs).
SNOMED_SYSTEMS = frozenset({"SCT", "SNM", "SNM3", "SNOMED", "SNOMEDCT", "SNOMED-CT", "2.16.840.1.113883.6.96",
                            "HTTP://SNOMED.INFO/SCT"})  # fmt: skip

_NUMBER_TEXT = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_CENSORED = re.compile(rf"(<=|>=|<|>|=)?\s*({_NUMBER_TEXT})")
_RANGE_OR_RATIO = re.compile(rf"{_NUMBER_TEXT}\s*(?:[-:/]\s*{_NUMBER_TEXT}|\+)")


class AnalyteNames(Protocol):
    """What parsing reads of a lab test (monitoring.models.LabTest)."""

    @property
    def name(self) -> str: ...
    @property
    def loinc_code(self) -> str: ...


class Entry(Protocol):
    """What parsing reads of an entry (results.services.ResultEntry)."""

    @property
    def lab_test(self) -> AnalyteNames: ...
    @property
    def value(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def value_type(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def code_system(self) -> str: ...
    @property
    def alt_code(self) -> str: ...
    @property
    def alt_system(self) -> str: ...


class ValueSpec(Protocol):
    """What parsing reads of a result spec (results.models.ResultSpec)."""

    @property
    def value_type(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def decimal_places(self) -> int: ...


class Answer(Protocol):
    """A catalogue answer of a coded test (results.models.ResultAnswer)."""

    @property
    def pk(self) -> Any: ...
    @property
    def code(self) -> str: ...
    @property
    def system(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def abnormal(self) -> bool: ...


A = TypeVar("A", bound=Answer)


@dataclass(frozen=True)
class ParsedValue:
    """A value as stored: a number (exact or censored, in the catalogue unit), text, or a catalogue answer."""

    number: Decimal | None = None
    comparator: str = ""  # "<", "<=", ">", ">=" for a censored number
    decimal_places: int | None = None
    text: str = ""
    unit: str = ""
    answer: Answer | None = None
    code: str = ""
    code_system: str = ""
    overflow: str = ""  # text beyond value_text's limit, kept whole in lab_comment


def refuse(field: str, message: str, code: str) -> ValidationError:
    """A refusal naming the field; ``code`` says what is wrong without the value (for ACKs and logs)."""
    return ValidationError({field: ValidationError(message, code=code)})


def _system(system: str) -> str:
    upper = system.strip().upper()
    return "SCT" if upper in SNOMED_SYSTEMS else upper


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def match_answer(entry: Entry, answers: Sequence[A], where: str) -> A:
    """The catalogue answer a coded (or textual) value stands for: by coding system and code (either CWE
    triplet), else by its text or code; refused when unknown, or when code and text name different answers."""
    by_code = None
    for code, system in ((entry.code, entry.code_system), (entry.alt_code, entry.alt_system)):
        code = code.strip()
        if code and by_code is None:
            by_code = next((a for a in answers if a.code == code and _system(a.system) == _system(system)), None)
    words = _words(entry.value)
    by_text = next((a for a in answers if words and words in (_words(a.text), _words(a.code))), None)
    if by_code is None and entry.code and not by_text:
        by_text = next((a for a in answers if _words(entry.code) in (_words(a.text), _words(a.code))), None)
    if by_code is not None and by_text is not None and by_code.pk != by_text.pk:
        raise refuse(f"{where}value", "The code and the text of the answer name different answers.", "answer_disagrees")
    answer = by_code or by_text
    if answer is None:
        known = ", ".join(a.text for a in answers) or "none catalogued"
        raise refuse(
            f"{where}value", f"Not an answer of {entry.lab_test.name} (catalogued: {known}).", "unknown_answer"
        )
    return answer


def parse_value(entry: Entry, spec: ValueSpec, where: str, answers: Sequence[Answer] = ()) -> ParsedValue:
    """The value as stored, by the spec's value type, or a ValidationError naming the field.

    NM/SN specs take a number or a censored number (``<5``, ``>=11.0``: comparator + number, converted to the
    catalogue unit); an SN spec also takes a range (``1-3``) or ratio (``1:128``), kept as text. ST specs keep
    text as it is (HL7 escapes already decoded). CWE specs take a catalogue answer (matched by code or text).
    """
    raw = entry.value.strip()
    if not raw and not entry.code.strip():
        raise refuse(f"{where}value", "A value is required.", "required")
    if spec.value_type == ValueType.TEXT:
        overflow = raw if len(raw) > TEXT_LIMIT else ""
        return ParsedValue(text=raw if not overflow else raw[: TEXT_LIMIT - 1] + "…", overflow=overflow)
    if spec.value_type == ValueType.CODED:
        answer = match_answer(entry, answers, where)
        return ParsedValue(text=(raw or answer.text)[:TEXT_LIMIT], answer=answer, code=answer.code,
                           code_system=answer.system)  # fmt: skip
    if entry.value_type.upper() in CODED_VALUE_TYPES:
        raise refuse(f"{where}value", f"A coded value cannot be stored: {entry.lab_test.name} is a number.",
                     "coded_for_number")  # fmt: skip
    censored = _CENSORED.fullmatch(raw)
    if censored is None:
        if _RANGE_OR_RATIO.fullmatch(raw):
            if spec.value_type == ValueType.STRUCTURED_NUMERIC:
                return ParsedValue(text=re.sub(r"\s+", "", raw), unit=entry.unit.strip()[:30])
            raise refuse(f"{where}value", f"A range or ratio cannot be stored: {entry.lab_test.name} is one number.",
                         "range_or_ratio")  # fmt: skip
        raise refuse(f"{where}value", f"{raw!r} is not a number.", "not_a_number")
    comparator = "" if censored.group(1) in (None, "=") else censored.group(1)
    number = Decimal(censored.group(2))  # the pattern admits digits only (any script's): always a finite number
    if number < 0 or number >= MAX_VALUE:
        raise refuse(f"{where}value", f"{raw!r} is outside the range a lab value can take (0 to 10^9).",
                     "out_of_range")  # fmt: skip
    try:
        converted = convert(number, entry.unit, spec.unit, loinc=entry.lab_test.loinc_code)
    except UnitError as error:
        raise refuse(f"{where}unit", str(error), "unit") from None
    if converted >= MAX_VALUE:
        raise refuse(f"{where}value", f"{raw!r} {entry.unit} is outside the range a lab value can take.",
                     "out_of_range")  # fmt: skip
    if not comparator:
        return ParsedValue(number=converted.quantize(Decimal(1).scaleb(-spec.decimal_places)), unit=spec.unit)
    # A censored bound is never rounded: "<0.05" rounded to one decimal would claim "<0.0" (or lose "<0.05").
    places = min(max(spec.decimal_places, -int(converted.normalize().as_tuple().exponent)), 4)
    bound = converted.quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP if comparator[0] == "<" else ROUND_DOWN)
    return ParsedValue(number=bound, comparator=comparator, decimal_places=places, unit=spec.unit)
