"""Vial barcodes, the pure parser (orders/gs1.py): no database, so mutmut runs these (docs/mutation-testing.md)."""

from __future__ import annotations

from datetime import date

import pytest

from orders.gs1 import VialScanError, parse_vial_scan

GS = "\x1d"
GTIN = "09506000134352"  # GS1's example GTIN (valid check digit)


def _yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


# --- the parser --------------------------------------------------------------------------------------------------


def test_a_datamatrix_element_string_with_gs_separators_and_symbology_identifier():
    scan = parse_vial_scan(f"]d201{GTIN}17271130" + f"10AB-12{GS}21SERIAL9")
    assert (scan.gtin, scan.lot, scan.expiry) == (GTIN, "AB-12", date(2027, 11, 30))


def test_a_lot_before_the_expiry_ends_at_the_gs_separator():
    scan = parse_vial_scan(f"01{GTIN}10L77{GS}17280315")
    assert (scan.lot, scan.expiry) == ("L77", date(2028, 3, 15))


def test_the_human_readable_line_reads_the_same():
    scan = parse_vial_scan(f"(01){GTIN}(17)271130(10)AB-12")
    assert (scan.gtin, scan.lot, scan.expiry) == (GTIN, "AB-12", date(2027, 11, 30))


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [("270600", date(2027, 6, 30)), ("280200", date(2028, 2, 29)), ("270200", date(2027, 2, 28))],
)
def test_day_00_is_the_last_day_of_the_month(yymmdd, expected):
    assert parse_vial_scan(f"(01){GTIN}(17){yymmdd}(10)X1").expiry == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", "Not a GS1 vial barcode"),
        (f"01{GTIN}", "no expiry (17) and no lot (10)"),
        ("(01)09506000134353(17)271130(10)A", "The GTIN does not check"),  # check digit 3, not 2
        (f"01{GTIN}17271331" + "10A", "Not a GS1 vial barcode"),  # month 13
        (f"01{GTIN}17270631" + "10A", "Not a GS1 vial barcode"),  # 31 June
        ("   ", "The scan is empty."),
    ],
)
def test_malformed_scans_say_what_is_wrong(text, reason):
    with pytest.raises(VialScanError) as error:
        parse_vial_scan(text)
    assert reason in error.value.reason


@pytest.mark.parametrize("separator", ["<GS>", "\\x1d", GS])
def test_a_separator_typed_as_text_reads_as_the_gs_character(separator):
    scan = parse_vial_scan(f"  01{GTIN}10L77{separator}17280315 \n")
    assert (scan.gtin, scan.lot, scan.expiry) == (GTIN, "L77", date(2028, 3, 15))


def test_a_missing_lot_alone_is_named():
    with pytest.raises(VialScanError) as error:
        parse_vial_scan(f"01{GTIN}17280315")
    assert error.value.reason == "The barcode has no lot (10): type the vial's details instead."
    assert str(error.value) == error.value.reason


@pytest.mark.parametrize(("text", "named"), [("hello", "'hello'"), ("(99", "'(99'"), ("(01)123", "'01123'")])
def test_a_barcode_that_is_not_gs1_says_so_with_the_parsers_reason(text, named):
    with pytest.raises(VialScanError) as error:
        parse_vial_scan(text)
    assert error.value.reason.startswith("Not a GS1 vial barcode: ")
    assert named in error.value.reason  # biip's reason names what it could not read


def test_an_empty_scan_is_refused_in_those_words():
    with pytest.raises(VialScanError) as error:
        parse_vial_scan(" \t ")
    assert error.value.reason == "The scan is empty."
