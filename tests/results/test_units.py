"""results.units: unit algebra and the one conversion table, each factor against a known value (no database)."""

from decimal import Decimal
from fractions import Fraction

import pytest

from results import units
from results.units import ANALYTES, UnitError, convert, count_per_litre, factor, normalise, parse

D = Decimal


@pytest.fixture(autouse=True)
def _fresh_unit_table(monkeypatch):
    """Derive the table's factors inside each test: mutation testing sees only code that runs during a test."""
    monkeypatch.setattr(units, "_TO_BASE", {name: units._to_base(name) for name in ANALYTES})


# (value, unit, target, LOINC, expected): known values from the literature / CTCAE text, independent of the table.
KNOWN = [
    ("88.42", "umol/L", "mg/dL", "2160-0", "1"),  # creatinine 113.12 g/mol
    ("1", "mg/dL", "umol/L", "2160-0", "88.42"),
    ("1", "mg/L", "umol/L", "2160-0", "8.842"),
    ("0.08842", "mmol/L", "mg/dL", "2160-0", "1"),
    ("5.55", "mmol/L", "mg/dL", "2345-7", "99.9888"),  # glucose 180.16 g/mol
    ("100", "mg/dL", "mmol/L", "2345-7", "5.550621669626998223801065719"),
    ("1", "g/L", "mg/dL", "2345-7", "100"),
    ("120", "g/L", "g/dL", "718-7", "12"),  # haemoglobin
    ("12", "g/dL", "g/L", "718-7", "120"),
    ("10", "g/dL", "mmol/L", "718-7", "6.206"),
    ("6.206", "mmol/L", "g/dL", "718-7", "10"),
    ("1", "mg/dL", "umol/L", "1975-2", "17.1"),  # bilirubin 584.7 g/mol
    ("17.1", "umol/L", "mg/dL", "1975-2", "1"),
    ("1", "mg/dL", "umol/L", "3084-1", "59.48"),  # uric acid
    ("2", "g/L", "mg/dL", "3255-7", "200"),  # fibrinogen
    ("1", "umol/L", "mg/dL", "3255-7", "34"),
    ("12.87", "pmol/L", "ng/dL", "3024-7", "1"),  # free T4
    ("8.0", "mg/dL", "mmol/L", "17861-6", "2"),  # calcium: CTCAE's 4 mg/dL per mmol/L
    ("7.0", "mg/dL", "mmol/L", "17861-6", "1.75"),
    ("6.0", "mg/dL", "mmol/L", "17861-6", "1.5"),
    ("1.0", "mmol/L", "mg/dL", "17861-6", "4"),
    ("4.0", "meq/L", "mmol/L", "17861-6", "2"),  # divalent
    ("80", "mg/L", "mg/dL", "17861-6", "8"),
    ("2.431", "mg/dL", "mmol/L", "19123-9", "1"),  # magnesium 24.31 g/mol
    ("2", "meq/L", "mmol/L", "19123-9", "1"),
    ("4.5", "mEq/L", "mmol/L", "2823-3", "4.5"),  # potassium, monovalent
    ("140", "meq/L", "mmol/L", "2951-2", "140"),  # sodium
    ("38.67", "mg/dL", "mmol/L", "2093-3", "1"),  # cholesterol
    ("88.57", "mg/dL", "mmol/L", "2571-8", "1"),  # triglycerides
    ("3.5", "g/dL", "g/L", "1751-7", "35"),  # albumin
    ("30", "mg/dL", "g/L", "4542-7", "0.3"),  # haptoglobin
    ("1", "ukat/L", "U/L", "1742-6", "60"),  # ALT: 1 U = 1/60 ukat
    ("60", "U/L", "ukat/L", "1742-6", "1"),
    ("1", "nkat/L", "U/L", "1742-6", "0.06"),
    ("1", "U/mL", "U/L", "1742-6", "1000"),
    ("40", "[IU]/L", "U/L", "1742-6", "40"),
    ("40", "IU/L", "U/L", "2157-6", "40"),
    ("1", "min", "s", "14979-9", "60"),  # aPTT
    ("7.4", "1", "[pH]", "2744-1", "7.4"),  # pH
    ("2.5", "1", "{INR}", "6301-6", "2.5"),  # INR
    ("0.5", "mg/L{FEU}", "ng/mL{FEU}", "48065-7", "500"),  # D-dimer, any analyte (same kind)
    ("1", "ug/mL{FEU}", "mg/L{FEU}", "48065-7", "1"),
    ("5", "mg/L", "mg/dL", "1988-5", "0.5"),  # CRP: not in the table, same kind
    ("2.1", "uIU/mL", "m[IU]/L", "3016-3", "2.1"),  # TSH
    ("250", "10^9/L", "10*3/uL", "777-3", "250"),  # platelets
    ("250000", "/uL", "10*3/uL", "777-3", "250"),
    ("250000", "/mm3", "10*9/L", "777-3", "250"),
    ("250", "10*3/mm3", "10*9/L", "777-3", "250"),
    ("250000", "10*3/mL", "10*9/L", "777-3", "250"),  # 10*3/mL = 10*6/L
    ("250000", "10*6/L", "10*9/L", "777-3", "250"),
    ("4.5", "10*12/L", "10*6/uL", "789-8", "4.5"),  # RBC
    ("4.5", "10*12/L", "10*9/L", "789-8", "4500"),
]


@pytest.mark.parametrize(("value", "unit", "target", "loinc", "expected"), KNOWN)
def test_conversion_against_a_known_value(value, unit, target, loinc, expected):
    assert convert(D(value), unit, target, loinc=loinc) == D(expected)


def test_every_bridge_of_the_table_is_checked_against_a_known_value():
    checked = {(units.analyte_for(loinc), normalise(u)) for _, a, b, loinc, _ in KNOWN for u in (a, b)}
    for name, analyte in ANALYTES.items():
        for unit in analyte.bridges:
            assert (name, normalise(unit)) in checked, (name, unit)
        if analyte.loincs and name != "HbA1c":
            assert (name, normalise(analyte.base)) in checked, name


@pytest.mark.parametrize(
    ("ifcc", "ngsp"),
    # NGSP = 0.09148 x IFCC + 2.152 (IFCC-NGSP master equation); ngsp.org converter: 48 -> 6.5 %, 53 -> 7.0 %.
    [
        ("20", "3.9816"),
        ("31", "4.98788"),
        ("48", "6.54304"),
        ("53", "7.00044"),
        ("64", "8.00672"),
        ("86", "10.01928"),
        ("0", "2.152"),
    ],
)
def test_hba1c_ifcc_ngsp(ifcc, ngsp):
    assert convert(D(ifcc), "mmol/mol", "%", loinc="4548-4") == D(ngsp)
    back = convert(D(ngsp), "%", "mmol/mol", loinc="4548-4")
    assert back == D(ifcc)
    assert convert(D(ifcc), "mmol/mol", "mmol/mol", loinc="4548-4") == D(ifcc)


def test_hba1c_only_for_hba1c():
    with pytest.raises(UnitError):
        convert(D(48), "mmol/mol", "%", loinc="2345-7")


@pytest.mark.parametrize(
    ("unit", "loinc"),
    [("U/L", "2823-3"), ("mg/dL", "777-3"), ("furlongs", "718-7"), ("", "718-7"), ("  ", "718-7"),
     ("mmol/L", "1742-6"), ("mg/dL", "2951-2"), ("mmol/L", "1751-7"), ("meq/L", "2160-0")],
)  # fmt: skip
def test_unknown_or_incompatible_unit_is_refused(unit, loinc):
    with pytest.raises(UnitError):
        convert(D(1), unit, "g/dL" if loinc != "1742-6" else "U/L", loinc=loinc)


def test_error_texts():
    with pytest.raises(UnitError, match=r"^A unit is required\.$"):
        convert(D(1), " ", "g/dL", loinc="718-7")
    with pytest.raises(UnitError, match=r"^Cannot convert 'U/L' to 'mmol/L' for this test.$"):
        convert(D(1), "U/L", "mmol/L", loinc="2823-3")
    with pytest.raises(UnitError, match=r"^Cannot convert 'mg/dL' to 'parsecs' for this test.$"):
        convert(D(1), "mg/dL", "parsecs", loinc="2823-3")
    with pytest.raises(UnitError, match=r"^Cannot convert 'mmol/L' to 'mg/dL' for this test.$"):
        convert(D(1), "mmol/L", "mg/dL", loinc="2951-2")


def test_without_an_analyte_only_the_same_kind_converts():
    assert convert(D(1), "g/L", "mg/dL", loinc="0000-0") == 100
    with pytest.raises(UnitError):
        convert(D(1), "mmol/L", "mg/dL", loinc="0000-0")
    assert factor("mmol/L", "mg/dL") is None
    assert factor("mmol/L", "umol/L") == 1000
    assert factor("parsecs", "mg/dL") is None
    assert factor("mg/dL", "parsecs", "glucose") is None


@pytest.mark.parametrize(
    ("unit", "per_litre"),
    [
        ("10*9/L", "1e9"), ("10^9/l", "1e9"), ("x10e9/L", "1e9"), ("10E9/L", "1e9"), ("giga/L", "1e9"),
        ("10*3/uL", "1e9"), ("10^3/µL", "1e9"), ("10^3/μL", "1e9"), ("k/uL", "1e9"), ("K/µL", "1e9"),
        ("10*3/mm3", "1e9"), ("10*3{cells}/uL", "1e9"), ("/nL", "1e9"), ("10*6/mL", "1e9"), ("10*8/dL", "1e9"),
        ("/uL", "1e6"), ("/µL", "1e6"), ("1/uL", "1e6"), ("/mm3", "1e6"), ("cells/uL", "1e6"), ("cell/uL", "1e6"),
        ("{cells}/uL", "1e6"), ("10*3/mL", "1e6"), ("10*6/L", "1e6"), ("/cm3", "1e3"), ("10*2/cL", "1e4"),
        ("10*12/L", "1e12"), ("tera/L", "1e12"), ("10*6/uL", "1e12"), ("/pL", "1e12"), ("/L", "1"),
        (" 10 ^ 9 / L ", "1e9"),
    ],
)  # fmt: skip
def test_count_per_litre(unit, per_litre):
    assert count_per_litre(unit) == D(per_litre)
    parsed = parse(unit)
    assert parsed is not None
    assert (parsed.kind, parsed.scale) == ("count", Fraction(D(per_litre)))


@pytest.mark.parametrize("unit", ["mg/dL", "U/L", "10*3/g", "cells", "10*9", "/L/L", "10*3/uL/s", "%", "", "/ml2"])
def test_not_a_count(unit):
    assert count_per_litre(unit) is None


@pytest.mark.parametrize(
    ("unit", "spelling", "kind", "scale"),
    [
        ("10^9/l", "10*9/L", "count", "1e9"),
        ("10^3/µL", "10*3/uL", "count", "1e9"),
        ("/MM3", "/mm3", "count", "1e6"),
        ("x10e3/ml", "10*3/mL", "count", "1e6"),
        ("MG/DL", "mg/dL", "g", "0.01"),
        ("g/l", "g/L", "g", "1"),
        ("kg/L", "kg/L", "g", "1000"),
        ("fmol/mL", "fmol/mL", "mol", "1e-12"),
        ("cg/cL", "cg/cL", "g", "1"),
        ("pg/mL", "pg/mL", "g", "1e-9"),
        ("nmol/L", "nmol/L", "mol", "1e-9"),
        ("µmol/l", "umol/L", "mol", "1e-6"),
        ("mEq/L", "meq/L", "eq", "0.001"),
        ("ukat/L", "ukat/L", "kat", "1e-6"),
        ("m[IU]/L", "m[IU]/L", "[iu]", "0.001"),
        ("uIU/mL", "u[IU]/mL", "[iu]", "0.001"),
        ("ng/mL{FEU}", "ng/mL{FEU}", "g{feu}", "1e-6"),
        ("ng{FEU}/mL", "ng/mL{FEU}", "g{feu}", "1e-6"),
        ("s", "s", "s", "1"),
        ("sec", "s", "s", "1"),
        ("min", "min", "s", "60"),
        ("%", "%", "%", "1"),
        ("mmol/mol", "mmol/mol", "mmol/mol", "1"),
        ("1", "1", "1", "1"),
        ("{INR}", "{INR}", "1", "1"),
        ("inr", "{INR}", "1", "1"),
        ("{ratio}", "{ratio}", "1", "1"),
        ("[pH]", "[pH]", "[ph]", "1"),
        ("pH", "[pH]", "[ph]", "1"),
    ],
)
def test_parse_and_normalise(unit, spelling, kind, scale):
    parsed = parse(unit)
    assert parsed is not None
    assert (parsed.text, parsed.kind, parsed.scale) == (spelling, kind, Fraction(D(scale)))
    assert normalise(unit) == spelling


def test_enzyme_unit_is_a_sixtieth_of_a_microkatal():
    parsed = parse("U/L")
    assert parsed is not None
    assert (parsed.kind, parsed.scale) == ("kat", Fraction(1, 60_000_000))


def test_unknown_units_are_returned_stripped():
    assert parse("furlongs") is None
    assert normalise("  furlongs ") == "furlongs"
    assert parse("mg") is None
    assert parse("g/m") is None
    assert parse("xg/L") is None


def test_units_compare_by_quantity_not_spelling():
    assert parse("10*3/uL") == parse("10*9/L")
    assert parse("/uL") == parse("10*6/L") == parse("10*3/mL")
    assert parse("mg/L") != parse("mg/dL")
    assert parse("mg/L{FEU}") != parse("mg/L")


def test_apply_is_exact():
    assert units.apply(D("0.8"), Fraction(1, 1000)) == D("0.0008")
    assert units.apply(D("4.0"), Fraction(1, 4)) == D("1.0")
    assert units.apply(D("3"), Fraction(2, 3)) == D("2")


def test_analyte_lookup_and_acceptance():
    assert units.analyte_for("777-3") == "cells"
    assert units.analyte_for("2160-0") == "creatinine"
    assert units.analyte_for("9999-9") is None
    count = parse("/uL")
    mass = parse("mg/dL")
    assert count is not None
    assert mass is not None
    assert units.accepts("cells", count)
    assert not units.accepts("cells", mass)
    assert units.ratio(count, mass, "cells") is None
    assert units.ratio(mass, count, "glucose") is None
    assert units.ratio(mass, mass, None) == 1


def test_every_unit_of_the_table_can_be_read():
    for name, analyte in ANALYTES.items():
        for unit in (analyte.base, *analyte.bridges):
            assert parse(unit) is not None, (name, unit)
    loincs = [loinc for analyte in ANALYTES.values() for loinc in analyte.loincs]
    assert len(loincs) == len(set(loincs))  # one analyte per LOINC


def test_a_table_with_an_unreadable_unit_is_refused(monkeypatch):
    monkeypatch.setitem(ANALYTES, "broken", units.Analyte("furlongs/L"))
    with pytest.raises(ValueError, match="broken: cannot read unit 'furlongs/L'"):
        units._to_base("broken")


def test_derived_factors_of_the_table():
    # kind -> factor from the kind's base (g/L, mol/L, eq/L, kat/L, count/L) to the analyte's base unit
    assert units._to_base("calcium") == {"mol": 1000, "g": 25, "eq": 500}  # mmol/L; 1 g/L = 25 mmol/L
    assert units._to_base("cells") == {"count": Fraction(1, 10**9)}
    assert units._to_base("enzyme") == {"kat": 60_000_000, "[iu]": 1}
    assert units._to_base("ph") == {"[ph]": 1, "1": 1}
    assert units._to_base("hemoglobin") == {"g": Fraction(1, 10), "mol": 1000 / Fraction("0.6206")}
    assert units._number("1/4") == Fraction(1, 4)
    assert units._number("1/0.6206") == Fraction(10000, 6206)
    assert units._number("88.42") == Fraction(8842, 100)
    assert units._number("17") == 17


def test_factor_with_an_analyte_crosses_kinds():
    assert factor("mmol/L", "mg/dL", "glucose") == Fraction("18.016")
    assert factor("mg/dL", "mmol/L", "calcium") == Fraction(1, 4)
    assert factor("/uL", "10*9/L", "cells") == Fraction(1, 1000)


def test_annotations_keep_their_text():
    assert normalise("ng/mL{ FEU }") == "ng/mL{FEU}"  # spaces are dropped, inside annotations too
    assert normalise("ng{feu}/mL{x}") == "ng/mL{FEU}{X}"
    parsed = parse("ng{FEU}/mL{x}")
    assert parsed is not None
    assert parsed.kind == "g{feu}{x}"
