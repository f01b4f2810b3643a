"""CTCAE v5.0 grading of laboratory values: a pure function, no Django and no database.

>>> from results.ctcae import grade
>>> g = grade("Alanine aminotransferase increased", 140, unit="U/L", uln=40)  # 3.5 x ULN
>>> g == 2, g.lab_only, g.version
(True, False, '5.0')

``grade()`` returns a :class:`CtcaeGrade`, an ``int`` (0-4) that also carries ``lab_only``, ``assumed``,
``version``, ``term`` and the ``criterion`` that decided it, or ``None`` when the criteria cannot assign a grade from
what was given:

- ``unit`` is a UCUM string (``g/dL``, ``10*9/L``, ``10*3/uL``, ``/mm3``, ``10*3/mL``, ``mmol/L``, ``U/L``, ...; case,
  spaces, ``^`` for ``*`` and ``µ`` for ``u`` are tolerated), read by the unit algebra of :mod:`results.units`. A
  value in a unit the CTCAE text gives thresholds in is compared as it is; one in another unit of the analyte is
  converted first (to the text's unit of the same kind when there is one, exactly; else with the factor of
  ``results.units.ANALYTES``, CTCAE's own where its text implies one: calcium 4 mg/dL per mmol/L). An incompatible
  unit (e.g. ``U/L`` for potassium) gives ``None``, and so does a missing unit when an absolute threshold is
  needed. INR and pH are dimensionless and need no unit.
- ``lln``, ``uln`` and ``baseline`` must be in the same unit as ``value`` (they are converted with it). For terms
  graded only as multiples of ULN/LLN/baseline the unit is merely checked to belong to the analyte and may be
  omitted.
- A value gets the highest grade whose criterion it meets (band edges exactly as the CTCAE text: ">3.0 - 5.0 x
  ULN" is grade 2, so 3.0 x ULN is still grade 1). A grade is returned only if no criterion that could not be
  evaluated (missing LLN/ULN/unit) could have given a higher one: a "decreased" term without an LLN can only be
  graded 2-4, a value above the grade-2 threshold then gives ``None``; a value at or above the LLN is grade 0.
- ALT, AST, ALP, GGT and bilirubin switch to multiples of the baseline when the baseline was abnormal (above the
  ULN; the ULN is needed to tell). Creatinine also grades against any baseline, fibrinogen against an abnormal
  (below-LLN) baseline, INR against a baseline assuming anticoagulation. Without a baseline: normal / skipped.
  Fibrinogen takes the worse of the LLN multiples and the decrease from an abnormal baseline.
- ``lab_only`` is True when CTCAE's definition of the returned grade, or of a higher one, also involves clinical
  findings the value cannot show (symptoms, intervention, hospitalisation, transfusion, bleeding, life-threatening
  consequences), or when a worst-case clinical assumption was made (e.g. lipase > 5 x ULN "with signs or symptoms"
  -> 4). The clinical grade may then differ. Grade 0 is never lab_only.
- ``assumed`` is True when the grade rests on such a worst-case assumption (hyponatraemia 125-129 mmol/L ->
  3 "symptomatic", lipase > 5 x ULN -> 4 "with signs or symptoms", hypokalaemia < LLN -> 2, uric acid > ULN -> 3,
  INR above a baseline "on anticoagulation"); an assumed grade is always lab_only as well.

The criteria themselves are data, in :mod:`results.ctcae_table`, next to the CTCAE text they come from.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from results import units
from results.ctcae_table import DIMENSIONLESS, TERMS_V5, GradeRow, TermRow
from results.units import Unit

__all__ = ["SYSTEMS", "TERMS", "VERSION", "CtcaeGrade", "UnknownTermError", "grade", "grade_detail", "unit_for"]

VERSION: Final = "5.0"
SYSTEMS: Final = ("SI", "USCV")

Number = int | float | Decimal
_Ref = Literal["ULN", "LLN", "baseline"]


class UnknownTermError(KeyError, ValueError):
    """The term is not one of the CTCAE v5.0 lab terms in :data:`TERMS` (both a KeyError and a ValueError)."""

    def __init__(self, term: str) -> None:
        close = difflib.get_close_matches(term, sorted(TERMS_V5), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        self.term = term
        self.message = f"unknown CTCAE v{VERSION} lab term {term!r}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class CtcaeGrade(int):
    """A CTCAE grade 0-4. It is an ``int`` (compares, hashes and serialises as the grade) and is immutable.

    Equality is the int's: two grades with the same number but different ``lab_only`` compare equal.
    """

    lab_only: bool
    version: str
    term: str
    criterion: str
    assumed: bool

    def __new__(
        cls, grade: int, *, lab_only: bool, version: str, term: str, criterion: str = "", assumed: bool = False
    ) -> CtcaeGrade:
        if not 0 <= grade <= 4:
            raise ValueError(f"a CTCAE grade is 0-4, not {grade}")
        obj = super().__new__(cls, grade)
        fields = (("lab_only", lab_only), ("version", version), ("term", term), ("criterion", criterion))
        for name, value in (*fields, ("assumed", assumed)):
            object.__setattr__(obj, name, value)
        return obj

    @property
    def grade(self) -> int:
        return int(self)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return (
            f"CtcaeGrade(grade={int(self)}, lab_only={self.lab_only}, version={self.version!r}, "
            f"term={self.term!r}, criterion={self.criterion!r}, assumed={self.assumed})"
        )

    __str__ = int.__repr__

    def __reduce__(self) -> tuple[Callable[..., CtcaeGrade], tuple[Any, ...]]:
        return _restore, (int(self), self.lab_only, self.version, self.term, self.criterion, self.assumed)


def _restore(grade: int, lab_only: bool, version: str, term: str, criterion: str, assumed: bool = False) -> CtcaeGrade:
    """Unpickle (``assumed`` defaults to False for grades pickled before it existed)."""
    return CtcaeGrade(grade, lab_only=lab_only, version=version, term=term, criterion=criterion, assumed=assumed)


# --------------------------------------------------------------------------------------------- table compiling

_OPS: Final[dict[str, Callable[[Decimal, Decimal], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NUM = r"(\d+(?:\.\d+)?)"
_HEAD = re.compile(r"\s*(<=|>=|<|>)\s*(.+?)\s*")
_RATIO = re.compile(rf"{_NUM}\s*x\s*(ULN|LLN|baseline)")
_OFFSET = re.compile(rf"ULN\s*\+\s*{_NUM}\s*(\S+)")
_AMOUNT = re.compile(rf"{_NUM}\s*(\S+)")
_PLAIN = re.compile(_NUM)


def _unit(text: str) -> Unit:
    unit = units.parse(text)
    if unit is None:
        raise ValueError(f"unknown unit {text!r}")
    return unit


_ONE: Final = _unit("1")  # the unit of dimensionless thresholds (INR, pH) and of a missing unit there


@dataclass(frozen=True)
class _Criterion:
    source: str
    op: str
    ref: _Ref | None  # None: absolute threshold
    factor: Decimal  # multiple of ref (ratio criteria)
    amounts: Mapping[Unit, Decimal]  # unit -> threshold (absolute) or offset above ref
    assumption: str | None

    @property
    def label(self) -> str:
        return f"{self.source} (assuming {self.assumption})" if self.assumption else self.source


@dataclass(frozen=True)
class _Grade:
    number: int
    text: str
    any: tuple[_Criterion, ...]
    assuming: tuple[_Criterion, ...]
    if_normal: tuple[_Criterion, ...]
    if_abnormal: tuple[_Criterion, ...]
    clinical: bool


@dataclass(frozen=True)
class _Term:
    name: str
    direction: Literal["H", "L"]
    analyte: str
    text_units: tuple[Unit, ...]  # units the absolute thresholds are written in (first = fallback)
    units: Mapping[str, str]  # unit system -> UCUM
    grades: tuple[_Grade, ...]  # grades 1..4
    max_clinical: int  # highest grade whose text has a clinical element (0: none)


def _parse(source: str, term: str, assumption: str | None) -> _Criterion:
    head = _HEAD.fullmatch(source)
    if head is None:
        raise ValueError(f"{term}: cannot parse criterion {source!r}")
    op, rhs = head.groups()
    if ratio := _RATIO.fullmatch(rhs):
        ref: _Ref = ratio.group(2)  # type: ignore[assignment]
        return _Criterion(source, op, ref, Decimal(ratio.group(1)), {}, assumption)
    if offset := _OFFSET.fullmatch(rhs):
        return _Criterion(source, op, "ULN", Decimal(1), {_unit(offset.group(2)): Decimal(offset.group(1))}, assumption)
    if _PLAIN.fullmatch(rhs):
        return _Criterion(source, op, None, Decimal(1), {_ONE: Decimal(rhs)}, assumption)
    amounts: dict[Unit, Decimal] = {}
    for part in rhs.split("|"):
        amount = _AMOUNT.fullmatch(part.strip())
        if amount is None:
            raise ValueError(f"{term}: cannot parse criterion {source!r}")
        amounts[_unit(amount.group(2))] = Decimal(amount.group(1))
    return _Criterion(source, op, None, Decimal(1), amounts, assumption)


def _compile_grade(term: str, row: TermRow, number: int, grade_row: GradeRow) -> _Grade:
    assumption = grade_row.get("assumption")
    if bool(assumption) != bool(grade_row.get("assuming")):
        raise ValueError(f"{term} grade {number}: 'assuming' and 'assumption' go together")

    def parse(key: Literal["any", "if_baseline_normal", "if_baseline_abnormal", "assuming"]) -> tuple[_Criterion, ...]:
        return tuple(_parse(s, term, assumption if key == "assuming" else None) for s in grade_row.get(key, []))

    compiled = _Grade(
        number=number,
        text=grade_row["text"],
        any=parse("any"),
        assuming=parse("assuming"),
        if_normal=parse("if_baseline_normal"),
        if_abnormal=parse("if_baseline_abnormal"),
        clinical=grade_row.get("clinical", False),
    )
    allowed_ops = {">", ">="} if row["direction"] == "H" else {"<", "<="}
    wrong_limit = "LLN" if row["direction"] == "H" else "ULN"
    for criterion in compiled.any + compiled.assuming + compiled.if_normal + compiled.if_abnormal:
        if criterion.op not in allowed_ops or criterion.ref == wrong_limit:
            raise ValueError(f"{term} grade {number}: {criterion.source!r} contradicts direction {row['direction']}")
    if compiled.text == "-" and (compiled.clinical or _criteria(compiled)):
        raise ValueError(f"{term} grade {number}: an undefined grade ('-') has no criteria")
    return compiled


def _criteria(g: _Grade) -> tuple[_Criterion, ...]:
    return g.any + g.assuming + g.if_normal + g.if_abnormal


def _compile(name: str, row: TermRow) -> _Term:
    if sorted(row["grades"]) != [1, 2, 3, 4]:
        raise ValueError(f"{name}: grades 1-4 are needed")
    grades = tuple(_compile_grade(name, row, n, row["grades"][n]) for n in (1, 2, 3, 4))

    unit_sets = {tuple(c.amounts) for g in grades for c in _criteria(g) if c.amounts}
    if len(unit_sets) > 1:
        raise ValueError(f"{name}: every absolute threshold must be given in the same units, got {unit_sets}")
    text_units = unit_sets.pop() if unit_sets else ()
    for unit in (*text_units, *(_unit(u) for u in row["units"].values())):
        if not units.accepts(row["analyte"], unit):
            raise ValueError(f"{name}: unit {unit.text!r} is not a {row['analyte']} unit")
    if sorted(row["units"]) != sorted(SYSTEMS):
        raise ValueError(f"{name}: units for {SYSTEMS} are needed")
    return _Term(
        name=name,
        direction=row["direction"],
        analyte=row["analyte"],
        text_units=text_units,
        units=dict(row["units"]),
        grades=grades,
        max_clinical=max((g.number for g in grades if g.clinical), default=0),
    )


_TERMS: Final[dict[str, _Term]] = {name: _compile(name, row) for name, row in TERMS_V5.items()}

#: Every CTCAE v5.0 term :func:`grade` knows.
TERMS: Final[frozenset[str]] = frozenset(_TERMS)


# --------------------------------------------------------------------------------------------------- grading


def _lookup(term: str) -> _Term:
    try:
        return _TERMS[term]
    except KeyError:
        raise UnknownTermError(term) from None


def _decimal(value: Number | None, name: str) -> Decimal | None:
    """Exact decimal of a number (a float by its shortest repr, so 1.2 * 1.5 == 1.8); None for None/NaN/inf."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return result if result.is_finite() else None


def _holds(criterion: _Criterion, value: Decimal, refs: Mapping[str, Decimal | None], unit: Unit | None) -> bool | None:
    """Whether the value meets the criterion; None when that cannot be told (missing limit or unit)."""
    if criterion.ref is None:
        if unit is None:
            return None
        threshold = criterion.amounts[unit]
    else:
        ref = refs[criterion.ref]
        if ref is None:
            # A baseline multiple is an optional alternative: without a baseline it simply does not apply.
            return False if criterion.ref == "baseline" else None
        if criterion.amounts:
            if unit is None:
                return None
            threshold = ref + criterion.amounts[unit]
        else:
            threshold = criterion.factor * ref
    return _OPS[criterion.op](value, threshold)


def _references(lln: Number | None, uln: Number | None, baseline: Number | None) -> dict[str, Decimal | None]:
    """The reference values as Decimals by name; ValueError for a negative one or a ULN of zero."""
    refs: dict[str, Decimal | None] = {
        "LLN": _decimal(lln, "lln"),
        "ULN": _decimal(uln, "uln"),
        "baseline": _decimal(baseline, "baseline"),
    }
    for name, ref in refs.items():
        if ref is not None and (ref < 0 or (name == "ULN" and ref == 0)):
            raise ValueError(f"{name} must be positive, got {ref}")
    return refs


def _baseline_state(spec: _Term, refs: Mapping[str, Decimal | None]) -> Literal["normal", "abnormal"] | None:
    """Whether the baseline is normal or abnormal on the term's side; None when the limit to tell is missing."""
    base = refs["baseline"]
    if base is None:
        return "normal"
    limit = refs["ULN"] if spec.direction == "H" else refs["LLN"]
    if limit is None:
        return None
    if (base > limit) if spec.direction == "H" else (base < limit):
        return "abnormal"
    return "normal"


def grade(
    term: str,
    value: Number,
    *,
    unit: str | None,
    lln: Number | None = None,
    uln: Number | None = None,
    baseline: Number | None = None,
    version: str = VERSION,
) -> CtcaeGrade | None:
    """The CTCAE grade (0-4) of one lab value for ``term``, or None where the criteria cannot assign one.

    Raises :class:`UnknownTermError` (a KeyError and ValueError) for a term not in :data:`TERMS` and ValueError
    for a version other than "5.0" or a negative limit / non-positive ULN. See the module docstring.
    """
    if version != VERSION:
        raise ValueError(f"unsupported CTCAE version {version!r}: only {VERSION!r} is implemented")
    spec = _lookup(term)
    x = _decimal(value, "value")
    refs = _references(lln, uln, baseline)
    if x is None:
        return None

    # Units: refuse a foreign one; convert to a unit the CTCAE text gives thresholds in.
    # A unit the text gives thresholds in is compared as it is; another is converted to the text's unit of the
    # same kind if there is one (mg/L -> mg/dL, /uL -> 10*9/L: exact), else to the first (CTCAE's own factor).
    source: Unit | None
    if unit is None or not unit.strip():
        source = _ONE if spec.analyte in DIMENSIONLESS else None
    else:
        source = units.parse_cached(unit)
        if source is None or not units.accepts(spec.analyte, source):
            return None
    working = source
    if source is not None and spec.text_units and source not in spec.text_units:
        working = next((u for u in spec.text_units if u.kind == source.kind), spec.text_units[0])
        k = units.ratio(source, working, spec.analyte)
        assert k is not None  # both are units of the analyte
        x = units.apply(x, k)
        refs = {name: None if ref is None else units.apply(ref, k) for name, ref in refs.items()}

    # Baseline state for the terms whose criteria switch on it: a missing baseline counts as normal; telling
    # abnormal from normal needs the limit on the term's side.
    state = _baseline_state(spec, refs)

    unknown_above = False  # some criterion of a higher grade could not be evaluated
    for g in reversed(spec.grades):
        if state is None:
            branch: tuple[_Criterion, ...] = ()
            unknown_here = bool(g.if_normal or g.if_abnormal)
        else:
            branch = g.if_normal if state == "normal" else g.if_abnormal
            unknown_here = False
        for criterion in branch + g.any + g.assuming:  # plain lab criteria before assumed ones
            outcome = _holds(criterion, x, refs, working)
            if outcome:
                if unknown_above:
                    return None
                assumed = criterion.assumption is not None
                return CtcaeGrade(
                    g.number,
                    lab_only=assumed or g.number <= spec.max_clinical,
                    version=VERSION,
                    term=spec.name,
                    criterion=criterion.label,
                    assumed=assumed,
                )
            if outcome is None:
                unknown_here = True
        unknown_above = unknown_above or unknown_here
    if unknown_above:
        return None
    return CtcaeGrade(0, lab_only=False, version=VERSION, term=spec.name)


#: The same function under the name that says it returns the detailed :class:`CtcaeGrade`.
grade_detail = grade


def unit_for(term: str, system: str) -> str:
    """The UCUM unit of ``term`` in a unit system, "SI" or "USCV" (US conventional).

    Where the reference file names one (UNIT_CHECK), this is it in UCUM spelling ("10^9/L" -> "10*9/L",
    "1/uL" -> "/uL", "MMOL/L" -> "mmol/L"); for terms graded as multiples of the ULN it is the usual unit.
    """
    spec = _lookup(term)
    if system not in SYSTEMS:
        raise ValueError(f"unknown unit system {system!r}: use one of {SYSTEMS}")
    return spec.units[system]
