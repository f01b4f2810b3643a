# ruff: noqa: E501  -- SPEC keeps one CTCAE term per few lines, as the text reads.
"""Every grade edge of every CTCAE term, in both unit systems: at, just inside and just outside the edge.

The points are generated from the table (``results.ctcae_table.TERMS_V5``) and from ``SPEC`` below; the expected
grade is computed from ``SPEC`` only -- this file's own reading of the CTCAE v5.0 text, as numbers -- by a small
oracle that shares no code with ``results.ctcae``. A changed threshold or comparison in the table (``> 155`` ->
``> 156``, ``< 1 x LLN`` -> ``<= 1 x LLN``) therefore fails here, and ``test_spec_numbers_are_in_the_ctcae_text``
ties every number of ``SPEC`` to the CTCAE text of the reference file.
"""

from __future__ import annotations

import importlib
import json
import operator
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from results import ctcae, ctcae_table, units
from results.ctcae import TERMS, grade, unit_for
from results.ctcae_table import TERMS_V5

REFERENCE = Path(__file__).parent / "data" / "ctcae_v5_terms.json"
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class Edge(NamedTuple):
    grade: int
    op: str
    number: Decimal
    what: str  # "ULN", "LLN", "baseline", "ULN+ <unit>" (offset) or a unit (absolute)
    when: str = ""  # "": always; "normal"/"abnormal": baseline state; "base": whenever a baseline is given
    assumed: bool = False
    derived: bool = False  # a number the CTCAE text does not print (converted by the test, e.g. Ca x 4)


def E(grade: int, op: str, number: str, what: str, when: str = "", assumed: bool = False, derived: bool = False):
    return Edge(grade, op, Decimal(number), what, when, assumed, derived)


def liver(uln: tuple[str, ...], base: tuple[tuple[str, str], ...]) -> list[Edge]:
    edges = [E(n, ">", m, "ULN", "normal") for n, m in zip((1, 2, 3, 4), uln, strict=True)]
    return edges + [E(n, op, m, "baseline", "abnormal") for n, (op, m) in zip((1, 2, 3, 4), base, strict=True)]


def pancreas() -> list[Edge]:
    return [E(1, ">", "1", "ULN"), E(2, ">", "1.5", "ULN"), E(3, ">", "2.0", "ULN", assumed=True),
            E(4, ">", "5.0", "ULN", assumed=True)]  # fmt: skip


def absolute(op: str, *rows: tuple[int, dict[str, str]], derived: tuple[str, ...] = ()) -> list[Edge]:
    return [E(n, op, number, unit, derived=unit in derived) for n, by_unit in rows for unit, number in by_unit.items()]


CELLS = ("10*9/L", "10*3/uL")
ALT_AST = liver(("1", "3.0", "5.0", "20.0"), ((">=", "1.5"), (">", "3.0"), (">", "5.0"), (">", "20.0")))
ALP_GGT = liver(("1", "2.5", "5.0", "20.0"), ((">=", "2.0"), (">", "2.5"), (">", "5.0"), (">", "20.0")))


def cells(op: str, *rows: tuple[int, str]) -> list[Edge]:
    edges = [E(n, op, number, unit) for n, number in rows for unit in CELLS]
    return edges + [E(n, op, str(Decimal(number) * 1000), "/mm3") for n, number in rows]


# term -> (direction, edges, refs): refs are (LLN, ULN) per unit system, in unit_for(term, system).
SPEC: dict[str, tuple[str, list[Edge], dict[str, tuple[str | None, str | None]]]] = {
    "Anemia": ("L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"g/L": "100", "g/dL": "10.0", "mmol/L": "6.2"}),
                                                      (3, {"g/L": "80", "g/dL": "8.0", "mmol/L": "4.9"}))],
               {"SI": ("120", None), "USCV": ("12.0", None)}),
    "Leukocytosis": ("H", [*(E(3, ">", "100", u, derived=True) for u in CELLS), E(3, ">", "100000", "/mm3")],
                     {"SI": (None, "11"), "USCV": (None, "11")}),
    "Activated partial thromboplastin time prolonged": (
        "H", [E(1, ">", "1", "ULN"), E(2, ">", "1.5", "ULN"), E(3, ">", "2.5", "ULN")],
        {"SI": (None, "40"), "USCV": (None, "35")}),
    "Alanine aminotransferase increased": ("H", ALT_AST, {"SI": (None, "40"), "USCV": (None, "33")}),
    "Aspartate aminotransferase increased": ("H", ALT_AST, {"SI": (None, "40"), "USCV": (None, "32")}),
    "Alkaline phosphatase increased": ("H", ALP_GGT, {"SI": (None, "120"), "USCV": (None, "130")}),
    "GGT increased": ("H", ALP_GGT, {"SI": (None, "60"), "USCV": (None, "48")}),
    "Blood bilirubin increased": (
        "H", liver(("1", "1.5", "3.0", "10.0"), ((">", "1.0"), (">", "1.5"), (">", "3.0"), (">", "10.0"))),
        {"SI": (None, "21"), "USCV": (None, "1.2")}),
    "Blood lactate dehydrogenase increased": ("H", [E(1, ">", "1", "ULN")], {"SI": (None, "250"), "USCV": (None, "225")}),
    "CD4 lymphocytes decreased": (
        "L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"10*9/L": "0.5", "/uL": "500", "/mm3": "500"}),
                                               (3, {"10*9/L": "0.2", "/uL": "200", "/mm3": "200"}),
                                               (4, {"10*9/L": "0.05", "/uL": "50", "/mm3": "50"}))],
        {"SI": ("0.6", None), "USCV": ("600", None)}),
    "Cholesterol high": (
        "H", [E(1, ">", "1", "ULN"), *absolute(">", (2, {"mmol/L": "7.75", "mg/dL": "300"}), (3, {"mmol/L": "10.34", "mg/dL": "400"}),
                                               (4, {"mmol/L": "12.92", "mg/dL": "500"}))],
        {"SI": (None, "5.2"), "USCV": (None, "200")}),
    "CPK increased": ("H", [E(1, ">", "1", "ULN"), E(2, ">", "2.5", "ULN"), E(3, ">", "5", "ULN"), E(4, ">", "10", "ULN")],
                      {"SI": (None, "200"), "USCV": (None, "170")}),
    "Creatinine increased": (
        "H", [E(1, ">", "1", "ULN"), E(2, ">", "1.5", "ULN"), E(3, ">", "3.0", "ULN"), E(4, ">", "6.0", "ULN"),
              E(2, ">", "1.5", "baseline", "base"), E(3, ">", "3.0", "baseline", "base")],
        {"SI": (None, "110"), "USCV": (None, "1.2")}),
    "Fibrinogen decreased": (
        "L", [E(1, "<", "1.0", "LLN"), E(2, "<", "0.75", "LLN"), E(3, "<", "0.5", "LLN"), E(4, "<", "0.25", "LLN"),
              E(4, "<", "50", "mg/dL"), E(4, "<", "0.5", "g/L", derived=True),
              E(1, "<", "1", "baseline", "abnormal"), E(2, "<=", "0.75", "baseline", "abnormal"),
              E(3, "<=", "0.5", "baseline", "abnormal"), E(4, "<=", "0.25", "baseline", "abnormal")],
        {"SI": ("2.4", None), "USCV": ("220", None)}),  # 0.25 x LLN above 50 mg/dL: both criteria matter
    "Haptoglobin decreased": ("L", [E(1, "<", "1", "LLN")], {"SI": ("0.3", None), "USCV": ("30", None)}),
    "Hemoglobin increased": (
        "H", [E(1, ">", "1", "ULN"), E(2, ">", "2", "ULN+ g/dL"), E(2, ">", "20", "ULN+ g/L", derived=True),
              E(3, ">", "4", "ULN+ g/dL"), E(3, ">", "40", "ULN+ g/L", derived=True)],
        {"SI": (None, "165"), "USCV": (None, "16.5")}),
    "INR increased": (
        "H", [E(1, ">", "1.2", "{INR}"), E(2, ">", "1.5", "{INR}"), E(3, ">", "2.5", "{INR}"),
              E(1, ">", "1", "baseline", "base", True), E(2, ">", "1.5", "baseline", "base", True),
              E(3, ">", "2.5", "baseline", "base", True)],
        {"SI": (None, None), "USCV": (None, None)}),
    "Lipase increased": ("H", pancreas(), {"SI": (None, "60"), "USCV": (None, "160")}),
    "Serum amylase increased": ("H", pancreas(), {"SI": (None, "100"), "USCV": (None, "110")}),
    "Lymphocyte count decreased": ("L", [E(1, "<", "1", "LLN"), *cells("<", (2, "0.8"), (3, "0.5"), (4, "0.2"))],
                                   {"SI": ("1.0", None), "USCV": ("1.1", None)}),
    "Lymphocyte count increased": ("H", cells(">", (2, "4"), (3, "20")), {"SI": (None, "4.8"), "USCV": (None, "3.5")}),
    "Neutrophil count decreased": ("L", [E(1, "<", "1", "LLN"), *cells("<", (2, "1.5"), (3, "1.0"), (4, "0.5"))],
                                   {"SI": ("2.0", None), "USCV": ("1.8", None)}),
    "Platelet count decreased": ("L", [E(1, "<", "1", "LLN"), *cells("<", (2, "75.0"), (3, "50.0"), (4, "25.0"))],
                                 {"SI": ("150", None), "USCV": ("140", None)}),
    "White blood cell decreased": ("L", [E(1, "<", "1", "LLN"), *cells("<", (2, "3.0"), (3, "2.0"), (4, "1.0"))],
                                   {"SI": ("4.0", None), "USCV": ("3.5", None)}),
    "Acidosis": ("L", [E(1, "<", "1", "LLN"), E(3, "<", "7.3", "[pH]")], {"SI": ("7.35", None), "USCV": ("7.36", None)}),
    "Alkalosis": ("H", [E(1, ">", "1", "ULN"), E(3, ">", "7.5", "[pH]")], {"SI": (None, "7.45"), "USCV": (None, "7.44")}),
    "Hypercalcemia": (
        "H", [E(1, ">", "1", "ULN"), *absolute(">", (2, {"mmol/L": "2.9", "mg/dL": "11.5"}), (3, {"mmol/L": "3.1", "mg/dL": "12.5"}),
                                               (4, {"mmol/L": "3.4", "mg/dL": "13.5"}))],
        {"SI": (None, "2.55"), "USCV": (None, "10.2")}),
    "Hypercalcemia (Ionized)": (  # mg/dL: CTCAE's factor 4 (reference COMMENT)
        "H", [E(1, ">", "1", "ULN"), *absolute(">", (2, {"mmol/L": "1.5", "mg/dL": "6.0"}), (3, {"mmol/L": "1.6", "mg/dL": "6.4"}),
                                               (4, {"mmol/L": "1.8", "mg/dL": "7.2"}), derived=("mg/dL",))],
        {"SI": (None, "1.3"), "USCV": (None, "5.2")}),
    "Hyperkalemia": ("H", [E(1, ">", "1", "ULN"), *absolute(">", (2, {"mmol/L": "5.5"}), (3, {"mmol/L": "6.0"}), (4, {"mmol/L": "7.0"}))],
                     {"SI": (None, "5.1"), "USCV": (None, "5.3")}),
    "Hypermagnesemia": (
        "H", [E(1, ">", "1", "ULN"), *absolute(">", (3, {"mmol/L": "1.23", "mg/dL": "3.0"}), (4, {"mmol/L": "3.30", "mg/dL": "8.0"}))],
        {"SI": (None, "1.05"), "USCV": (None, "2.6")}),
    "Hypernatremia": ("H", [E(1, ">", "1", "ULN"), *absolute(">", (2, {"mmol/L": "150"}), (3, {"mmol/L": "155"}), (4, {"mmol/L": "160"}))],
                      {"SI": (None, "145"), "USCV": (None, "146")}),
    "Hypertriglyceridemia": (
        "H", [*absolute(">=", (1, {"mmol/L": "1.71", "mg/dL": "150"})),
              *absolute(">", (2, {"mmol/L": "3.42", "mg/dL": "300"}), (3, {"mmol/L": "5.7", "mg/dL": "500"}),
                        (4, {"mmol/L": "11.4", "mg/dL": "1000"}))],
        {"SI": (None, None), "USCV": (None, None)}),
    "Hyperuricemia": ("H", [E(1, ">", "1", "ULN"), E(3, ">", "1", "ULN", assumed=True)], {"SI": (None, "420"), "USCV": (None, "7.0")}),
    "Hypoalbuminemia": ("L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"g/L": "30", "g/dL": "3"}), (3, {"g/L": "20", "g/dL": "2"}))],
                        {"SI": ("35", None), "USCV": ("3.5", None)}),
    "Hypocalcemia": (
        "L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"mmol/L": "2.0", "mg/dL": "8.0"}), (3, {"mmol/L": "1.75", "mg/dL": "7.0"}),
                                               (4, {"mmol/L": "1.5", "mg/dL": "6.0"}))],
        {"SI": ("2.15", None), "USCV": ("8.6", None)}),
    "Hypocalcemia (Ionized)": (
        "L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"mmol/L": "1.0", "mg/dL": "4.0"}), (3, {"mmol/L": "0.9", "mg/dL": "3.6"}),
                                               (4, {"mmol/L": "0.8", "mg/dL": "3.2"}), derived=("mg/dL",))],
        {"SI": ("1.15", None), "USCV": ("4.6", None)}),
    "Hypoglycemia": (
        "L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"mmol/L": "3.0", "mg/dL": "55"}), (3, {"mmol/L": "2.2", "mg/dL": "40"}),
                                               (4, {"mmol/L": "1.7", "mg/dL": "30"}))],
        {"SI": ("3.9", None), "USCV": ("70", None)}),
    "Hypokalemia": ("L", [E(1, "<", "1", "LLN"), E(2, "<", "1", "LLN", assumed=True),
                          *absolute("<", (3, {"mmol/L": "3.0"}), (4, {"mmol/L": "2.5"}))],
                    {"SI": ("3.5", None), "USCV": ("3.6", None)}),
    "Hypomagnesemia": (
        "L", [E(1, "<", "1", "LLN"), *absolute("<", (2, {"mmol/L": "0.5", "mg/dL": "1.2"}), (3, {"mmol/L": "0.4", "mg/dL": "0.9"}),
                                               (4, {"mmol/L": "0.3", "mg/dL": "0.7"}))],
        {"SI": ("0.7", None), "USCV": ("1.7", None)}),
    # "125-129 mmol/L" is the integer band [125, 130): its edge, < 130, is derived from 129.
    "Hyponatremia": ("L", [E(1, "<", "1", "LLN"), E(2, "<", "130", "mmol/L", assumed=True, derived=True),
                           E(3, "<", "130", "mmol/L", assumed=True, derived=True), E(3, "<", "125", "mmol/L"), E(4, "<", "120", "mmol/L")],
                     {"SI": ("135", None), "USCV": ("136", None)}),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- the oracle


class Case(NamedTuple):
    term: str
    system: str
    unit: str
    value: Decimal
    lln: Decimal | None
    uln: Decimal | None
    baseline: Decimal | None
    expected: int | None
    assumed: bool


def _state(direction: str, baseline: Decimal | None, lln: Decimal | None, uln: Decimal | None) -> str:
    if baseline is None:
        return "none"
    limit = uln if direction == "H" else lln
    if limit is None:
        return "unknown"  # the baseline cannot be judged: its branch criteria cannot be evaluated
    return "abnormal" if (baseline > limit if direction == "H" else baseline < limit) else "normal"


def _applies(edge: Edge, state: str) -> bool:
    return {
        "": True,
        "normal": state in ("none", "normal"),
        "abnormal": state == "abnormal",
        "base": state != "none",
    }[edge.when]


def _unknowable(edge: Edge, state: str) -> bool:
    return state == "unknown" and edge.when in ("normal", "abnormal")


def _threshold(edge: Edge, unit: str, refs: dict[str, Decimal | None]) -> Decimal | bool | None:
    """The edge's threshold in ``unit``; None when its reference is missing; False when it is in another unit."""
    if edge.what in ("ULN", "LLN", "baseline"):
        ref = refs[edge.what]
        return None if ref is None else edge.number * ref
    if edge.what.startswith("ULN+ "):
        if edge.what[5:] != unit:
            return False
        return None if refs["ULN"] is None else refs["ULN"] + edge.number
    return edge.number if edge.what == unit else False


def expected_grade(term: str, unit: str, value: Decimal, refs: dict[str, Decimal | None]) -> tuple[int | None, bool]:
    direction, edges, _ = SPEC[term]
    state = _state(direction, refs["baseline"], refs["LLN"], refs["ULN"])
    best, assumed, unknown = 0, False, set()
    for edge in edges:
        if _unknowable(edge, state):
            unknown.add(edge.grade)
            continue
        if not _applies(edge, state):
            continue
        threshold = _threshold(edge, unit, refs)
        if threshold is False:
            continue
        if threshold is None:
            unknown.add(edge.grade)
            continue
        assert isinstance(threshold, Decimal)
        holds = OPS[edge.op](value, threshold)
        if holds and (edge.grade > best or (edge.grade == best and assumed and not edge.assumed)):
            best, assumed = edge.grade, edge.assumed
    if any(g > best for g in unknown):
        return None, False
    return best, assumed


# ---------------------------------------------------------------------------------------- generating points

_TABLE_CRITERION = re.compile(r"(<=|>=|<|>)\s*(.+)")


def table_thresholds(term: str, unit: str, refs: dict[str, Decimal | None]) -> Iterator[Decimal]:
    """Every threshold the table itself states for ``term`` in ``unit`` (read with a regex of this test)."""
    for row in TERMS_V5[term]["grades"].values():
        for key in ("any", "if_baseline_normal", "if_baseline_abnormal", "assuming"):
            for text in row.get(key, []):  # type: ignore[attr-defined]
                match = _TABLE_CRITERION.fullmatch(text.strip())
                assert match is not None, text
                rhs = match.group(2)
                if ratio := re.fullmatch(r"([\d.]+) x (ULN|LLN|baseline)", rhs):
                    ref = refs[ratio.group(2)]
                    if ref is not None:
                        yield Decimal(ratio.group(1)) * ref
                elif offset := re.fullmatch(r"ULN \+ ([\d.]+) (\S+)", rhs):
                    if refs["ULN"] is not None and offset.group(2) == unit:
                        yield refs["ULN"] + Decimal(offset.group(1))
                else:
                    for part in rhs.split("|"):
                        number, _, part_unit = part.strip().partition(" ")
                        if part_unit in (unit, "") or (part_unit in CELLS and unit in CELLS):
                            yield Decimal(number)


def spec_thresholds(term: str, unit: str, refs: dict[str, Decimal | None]) -> Iterator[Decimal]:
    for edge in SPEC[term][1]:
        threshold = _threshold(edge, unit, refs)
        if isinstance(threshold, Decimal):
            yield threshold


def scenarios(term: str, system: str) -> Iterator[dict[str, Decimal | None]]:
    direction, edges, limits = SPEC[term]
    lln, uln = (None if x is None else Decimal(x) for x in limits[system])
    yield {"LLN": lln, "ULN": uln, "baseline": None}
    whens = {edge.when for edge in edges}
    limit = uln if direction == "H" else lln
    if "abnormal" in whens and limit is not None:
        # abnormal (beyond the limit) and normal baselines
        yield {"LLN": lln, "ULN": uln, "baseline": limit * (Decimal(2) if direction == "H" else Decimal("0.8"))}
        yield {"LLN": lln, "ULN": uln, "baseline": limit * (Decimal("1.01") if direction == "H" else Decimal("0.99"))}
        yield {"LLN": lln, "ULN": uln, "baseline": limit * (Decimal("0.8") if direction == "H" else Decimal("1.2"))}
    if "base" in whens:
        base = Decimal("0.6") * uln if uln is not None else Decimal("0.9")
        yield {"LLN": lln, "ULN": uln, "baseline": base}
        yield {"LLN": lln, "ULN": uln, "baseline": base * 2}
    if lln is not None or uln is not None:
        yield {"LLN": None, "ULN": None, "baseline": None}  # absolute criteria only (or None)


# term -> extra "system" -> (unit, factor from the SI unit): units the CTCAE text also gives numbers in.
EXTRA_UNITS: dict[str, dict[str, tuple[str, Decimal]]] = {
    "Anemia": {"mmol/L": ("mmol/L", Decimal("0.06206"))},
    **{t: {"/mm3": ("/mm3", Decimal(1000))} for t, v in SPEC.items() if any(e.what == "/mm3" for e in v[1])},
}


def cases() -> Iterator[Case]:
    for term in sorted(SPEC):
        for system in ("SI", "USCV", *EXTRA_UNITS.get(term, {})):
            # other units the CTCAE text gives numbers in: limits scaled from SI
            unit, scale = (
                (unit_for(term, system), Decimal(1)) if system in ("SI", "USCV") else EXTRA_UNITS[term][system]
            )
            for refs in scenarios(term, "SI" if scale != 1 else system):
                refs = {k: None if v is None else v * scale for k, v in refs.items()}
                points: set[Decimal] = set()
                for threshold in {*table_thresholds(term, unit, refs), *spec_thresholds(term, unit, refs)}:
                    delta = threshold.copy_abs() * Decimal("0.000001")
                    points |= {threshold - delta, threshold, threshold + delta}
                for value in sorted(points):
                    expected, assumed = expected_grade(term, unit, value, refs)
                    yield Case(term, system, unit, value, refs["LLN"], refs["ULN"], refs["baseline"], expected, assumed)


CASES = list(cases())


def _id(case: Case) -> str:
    refs = ",".join(f"{n}={v}" for n, v in (("lln", case.lln), ("uln", case.uln), ("base", case.baseline)) if v)
    return f"{case.term}-{case.system}-{case.value}{case.unit}-{refs}"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Build a term from the table again inside the test: reload the table module (its ``_liver`` rows), derive the
    unit factors and compile the term. Mutation testing sees only code that runs during a test; this makes it see
    the code that otherwise runs once, at import."""

    def build(term: str) -> None:
        table = importlib.reload(ctcae_table)
        analyte = table.TERMS_V5[term]["analyte"]
        monkeypatch.setitem(units._TO_BASE, analyte, units._to_base(analyte))
        monkeypatch.setitem(ctcae._TERMS, term, ctcae._compile(term, table.TERMS_V5[term]))

    return build


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_edge(case: Case, fresh: Callable[[str], None]) -> None:
    fresh(case.term)
    result = grade(case.term, case.value, unit=case.unit, lln=case.lln, uln=case.uln, baseline=case.baseline)
    if case.expected is None:
        assert result is None
        return
    assert result == case.expected
    assert result is not None
    assert result.assumed is case.assumed
    if case.assumed:
        assert result.lab_only


def test_the_cases_cover_every_term_both_systems_and_grades_1_to_4_where_defined():
    assert set(SPEC) == TERMS
    covered = {(c.term, c.system) for c in CASES}
    assert {(t, s) for t in TERMS for s in ("SI", "USCV")} <= covered
    seen = {(c.term, c.expected) for c in CASES}
    for term, (_, edges, _) in SPEC.items():
        for edge in edges:
            # a grade whose criterion a higher grade repeats (worst-case assumption) is never returned
            shadowed = any(e[1:5] == edge[1:5] and e.grade > edge.grade for e in edges)
            assert shadowed or (term, edge.grade) in seen, (term, edge.grade)
    assert len(CASES) > 1500


# ------------------------------------------------------------------------------- SPEC against the CTCAE text


def _numbers(text: str) -> set[Decimal]:
    return {Decimal(n) for n in re.findall(r"\d+(?:\.\d+)?", text.replace(",", ""))}


def test_spec_numbers_are_in_the_ctcae_text():
    rows = {(row["TERM"], row["units_system"]): row for row in json.loads(REFERENCE.read_text())}
    for term, (direction, edges, _) in SPEC.items():
        row = rows[(term, "SI")]
        assert row["DIRECTION"] == direction, term
        for edge in edges:
            text = row[f"GRADE_{edge.grade}"]
            if edge.derived or (edge.number == 1 and edge.what in ("ULN", "LLN")):
                continue  # ">ULN" / "<LLN" print no number; derived numbers are checked in test_units
            numbers = _numbers(text)
            if edge.what == "baseline" and edge.when == "abnormal" and term == "Fibrinogen decreased":
                # "25 - <50% decrease from baseline": the multiple is 1 - percent/100
                assert (1 - edge.number) * 100 in numbers | {Decimal(0)}, (term, edge)
            elif edge.what in CELLS:  # the text gives x 10e9/L or /mm3 (1000 times more)
                assert {edge.number, edge.number * 1000} & numbers, (term, edge, text)
            else:
                assert edge.number in numbers, (term, edge, text)


def test_derived_numbers():
    # Ionized calcium in mg/dL: CTCAE's factor 4 ("Conversion factor from mmol/L to mg/dL is 4").
    for term in ("Hypocalcemia (Ionized)", "Hypercalcemia (Ionized)"):
        edges = SPEC[term][1]
        mmol = {e.grade: e.number for e in edges if e.what == "mmol/L"}
        mgdl = {e.grade: e.number for e in edges if e.what == "mg/dL"}
        assert mgdl == {g: 4 * n for g, n in mmol.items()}
    # 100,000/mm3 = 100 x 10^9/L; 50 mg/dL = 0.5 g/L; 2 / 4 g/dL = 20 / 40 g/L.
    assert {e.number for e in SPEC["Leukocytosis"][1] if e.what in CELLS} == {Decimal(100)}
    fib = {e.what: e.number for e in SPEC["Fibrinogen decreased"][1] if e.grade == 4 and "/" in e.what}
    assert fib == {"mg/dL": 50, "g/L": Decimal("0.5")}


# ---------------------------------------------------------------------------------- hand-written anchors


@pytest.mark.parametrize(
    ("term", "value", "kwargs", "expected", "assumed"),
    [
        # CTCAE v5.0 "Hypernatremia": >150 - 155 grade 2; >155 - 160 grade 3; >160 grade 4.
        ("Hypernatremia", "155", {"uln": 145}, 2, False),
        ("Hypernatremia", "155.1", {"uln": 145}, 3, False),
        ("Hypernatremia", "160", {"uln": 145}, 3, False),
        ("Hypernatremia", "160.1", {"uln": 145}, 4, False),
        # "Hypokalemia": <LLN - 3.0, symptomatic (worst case) grade 2; at the LLN: 0.
        ("Hypokalemia", "3.5", {"lln": 3.5}, 0, False),
        ("Hypokalemia", "3.49", {"lln": 3.5}, 2, True),
        ("Hypokalemia", "3.0", {"lln": 3.5}, 2, True),
        ("Hypokalemia", "2.99", {"lln": 3.5}, 3, False),
        # "Hyponatremia": 125-129 symptomatic (worst case) grade 3 -- assumed; 120-124 grade 3 regardless.
        ("Hyponatremia", "129", {"lln": 135}, 3, True),
        ("Hyponatremia", "125", {"lln": 135}, 3, True),
        ("Hyponatremia", "124", {"lln": 135}, 3, False),
        ("Hyponatremia", "119.9", {"lln": 135}, 4, False),
        # "Lipase increased": >5.0 x ULN with signs or symptoms (worst case) grade 4.
        ("Lipase increased", "300", {"uln": 60}, 3, True),
        ("Lipase increased", "300.1", {"uln": 60}, 4, True),
        ("Lipase increased", "120", {"uln": 60}, 2, False),
        # "Hypertriglyceridemia": 150 mg/dL - 300 grade 1 (150 included).
        ("Hypertriglyceridemia", "150", {}, 1, False),
        ("Hypertriglyceridemia", "149.9", {}, 0, False),
        # "Platelet count decreased": <25,000/mm3 grade 4.
        ("Platelet count decreased", "25000", {"lln": 150000}, 3, False),
        ("Platelet count decreased", "24999", {"lln": 150000}, 4, False),
    ],
)
def test_anchors_from_the_ctcae_text(term, value, kwargs, expected, assumed):
    unit = {"Lipase increased": "U/L", "Hypertriglyceridemia": "mg/dL", "Platelet count decreased": "/mm3"}.get(
        term, "mmol/L"
    )
    result = grade(term, Decimal(value), unit=unit, **kwargs)
    assert result == expected
    assert result is not None
    assert result.assumed is assumed


def test_calcium_8_mg_per_dl_and_2_mmol_per_l_grade_alike():
    for value, unit in (("8.0", "mg/dL"), ("2.0", "mmol/L"), ("80", "mg/L"), ("4.0", "meq/L")):
        assert grade("Hypocalcemia", Decimal(value), unit=unit) is None  # grade 1 or 0: needs the LLN
        lln = {"mg/dL": "8.6", "mmol/L": "2.15", "mg/L": "86", "meq/L": "4.3"}[unit]
        assert grade("Hypocalcemia", Decimal(value), unit=unit, lln=Decimal(lln)) == 1
    for value, unit in (("7.99", "mg/dL"), ("1.9975", "mmol/L"), ("79.9", "mg/L"), ("3.995", "meq/L")):
        assert grade("Hypocalcemia", Decimal(value), unit=unit) == 2
    # Ionized: 4.0 mg/dL = 1.0 mmol/L by CTCAE's factor 4 (4.008 would make it 0.998 and grade 2).
    assert grade("Hypocalcemia (Ionized)", Decimal("4.0"), unit="mg/dL", lln=Decimal("4.6")) == 1
    assert grade("Hypocalcemia (Ionized)", Decimal("1.0"), unit="mmol/L", lln=Decimal("1.15")) == 1
    assert grade("Hypocalcemia (Ionized)", Decimal("3.99"), unit="mg/dL") == 2
    assert grade("Hypercalcemia (Ionized)", Decimal("6.0"), unit="mg/dL", uln=Decimal("5.2")) == 1
    assert grade("Hypercalcemia (Ionized)", Decimal("6.01"), unit="mg/dL") == 2
    # Corrected calcium in mg/L converts to mg/dL (same kind), not to mmol/L: 116 mg/L = 11.6 mg/dL is grade 2.
    assert grade("Hypercalcemia", Decimal("116"), unit="mg/L") == 2
    assert grade("Hypercalcemia", Decimal("115"), unit="mg/L", uln=Decimal("102")) == 1


CELL_SPELLINGS = [
    ("10*9/L", "1"), ("10^9/L", "1"), ("x10e9/L", "1"), ("giga/L", "1"), ("/nL", "1"),
    ("10*3/uL", "1"), ("10^3/µL", "1"), ("10^3/μL", "1"), ("K/uL", "1"), ("10*3/mm3", "1"), ("10*3{cells}/uL", "1"),
    ("/uL", "1000"), ("/µL", "1000"), ("1/uL", "1000"), ("/mm3", "1000"), ("cells/uL", "1000"),
    ("{cells}/uL", "1000"), ("10*3/mL", "1000"), ("10^3/mL", "1000"), ("10*6/L", "1000"), ("10*6/mL", "1"),
    ("10*12/L", "0.001"), ("tera/L", "0.001"), ("10*5/dL", "1000"), ("10*8/dL", "1"),
]  # fmt: skip


@pytest.mark.parametrize(("unit", "scale"), CELL_SPELLINGS)
def test_cell_counts_in_each_ucum_spelling_grade_alike(unit, scale):
    k = Decimal(scale)  # how many of ``unit`` make 1 x 10^9/L
    for value, lln, expected in (("1.6", "2.0", 1), ("1.5", "2.0", 1), ("1.49", "2.0", 2), ("0.99", None, 3),
                                 ("0.49", None, 4), ("2.0", "2.0", 0)):  # fmt: skip
        result = grade(
            "Neutrophil count decreased", Decimal(value) * k, unit=unit, lln=Decimal(lln) * k if lln else None
        )
        assert result == expected, (value, unit)
    assert grade("Leukocytosis", Decimal(100) * k, unit=unit) == 0
    assert grade("Leukocytosis", Decimal("100.01") * k, unit=unit) == 3


@pytest.mark.parametrize("unit", ["10*3/g", "cells", "10*9", "/L/L", "10*3/uL/s", "mg/dL", "%", "10*3/uM"])
def test_not_a_cell_count(unit):
    assert grade("Neutrophil count decreased", Decimal("0.4"), unit=unit) is None


def test_fibrinogen_worst_of_lln_and_baseline():
    fib = "Fibrinogen decreased"
    # Abnormal baseline 150 (LLN 200): the drop to 140 is 6.7 % (grade 1), 0.7 x LLN is grade 2: the worse, 2.
    assert grade(fib, 140, unit="mg/dL", lln=200, baseline=150) == 2
    # A 60 % drop from 180 (grade 3 by the baseline) to 72 = 0.36 x LLN (grade 3): 3.
    assert grade(fib, 72, unit="mg/dL", lln=200, baseline=180) == 3
    # 76 % drop from 190 to 45.6: grade 4 by the baseline (and < 50 mg/dL): 4.
    assert grade(fib, Decimal("45.6"), unit="mg/dL", lln=200, baseline=190) == 4
    # An abnormal baseline is below the LLN, so m x baseline < m x LLN: the decrease can tie the LLN grade but
    # never exceed it; at a tie the decrease is the criterion reported.
    tie = grade(fib, 90, unit="mg/dL", lln=200, baseline=180)  # 50 % drop, 0.45 x LLN: both grade 3
    assert (tie, tie.criterion if tie is not None else None) == (3, "<= 0.5 x baseline")
    # The baseline criterion needs the LLN to judge the baseline; the LLN criterion does not need the baseline.
    assert grade(fib, 140, unit="mg/dL", lln=200) == 2
    assert grade(fib, 140, unit="mg/dL", baseline=150) is None


def _reference_rows() -> list[dict[str, Any]]:
    return json.loads(REFERENCE.read_text())


# ---------------------------------------------------------------------------------- mutating the table itself
# mutmut mutates code inside functions only, never the table's data; this is the table's mutation test: every
# threshold moved by one in its last digit (both ways), every comparison made strict / non-strict, every
# criterion dropped -- each change must fail at least one of the cases above.

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _bumped(number: str, step: int) -> str:
    places = len(number.partition(".")[2])
    return str(Decimal(number) + Decimal(step).scaleb(-places))


def _criterion_mutants(text: str) -> Iterator[tuple[str, str]]:
    op = re.match(r"\s*(<=|>=|<|>)", text)
    assert op is not None
    toggled = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}[op.group(1)]
    yield f"{op.group(1)} -> {toggled}", toggled + text[op.end() :]
    for match in _NUMBER.finditer(text):
        for step in (1, -1):
            changed = _bumped(match.group(), step)
            yield f"{match.group()} -> {changed}", text[: match.start()] + changed + text[match.end() :]


def table_mutants() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(term, description, mutated row) for every mutation of the table's criteria."""
    import copy

    for term, row in TERMS_V5.items():
        for number, grade_row in row["grades"].items():
            for key in ("any", "if_baseline_normal", "if_baseline_abnormal", "assuming"):
                criteria: list[str] = grade_row.get(key, [])  # type: ignore[assignment]
                for i, text in enumerate(criteria):
                    variants = [*_criterion_mutants(text), ("dropped", None)]
                    for description, replacement in variants:
                        mutated: dict[str, Any] = copy.deepcopy(row)  # type: ignore[arg-type]
                        target = mutated["grades"][number][key]
                        if replacement is None:
                            del target[i]
                        else:
                            target[i] = replacement
                        yield term, f"grade {number} {key} {text!r}: {description}", mutated


# Mutants of the table that cannot change a grade (listed in docs/mutation-testing.md).
EQUIVALENT_TABLE_MUTANTS = {
    # Grade 1 of a term whose higher grade repeats the criterion as a worst-case assumption: never returned.
    "Hyperuricemia|grade 1 any '> 1 x ULN': 1 -> 2",
    "Hyperuricemia|grade 1 any '> 1 x ULN': dropped",
    "Hypokalemia|grade 1 any '< 1 x LLN': 1 -> 0",
    "Hypokalemia|grade 1 any '< 1 x LLN': dropped",
    # Hyponatraemia grade 2 ("asymptomatic") is overridden by the assumed grade 3 ("symptomatic", < 130).
    "Hyponatremia|grade 2 assuming '< 130 mmol/L': 130 -> 129",
    # Fibrinogen, worst case: an abnormal baseline is below the LLN, so m x baseline < m x LLN -- a decrease
    # criterion made weaker (stricter comparison, smaller multiple, dropped) can never lower the LLN grade.
    *(
        f"Fibrinogen decreased|grade {g} if_baseline_abnormal '{c}': {d}"
        for g, c, ds in (
            (1, "< 1 x baseline", ("< -> <=", "1 -> 0", "dropped")),
            (2, "<= 0.75 x baseline", ("<= -> <", "0.75 -> 0.74", "dropped")),
            (3, "<= 0.5 x baseline", ("<= -> <", "0.5 -> 0.4", "dropped")),
            (4, "<= 0.25 x baseline", ("<= -> <", "0.25 -> 0.24", "dropped")),
        )
        for d in ds
    ),
}


def test_every_table_mutant_fails_a_case(monkeypatch: pytest.MonkeyPatch) -> None:
    by_term: dict[str, list[Case]] = {}
    for case in CASES:
        by_term.setdefault(case.term, []).append(case)
    survivors, killed = [], 0
    for term, description, mutated in table_mutants():
        key = f"{term}|{description}"
        try:
            spec = ctcae._compile(term, mutated)  # type: ignore[arg-type]
        except ValueError:
            killed += 1  # the table does not even load
            continue
        monkeypatch.setitem(ctcae._TERMS, term, spec)
        detected = False
        for case in by_term[term]:
            result = grade(term, case.value, unit=case.unit, lln=case.lln, uln=case.uln, baseline=case.baseline)
            ok = result is None if case.expected is None else (result == case.expected and result is not None
                                                               and result.assumed is case.assumed)  # fmt: skip
            if not ok:
                detected = True
                break
        if detected:
            killed += 1
        else:
            survivors.append(key)
    monkeypatch.undo()
    assert set(survivors) == EQUIVALENT_TABLE_MUTANTS  # nothing else survives, and the list is not stale
    assert killed > 400


# ------------------------------------------------------------------------- compiling the table, and refusing


def test_criterion_mini_language() -> None:
    crit, unit = ctcae._Criterion, units.parse
    assert ctcae._parse("> 3.0 x ULN", "T", None) == crit("> 3.0 x ULN", ">", "ULN", Decimal("3.0"), {}, None)
    assert ctcae._parse(">= 1.5 x baseline", "T", "a") == crit(">= 1.5 x baseline", ">=", "baseline", Decimal("1.5"),
                                                                {}, "a")  # fmt: skip
    g_dl = unit("g/dL")
    assert g_dl is not None
    assert ctcae._parse("> ULN + 2 g/dL", "T", "a") == crit("> ULN + 2 g/dL", ">", "ULN", Decimal(1),
                                                             {g_dl: Decimal(2)}, "a")  # fmt: skip
    assert ctcae._parse("> 1.5", "T", "a") == crit("> 1.5", ">", None, Decimal(1), {ctcae._ONE: Decimal("1.5")}, "a")
    both = ctcae._parse("< 2.0 mmol/L | 8.0 mg/dL", "T", "a")
    mmol, mg = unit("mmol/L"), unit("mg/dL")
    assert mmol is not None
    assert mg is not None
    assert both == crit(
        "< 2.0 mmol/L | 8.0 mg/dL", "<", None, Decimal(1), {mmol: Decimal("2.0"), mg: Decimal("8.0")}, "a"
    )
    assert both.label == "< 2.0 mmol/L | 8.0 mg/dL (assuming a)"
    assert ctcae._parse("< 1 x LLN", "T", None).label == "< 1 x LLN"
    for bad in (">> 1", "1 x ULN", "> x ULN", "> 2 mg/dL |", "> 2 furlongs"):
        with pytest.raises(ValueError, match=r"^T: cannot parse criterion|^unknown unit"):
            ctcae._parse(bad, "T", None)
    with pytest.raises(ValueError, match=re.escape("T: cannot parse criterion '> 2 mg/dL | x'")):
        ctcae._parse("> 2 mg/dL | x", "T", None)
    with pytest.raises(ValueError, match=re.escape("T: cannot parse criterion '>> 1'")):
        ctcae._parse(">> 1", "T", None)


def _row(direction: str, **grade1: Any) -> dict[str, Any]:
    minimal = {"text": "-"}
    return {
        "direction": direction,
        "analyte": "sodium",
        "units": {"SI": "mmol/L", "USCV": "mmol/L"},
        "grades": {1: {"text": "x", **grade1}, 2: minimal, 3: minimal, 4: minimal},
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_row("H", any=["> 1 x LLN"]), "T grade 1: '> 1 x LLN' contradicts direction H"),
        (_row("H", any=["< 1 x ULN"]), "T grade 1: '< 1 x ULN' contradicts direction H"),
        (_row("L", any=["< 1 x ULN"]), "T grade 1: '< 1 x ULN' contradicts direction L"),
        (_row("L", any=["> 1 x LLN"]), "T grade 1: '> 1 x LLN' contradicts direction L"),
        (_row("H", assuming=["> 1 x ULN"]), "T grade 1: 'assuming' and 'assumption' go together"),
        (_row("H", assumption="a"), "T grade 1: 'assuming' and 'assumption' go together"),
        (_row("H", any=["> x"]), "T: cannot parse criterion '> x'"),
        (_row("H", any=["> 1 U/L"]), "T: unit 'U/L' is not a sodium unit"),
        ({**_row("H"), "units": {"SI": "mmol/L"}}, "T: units for ('SI', 'USCV') are needed"),
        ({**_row("H"), "grades": {1: {"text": "-"}}}, "T: grades 1-4 are needed"),
        (_row("H", any=["> 5 mmol/L"], if_baseline_normal=["> 5 meq/L"]), "T: every absolute threshold must be"),
    ],
)
def test_a_wrong_row_is_refused(row: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        ctcae._compile("T", row)  # type: ignore[arg-type]


def test_an_undefined_grade_has_no_criteria() -> None:
    row = _row("H", any=["> 1 x ULN"])
    row["grades"][2] = {"text": "-", "clinical": True}
    with pytest.raises(ValueError, match=re.escape("T grade 2: an undefined grade ('-') has no criteria")):
        ctcae._compile("T", row)  # type: ignore[arg-type]


def test_compiled_table_follows_the_rows_and_the_reference_text() -> None:
    table = importlib.reload(ctcae_table)  # the rows built by _liver() etc., built again here
    rows = {row["TERM"]: row for row in json.loads(REFERENCE.read_text()) if row["units_system"] == "SI"}
    for term, row in table.TERMS_V5.items():
        spec = ctcae._compile(term, row)
        assert spec.name == term
        assert spec.direction == row["direction"] == rows[term]["DIRECTION"]
        assert spec.units == row["units"]
        assert spec.analyte == row["analyte"]
        for g in spec.grades:
            source = row["grades"][g.number]
            assert g.text == source["text"] == rows[term][f"GRADE_{g.number}"], (term, g.number)
            assert g.clinical is source.get("clinical", False), (term, g.number)
            for key, compiled in (("any", g.any), ("assuming", g.assuming), ("if_baseline_normal", g.if_normal),
                                  ("if_baseline_abnormal", g.if_abnormal)):  # fmt: skip
                assert [c.source for c in compiled] == source.get(key, []), (term, g.number, key)
                assumption = source.get("assumption") if key == "assuming" else None
                assert all(c.assumption == assumption for c in compiled), (term, g.number, key)
        clinical = [n for n, g in row["grades"].items() if g.get("clinical")]
        assert spec.max_clinical == max(clinical, default=0), term
