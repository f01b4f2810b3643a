"""UCUM unit normalisation and the conversions labs actually send (value in → catalogue unit)."""

from __future__ import annotations

from decimal import Decimal

ALIASES = {
    "meq/l": "mmol/L", "mmol/l": "mmol/L", "umol/l": "umol/L", "µmol/l": "umol/L", "μmol/l": "umol/L",
    "mg/dl": "mg/dL", "g/dl": "g/dL", "g/l": "g/L", "mg/l": "mg/L", "ng/ml": "ng/mL", "ug/l": "ng/mL",
    "µg/l": "ng/mL", "pg/ml": "pg/mL", "ng/l": "pg/mL", "ng/dl": "ng/dL", "pmol/l": "pmol/L",
    "u/l": "U/L", "iu/l": "U/L", "ukat/l": "ukat/L", "µkat/l": "ukat/L",
    "10*9/l": "10*9/L", "10^9/l": "10*9/L", "x10e9/l": "10*9/L", "giga/l": "10*9/L",
    "10*3/ul": "10*3/uL", "10^3/ul": "10*3/uL", "x10e3/ul": "10*3/uL", "k/ul": "10*3/uL", "10*3/µl": "10*3/uL",
    "m[iu]/l": "m[IU]/L", "miu/l": "m[IU]/L", "uiu/ml": "m[IU]/L", "µiu/ml": "m[IU]/L", "u[iu]/ml": "m[IU]/L",
    "%": "%", "mmol/mol": "mmol/mol", "s": "s", "sec": "s", "{inr}": "{INR}", "inr": "{INR}", "1": "{INR}",
    "ng/ml{feu}": "ng/mL{FEU}", "mg/l{feu}": "mg/L{FEU}", "ug/ml{feu}": "mg/L{FEU}",
}  # fmt: skip

# Same quantity, different scale: holds for every analyte.
_GENERIC = {
    ("g/L", "g/dL"): Decimal("0.1"),
    ("mg/L", "mg/dL"): Decimal("0.1"),
    ("10*9/L", "10*3/uL"): Decimal(1),
    ("ukat/L", "U/L"): Decimal("60"),
    ("mg/L{FEU}", "ng/mL{FEU}"): Decimal(1000),
}
# Substance to mass needs the analyte (keyed by LOINC): factor from the first unit to the second.
_BY_ANALYTE: dict[str, dict[tuple[str, str], Decimal]] = {
    "2160-0": {("umol/L", "mg/dL"): 1 / Decimal("88.42")},  # creatinine
    "2345-7": {("mmol/L", "mg/dL"): Decimal("18.016")},  # glucose
    "718-7": {("mmol/L", "g/dL"): 1 / Decimal("0.6206")},  # haemoglobin (monomer)
    "1975-2": {("umol/L", "mg/dL"): 1 / Decimal("17.1")},  # bilirubin
    "3255-7": {("g/L", "mg/dL"): Decimal(100), ("umol/L", "mg/dL"): Decimal("34")},  # fibrinogen
    "3024-7": {("pmol/L", "ng/dL"): 1 / Decimal("12.87")},  # free T4
}  # HbA1c mmol/mol (IFCC) -> % (NGSP) is affine: handled in convert()


class UnitError(ValueError):
    """A unit that is unknown or cannot be converted to the test's unit."""


def normalise(unit: str) -> str:
    raw = unit.strip()
    return ALIASES.get(raw.lower(), raw)


def _factor(source: str, target: str, loinc: str) -> Decimal | None:
    tables: tuple[dict[tuple[str, str], Decimal], ...] = (_BY_ANALYTE.get(loinc, {}), _GENERIC)
    for table in tables:
        if (source, target) in table:
            return table[(source, target)]
        if (target, source) in table:
            return 1 / table[(target, source)]
    return None


def convert(value: Decimal, unit: str, target: str, *, loinc: str) -> Decimal:
    """`value` in `unit` expressed in `target` (the catalogue unit of the analyte `loinc`)."""
    source, target = normalise(unit), normalise(target)
    if not source:
        raise UnitError("A unit is required.")
    if source == target:
        return value
    if loinc == "4548-4" and (source, target) == ("mmol/mol", "%"):
        return value * Decimal("0.09148") + Decimal("2.152")  # IFCC -> NGSP master equation
    factor = _factor(source, target, loinc)
    if factor is None:
        raise UnitError(f"Cannot convert {unit!r} to {target!r} for this test.")
    return value * factor
