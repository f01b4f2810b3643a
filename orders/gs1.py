"""Vial barcodes: the GS1 element strings of a GS1 DataMatrix or GS1-128 on a drug vial, read by the maintained
`biip` parser. Pure (no Django): the preparation form fills a component row from it.

A scanner sends the raw element string (``01…17…10…``, variable-length fields ended by the GS separator, ASCII 29,
often after a symbology identifier such as ``]d2``); a label can also be typed from its human-readable line,
``(01)…(17)…(10)…``. Both read the same. The vial needs its GTIN (01), expiry (17) and lot (10); the GTIN's check
digit must hold. Expiry YYMMDD with DD = 00 means the last day of that month (GS1 General Specifications, AI 17),
which biip applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from biip import ParseError, parse
from biip.gs1_messages import GS1Message

__all__ = ["VialScan", "VialScanError", "parse_vial_scan"]

GS = "\x1d"
REQUIRED = (("01", "GTIN (01)"), ("17", "expiry (17)"), ("10", "lot (10)"))


@dataclass(frozen=True)
class VialScan:
    gtin: str  # 14 digits as on the barcode
    lot: str
    expiry: date


class VialScanError(ValueError):
    """A scan that is not a usable vial barcode; ``reason`` is a sentence for the person scanning."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_vial_scan(text: str) -> VialScan:
    """The GTIN, lot and expiry of a vial's GS1 barcode. Raises :class:`VialScanError` saying what is wrong."""
    value = text.strip().replace("\\x1d", GS).replace("<GS>", GS)  # a typed separator, as some scanners show it
    if not value:
        raise VialScanError("The scan is empty.")
    try:
        if value.startswith("("):
            message = GS1Message.parse_hri(value)
        else:
            result = parse(value)
            if result.gs1_message is None:
                raise VialScanError(f"Not a GS1 vial barcode: {result.gs1_message_error or 'no GS1 data'}")
            message = result.gs1_message
    except ParseError as error:
        raise VialScanError(f"Not a GS1 vial barcode: {error}") from None
    found = {element.ai.ai: element for element in message.element_strings}
    missing = [name for ai, name in REQUIRED if ai not in found]
    if missing:
        raise VialScanError(f"The barcode has no {' and no '.join(missing)}: type the vial's details instead.")
    gtin, expiry = found["01"], found["17"]
    if gtin.gtin_error:
        raise VialScanError(f"The GTIN does not check: {gtin.gtin_error}")
    if expiry.date is None:
        raise VialScanError(f"The expiry (17) {expiry.value!r} is not a date.")
    return VialScan(gtin=gtin.value, lot=found["10"].value, expiry=expiry.date)
