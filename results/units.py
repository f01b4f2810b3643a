"""UCUM units: spelling, unit algebra and the one conversion table (result entry and CTCAE grading use it).

A unit is read by algebra, not looked up in a list of spellings (:func:`parse`):

- a count per volume (cell counts): a power of ten (``10*9``, ``10^3``, ``x10e9``, ``k``, ``giga``, ``tera`` or
  none) times a count (optionally ``{cells}`` / ``cells``) per litre, dL, mL, µL, nL, pL, mm³ or cm³ -- so
  ``10*9/L`` = ``10*3/uL`` = ``10*3/mm3`` = ``/nL`` and ``/uL`` = ``/mm3`` = ``10*3/mL`` = ``10*6/L``;
- a concentration: a metric prefix and ``g``, ``mol``, ``eq``, ``U`` (enzyme unit, 1 U = 1/60 µkat), ``kat`` or
  ``[IU]`` per prefixed litre, with an optional annotation (``{FEU}``, which makes it a quantity of its own);
- a few fixed units: ``s``, ``min``, ``%``, ``mmol/mol``, ``1``, ``[pH]`` and annotations alone (``{INR}``: 1).

Case, spaces, ``^`` for ``*`` and ``µ`` for ``u`` are tolerated. Two units of the same kind (grams, moles,
equivalents, katals, [IU], counts, ...) convert for every analyte by their scales, exactly. Between kinds
(mg/dL <-> mmol/L) the analyte decides: :data:`ANALYTES` is the one table of those factors, keyed by analyte and
naming the LOINC codes it applies to. HbA1c IFCC (mmol/mol) <-> NGSP (%) is the affine master equation.

Factors are exact fractions (``fractions.Fraction``); :func:`apply` multiplies a Decimal by one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Final

__all__ = [
    "ANALYTES",
    "Analyte",
    "Unit",
    "UnitError",
    "accepts",
    "analyte_for",
    "apply",
    "convert",
    "count_per_litre",
    "factor",
    "normalise",
    "parse",
    "parse_cached",
    "ratio",
]


class UnitError(ValueError):
    """A unit that is unknown or cannot be converted to the test's unit."""


@dataclass(frozen=True)
class Unit:
    """A parsed unit: ``scale`` of the kind's base per litre (g/L, mol/L, count/L, ...) or of the fixed unit.

    Two units are equal when they are the same quantity (``10*3/uL == 10*9/L``), whatever their spelling.
    """

    kind: str
    scale: Fraction
    text: str = field(compare=False)  # canonical UCUM spelling


# Metric prefixes: power of ten. "u" is micro (µ and μ are read as u).
_PREFIX: Final = {"": 0, "k": 3, "d": -1, "c": -2, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15}
# Volumes: power of ten of a litre, and their UCUM spelling.
_VOLUME: Final = {
    "l": (0, "L"),
    "dl": (-1, "dL"),
    "cl": (-2, "cL"),
    "ml": (-3, "mL"),
    "ul": (-6, "uL"),
    "nl": (-9, "nL"),
    "pl": (-12, "pL"),
    "mm3": (-6, "mm3"),
    "cm3": (-3, "cm3"),
}
# Counts: the power of ten a word stands for.
_COUNT_WORD: Final = {"k": 3, "giga": 9, "tera": 12}
_COUNT: Final = re.compile(
    r"(?:x?10[*e](?P<exp>\d{1,2})|(?P<word>k|giga|tera)|1)?(?:\{[^{}]*\}|cells?)?/(?P<vol>mm3|cm3|[dcmunp]?l)"
)
_CONC: Final = re.compile(
    r"(?P<prefix>[kdcmunpf]?)(?P<base>g|mol|eq|u|kat|\[iu\]|iu)(?P<a1>\{[^{}]*\})?/(?P<vol>[dcmunp]?l)(?P<a2>\{[^{}]*\})?"
)
# Base of a concentration: kind, factor to the kind's base, UCUM spelling. 1 U = 1 µmol/min = 1/60 µkat.
_BASE: Final = {
    "g": ("g", Fraction(1), "g"),
    "mol": ("mol", Fraction(1), "mol"),
    "eq": ("eq", Fraction(1), "eq"),
    "u": ("kat", Fraction(1, 60_000_000), "U"),
    "kat": ("kat", Fraction(1), "kat"),
    "[iu]": ("[iu]", Fraction(1), "[IU]"),
    "iu": ("[iu]", Fraction(1), "[IU]"),
}
_FIXED: Final = {
    "s": ("s", 1, "s"),
    "sec": ("s", 1, "s"),
    "min": ("s", 60, "min"),
    "%": ("%", 1, "%"),
    "mmol/mol": ("mmol/mol", 1, "mmol/mol"),
    "1": ("1", 1, "1"),
    "{inr}": ("1", 1, "{INR}"),
    "inr": ("1", 1, "{INR}"),
    "[ph]": ("[ph]", 1, "[pH]"),
    "ph": ("[ph]", 1, "[pH]"),
}
_ANNOTATION: Final = re.compile(r"\{[^{}]*\}")


def _key(unit: str) -> str:
    return unit.strip().replace(" ", "").replace("^", "*").replace("µ", "u").replace("μ", "u").casefold()


def _count(key: str) -> tuple[int, str] | None:
    """Power of ten of the count per litre, and the canonical spelling; None if not a count per volume."""
    match = _COUNT.fullmatch(key)
    if match is None:
        return None
    exp, word, vol = match.group("exp", "word", "vol")
    power = int(exp) if exp is not None else _COUNT_WORD[word] if word is not None else 0
    litre_power, volume = _VOLUME[vol]
    text = f"10*{power}/{volume}" if power else f"/{volume}"
    return power - litre_power, text


def count_per_litre(unit: str) -> Decimal | None:
    """How many cells per litre one ``unit`` is (``10*3/uL`` -> 10^9), or None for a unit that is not a count."""
    count = _count(_key(unit))
    return None if count is None else Decimal(1).scaleb(count[0])


def parse(unit: str) -> Unit | None:
    """The unit read by algebra, or None when it is not a unit this module knows."""
    key = _key(unit)
    if key in _FIXED:
        kind, scale, text = _FIXED[key]
        return Unit(kind, Fraction(scale), text)
    if _ANNOTATION.fullmatch(key):  # UCUM: an annotation alone is the unit 1
        return Unit("1", Fraction(1), unit.strip())
    count = _count(key)
    if count is not None:
        return Unit("count", Fraction(10) ** count[0], count[1])
    match = _CONC.fullmatch(key)
    if match is None:
        return None
    kind, base_factor, base_text = _BASE[match.group("base")]
    litre_power, volume = _VOLUME[match.group("vol")]
    annotation = (match.group("a1") or "") + (match.group("a2") or "")
    prefix = match.group("prefix")
    original = _ANNOTATION.findall(unit.replace(" ", ""))
    shown = "".join(original).upper()
    text = f"{prefix}{base_text}/{volume}{shown}"
    return Unit(kind + annotation, base_factor * Fraction(10) ** (_PREFIX[prefix] - litre_power), text)


#: :func:`parse` remembered: it is pure, and an import reads the same few spellings for thousands of results.
#: (A wrapper rather than a decorator: mutmut leaves decorated functions unmutated, see docs/mutation-testing.md.)
parse_cached: Final = lru_cache(maxsize=1024)(parse)


def normalise(unit: str) -> str:
    """The canonical UCUM spelling of ``unit`` (``10^3/µL`` -> ``10*3/uL``, ``MG/DL`` -> ``mg/dL``); a unit
    this module cannot read is returned stripped."""
    parsed = parse(unit)
    return unit.strip() if parsed is None else parsed.text


@dataclass(frozen=True)
class Analyte:
    """Units of one analyte: ``base`` and, for each other kind, one unit of that kind with its factor to base."""

    base: str
    bridges: Mapping[str, str] = field(default_factory=dict)  # unit -> "how many base units one of it is"
    loincs: tuple[str, ...] = ()
    note: str = ""


def _number(text: str) -> Fraction:
    numerator, _, denominator = text.partition("/")
    return Fraction(numerator) / Fraction(denominator) if denominator else Fraction(numerator)


# The one conversion table: what relates an analyte's units of different kinds (mass <-> substance, enzyme
# units <-> [IU], ...). Units of the same kind convert by algebra and need no entry.
#
# CTCAE gives most absolute thresholds in both unit systems, rounded independently; results.ctcae compares a value
# in such a unit with the text's own number and converts other units within their kind (exact), so these factors
# decide a grade only where the text has one unit system alone. Which factor applies, per analyte:
# - calcium: CTCAE's own 4 mg/dL per mmol/L. The text pairs 8.0 / 2.0, 7.0 / 1.75, 6.0 / 1.5 and its comment
#   says "conversion factor from mmol/L to mg/dL is 4"; ionized calcium has mmol/L thresholds only, so 4.0 mg/dL
#   must be 1.0 mmol/L (40.08 g/mol would make it 0.998, grade 2). Used for result entry too (0.2 % from 4.008).
# - glucose (55 / 3.0, 40 / 2.2, 30 / 1.7), magnesium (1.2 / 0.5, 0.9 / 0.4, 0.7 / 0.3, 3.0 / 1.23, 8.0 / 3.30),
#   haemoglobin (10.0 / 6.2, 8.0 / 4.9), cholesterol (300 / 7.75 ...: 38.7) and triglycerides (150 / 1.71 ...:
#   87.7): both systems are in the text, their pairs imply no single factor; each unit is graded on its own
#   numbers, the molar factor below only converts result entries.
# - creatinine, bilirubin, uric acid: graded as multiples of ULN / baseline only; the factor cancels.
# - albumin, fibrinogen (g/L, mg/dL), cell counts: decimal scales, exact by algebra; fibrinogen umol/L (34 mg/dL
#   per umol/L) is not in the text.
ANALYTES: Final[dict[str, Analyte]] = {
    "hemoglobin": Analyte("g/dL", {"mmol/L": "1/0.6206"}, ("718-7",), "1 g/dL = 0.6206 mmol/L (monomer, Fe basis)"),
    "cells": Analyte("10*9/L", {}, ("777-3", "6690-2", "751-8", "731-0", "26464-8", "789-8", "24467-3")),
    "glucose": Analyte("mmol/L", {"mg/dL": "1/18.016"}, ("2345-7", "2339-0"), "180.16 g/mol"),
    "calcium": Analyte(
        "mmol/L",
        {"mg/dL": "1/4", "meq/L": "1/2"},
        ("17861-6", "2000-8", "1994-3"),
        "CTCAE's 4 mg/dL per mmol/L (Ca 40.08 g/mol gives 4.008, 0.2 % apart); divalent: 2 mEq = 1 mmol",
    ),
    "magnesium": Analyte("mmol/L", {"mg/dL": "1/2.431", "meq/L": "1/2"}, ("19123-9", "2601-3"), "24.31 g/mol"),
    "sodium": Analyte("mmol/L", {"meq/L": "1"}, ("2951-2",), "monovalent: 1 mEq = 1 mmol"),
    "potassium": Analyte("mmol/L", {"meq/L": "1"}, ("2823-3",), "monovalent: 1 mEq = 1 mmol"),
    "cholesterol": Analyte("mmol/L", {"mg/dL": "1/38.67"}, ("2093-3",), "386.7 g/mol"),
    "triglycerides": Analyte("mmol/L", {"mg/dL": "1/88.57"}, ("2571-8",), "885.7 g/mol (triolein)"),
    "albumin": Analyte("g/L", {}, ("1751-7",)),
    "fibrinogen": Analyte("g/L", {"umol/L": "0.34"}, ("3255-7",), "340 kDa: 1 umol/L = 34 mg/dL"),
    "haptoglobin": Analyte("g/L", {}, ("4542-7",)),
    "creatinine": Analyte("umol/L", {"mg/dL": "88.42"}, ("2160-0",), "113.1 g/mol"),
    "bilirubin": Analyte("umol/L", {"mg/dL": "17.1"}, ("1975-2",), "584.7 g/mol"),
    "uric acid": Analyte("umol/L", {"mg/dL": "59.48"}, ("3084-1",), "168.1 g/mol"),
    "free T4": Analyte("ng/dL", {"pmol/L": "1/12.87"}, ("3024-7",), "776.9 g/mol"),
    "enzyme": Analyte(
        "U/L",
        {"[IU]/L": "1"},
        ("1742-6", "1920-8", "6768-6", "2324-2", "2532-0", "3040-3", "1798-8", "2157-6"),
        "international unit = enzyme unit (1 umol/min)",
    ),
    "seconds": Analyte("s", {}, ("14979-9", "5902-2")),
    "inr": Analyte("{INR}", {}, ("6301-6",)),
    "ph": Analyte("[pH]", {"1": "1"}, ("2744-1", "11558-4")),
    "HbA1c": Analyte("%", {}, ("4548-4",), "IFCC mmol/mol <-> NGSP %: affine, see convert()"),
}

_BY_LOINC: Final[dict[str, str]] = {loinc: name for name, a in ANALYTES.items() for loinc in a.loincs}


def _to_base(analyte: str) -> dict[str, Fraction]:
    """Kind -> factor from the kind's base (g/L, mol/L, ...) to the analyte's base unit."""
    spec = ANALYTES[analyte]
    units = {spec.base: "1", **spec.bridges}
    table: dict[str, Fraction] = {}
    for text, number in units.items():
        unit = parse(text)
        if unit is None:
            raise ValueError(f"{analyte}: cannot read unit {text!r}")
        table[unit.kind] = _number(number) / unit.scale
    return table


_TO_BASE: Final[dict[str, dict[str, Fraction]]] = {name: _to_base(name) for name in ANALYTES}

# HbA1c: NGSP % = 0.09148 x IFCC mmol/mol + 2.152 (IFCC-NGSP master equation, Hoelzel et al. 2004).
_HBA1C_SLOPE: Final = Decimal("0.09148")
_HBA1C_INTERCEPT: Final = Decimal("2.152")


def analyte_for(loinc: str) -> str | None:
    """The :data:`ANALYTES` entry of a LOINC code, or None for a test the table does not list."""
    return _BY_LOINC.get(loinc)


def accepts(analyte: str, unit: Unit) -> bool:
    """Whether ``unit`` is a unit of ``analyte``."""
    return unit.kind in _TO_BASE[analyte]


def ratio(source: Unit, target: Unit, analyte: str | None) -> Fraction | None:
    """The factor from ``source`` to ``target`` (value in target = value in source x factor), or None.

    Without an analyte only units of the same kind convert; with one, both units must be the analyte's.
    """
    if analyte is None:
        return source.scale / target.scale if source.kind == target.kind else None
    table = _TO_BASE[analyte]
    if source.kind not in table or target.kind not in table:
        return None
    return source.scale * table[source.kind] / (target.scale * table[target.kind])


def factor(source: str, target: str, analyte: str | None = None) -> Fraction | None:
    """:func:`ratio` of two unit strings; None when either is unknown or they do not convert."""
    s, t = parse(source), parse(target)
    if s is None or t is None:
        return None
    return ratio(s, t, analyte)


def apply(value: Decimal, by: Fraction) -> Decimal:
    """``value`` x ``by``, exact whenever the result is a decimal (0.8 x 1/1000, 4.0 x 1/4, ...)."""
    return value * by.numerator / by.denominator


def convert(value: Decimal, unit: str, target: str, *, loinc: str) -> Decimal:
    """`value` in `unit` expressed in `target` (the catalogue unit of the analyte `loinc`)."""
    if not unit.strip():
        raise UnitError("A unit is required.")
    source, goal = parse_cached(unit), parse_cached(target)
    if source is None or goal is None:
        raise UnitError(f"Cannot convert {unit!r} to {target!r} for this test.")
    if source == goal:
        return value
    analyte = analyte_for(loinc)
    if analyte == "HbA1c" and {source.kind, goal.kind} == {"mmol/mol", "%"}:
        if source.kind == "mmol/mol":
            return value * _HBA1C_SLOPE + _HBA1C_INTERCEPT
        return (value - _HBA1C_INTERCEPT) / _HBA1C_SLOPE
    by = ratio(source, goal, analyte)
    if by is None:
        raise UnitError(f"Cannot convert {unit!r} to {target!r} for this test.")
    return apply(value, by)
