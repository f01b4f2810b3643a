"""Infusion bag labels: the PDF (text, page, barcode) and the ZPL (structure, escaping); no database."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import labelkit
from orders.labelling import diluent_label
from orders.labels import PreparationLabel, _route_line, label_pdf, label_zpl
from tests import labelcheck
from tests.labelcheck import (
    barcode_rects,
    decode_code128,
    pdf_font_names,
    pdf_rects,
    pdf_text,
    zpl_commands,
    zpl_fields,
)

NEW_YORK = ZoneInfo("America/New_York")
EN_DASH = "\u2013"

LABEL = PreparationLabel(
    preparation_id="PRP-000123",
    **labelcheck.PATIENT,
    drug="Pembrolizumab",
    dose_mg=Decimal("240"),
    volume_ml=Decimal("148.0"),
    concentration_mg_per_ml=Decimal("1.62"),
    diluent="0.9% NaCl 100 mL",
    beyond_use=datetime(2025, 3, 5, 19, 0, tzinfo=UTC),  # 14:00 in New York
    storage=f"Refrigerate 2{EN_DASH}8 °C",
    preparer="jdoe",
    verifier="asmith",
    infusion_minutes=30,
    filter_note=f"0.2{EN_DASH}5 µm in-line filter",
)

# The printed lines from top to bottom (the ZPL's text fields in order); the PDF also has the id under the bars.
TEXT_LINES = (
    "MÜLLER, Jón Ólafsdóttir",
    "MRN 12345678",
    "DOB 1980-01-31",
    "Pembrolizumab",
    "Dose 240 mg",
    "Volume 148 mL",
    "Conc 1.62 mg/mL",
    "Diluent 0.9% NaCl 100 mL",
    "IV infusion over 30 min",
    f"0.2{EN_DASH}5 µm in-line filter",
    "BUD 2025-03-05 14:00",
    f"Refrigerate 2{EN_DASH}8 °C",
    "Prep jdoe · Ver asmith",
)
EVERY_LINE = ("PRP-000123", *TEXT_LINES)


# --- The label ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preparation_id",
    ["", "PRP 000123", "PRP_000123", "PRP-1^XZ", "PRP~JA", "ПРП-000123", "PRP-١٢٣", "-PRP", "PRP-", "P" * 21, "PRP\n1"],
)
def test_invalid_preparation_id_is_refused(preparation_id):
    with pytest.raises(ValueError, match="preparation id"):
        dataclasses.replace(LABEL, preparation_id=preparation_id)


@pytest.mark.parametrize("preparation_id", ["PRP-000123", "7", "prp-9-x", "A" * 20])
def test_valid_preparation_ids(preparation_id):
    assert dataclasses.replace(LABEL, preparation_id=preparation_id).preparation_id == preparation_id


def test_beyond_use_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        dataclasses.replace(LABEL, beyond_use=datetime(2025, 3, 5, 14, 0))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dose_mg", Decimal(0)),
        ("dose_mg", Decimal(-240)),
        ("dose_mg", Decimal("NaN")),
        ("dose_mg", 240.0),
        ("volume_ml", Decimal("Infinity")),
        ("concentration_mg_per_ml", Decimal("1.621621621621")),  # unrounded: would not print whole
    ],
)
def test_amounts_must_be_positive_printable_decimals(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(LABEL, **{field: value})


@pytest.mark.parametrize("field", ["mrn", "drug", "storage", "preparer", "verifier"])
def test_required_text_must_not_be_blank(field):
    blank: dict[str, Any] = {field: " \t"}
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(LABEL, **blank)


@pytest.mark.parametrize("minutes", [0, -30, True])
def test_infusion_minutes_must_be_a_positive_whole_number(minutes):
    with pytest.raises(ValueError, match="infusion_minutes"):
        dataclasses.replace(LABEL, infusion_minutes=minutes)


# --- PDF ------------------------------------------------------------------------------------------------------


def test_pdf_is_one_bag_label_sized_page():
    labelcheck.assert_one_page_pdf(label_pdf(LABEL, tz=NEW_YORK), (288, 180))  # 4 in x 2.5 in


@pytest.mark.parametrize("hazardous", [False, True])
def test_pdf_text_has_every_line(hazardous):
    text = pdf_text(label_pdf(dataclasses.replace(LABEL, hazardous=hazardous), tz=NEW_YORK))
    for expected in EVERY_LINE:
        assert expected in text
    assert ("HAZARDOUS" in text) is hazardous


def test_pdf_prints_the_bud_in_the_given_zone():
    assert "BUD 2025-03-06 04:00" in pdf_text(label_pdf(LABEL, tz=ZoneInfo("Asia/Tokyo")))
    assert "BUD 2025-03-05 19:00" in pdf_text(label_pdf(LABEL, tz=UTC))


def test_pdf_route_without_infusion_time_and_without_filter():
    text = pdf_text(label_pdf(dataclasses.replace(LABEL, infusion_minutes=None, filter_note=""), tz=NEW_YORK))
    assert "IV infusion" in text
    assert "over" not in text
    assert "filter" not in text


@pytest.mark.parametrize(
    "preparation_id", ["PRP-000123", "7", "prp-9-x", "AB12CD34EF56GH78IJ90", "00000000000000000000"]
)
@pytest.mark.parametrize("hazardous", [False, True])
def test_pdf_barcode_is_code128_of_the_preparation_id(preparation_id, hazardous):
    label = dataclasses.replace(LABEL, preparation_id=preparation_id, hazardous=hazardous)
    pdf = label_pdf(label, tz=NEW_YORK)
    assert decode_code128(barcode_rects(pdf_rects(pdf))) == preparation_id
    assert preparation_id in pdf_text(pdf)


def test_pdf_is_deterministic():
    assert label_pdf(LABEL, tz=NEW_YORK) == label_pdf(LABEL, tz=NEW_YORK)


def test_pdf_embeds_dejavu_when_present():
    labelcheck.assert_embeds_dejavu(label_pdf(LABEL, tz=NEW_YORK))


def test_pdf_falls_back_to_helvetica(monkeypatch, tmp_path):
    monkeypatch.setattr(labelkit, "FONT_DIRS", ())
    monkeypatch.setattr(labelkit, "REPORTLAB_FONT_DIR", tmp_path)
    pdf = label_pdf(LABEL, tz=NEW_YORK)
    assert pdf_font_names(pdf) == {"Helvetica", "Helvetica-Bold"}
    text = pdf_text(pdf)
    for expected in EVERY_LINE:  # Latin-1, the en dash and the middle dot are in Helvetica's encoding
        assert expected in text


def test_pdf_never_cuts_numbers_and_keeps_both_staff_names():
    label = dataclasses.replace(
        LABEL,
        **labelcheck.LONG_NAME,
        drug="Trastuzumab deruxtecan-nxki with an unreasonably long description of the product",
        dose_mg=Decimal("12345.6789"),
        volume_ml=Decimal("1234.56789"),
        concentration_mg_per_ml=Decimal("0.00123456"),
        diluent="Dextrose 5% in water, 250 mL bag from the second supplier, overfill included " * 2,
        storage="Refrigerate, protect from light, do not shake, do not freeze, keep upright at all times",
        preparer="Dr. Bartholomew Featherstonehaugh-Smythe",
        verifier="Pharm. Genevieve Montgomery-Worthington",
    )
    text = pdf_text(label_pdf(label, tz=NEW_YORK))
    for expected in (
        "Dose 12345.6789 mg",
        "Volume 1234.56789 mL",
        "Conc 0.00123456 mg/mL",
        "BUD 2025-03-05 14:00",
        "DOB 1980-01-31",
        "PRP-000123",
    ):
        assert expected in text
    assert "WOLFESCHLEGEL" in text
    assert "Trastuzumab deruxtecan" in text
    assert "…" in text
    assert re.search(r"Prep Dr\. Bart\S*… · Ver Pharm\. Gen\S*…", text), text


def test_pdf_collapses_control_characters():
    text = pdf_text(label_pdf(dataclasses.replace(LABEL, preparer="j\ndoe\t\x00x"), tz=NEW_YORK))
    assert "Prep j doe x · Ver asmith" in text


# --- ZPL ------------------------------------------------------------------------------------------------------

ZPL_COMMANDS = {"XA", "CI", "PW", "LL", "LH", "FO", "A0", "FB", "FR", "FH", "FD", "FS", "GB", "BY", "BC", "PQ", "XZ"}


@pytest.mark.parametrize("hazardous", [False, True])
def test_zpl_is_one_complete_label(hazardous):
    zpl = label_zpl(dataclasses.replace(LABEL, hazardous=hazardous), tz=NEW_YORK)
    labelcheck.assert_one_zpl_label(zpl, "^CI28", "^PW812", "^LL508", "^PQ1")
    assert zpl_commands(zpl) <= ZPL_COMMANDS
    for x, y in re.findall(r"\^FO(\d+),(\d+)", zpl):
        assert 0 <= int(x) < 812
        assert 0 <= int(y) < 508


def test_zpl_barcode_is_code128_of_the_preparation_id_with_interpretation_line():
    zpl = label_zpl(LABEL, tz=NEW_YORK)
    match = re.search(r"\^BY(\d)\^BCN,(\d+),([YN]),([YN]),([YN]),A\^FD([^^]*)\^FS", zpl)
    assert match
    assert match[1] == "2"  # 2-dot modules: about 10 mil at 203 dpi
    assert match[3] == "Y"  # interpretation line printed
    assert match[4] == "N"  # below the bars
    assert match[6] == "PRP-000123"


def test_zpl_text_fields():
    assert zpl_fields(label_zpl(LABEL, tz=NEW_YORK)) == list(TEXT_LINES)


def test_zpl_hazardous_banner_is_reversed_on_a_filled_box():
    zpl = label_zpl(dataclasses.replace(LABEL, hazardous=True), tz=NEW_YORK)
    assert zpl_fields(zpl)[0] == "HAZARDOUS DRUG: CHEMO PRECAUTIONS"  # USP <800> ancillary wording
    assert re.search(
        r"\^GB(\d+),46,46\^FS\n\^FO\d+,\d+\^A0N,30,30\^FB\1,1,0,C\^FR\^FH_\^FDHAZARDOUS DRUG: CHEMO PRECAUTIONS\^FS",
        zpl,
    )
    assert "HAZARDOUS" not in label_zpl(LABEL, tz=NEW_YORK)


def test_zpl_prints_the_bud_in_the_given_zone():
    assert "BUD 2025-03-06 04:00" in zpl_fields(label_zpl(LABEL, tz=ZoneInfo("Asia/Tokyo")))


def test_zpl_user_text_cannot_inject_commands():
    label = dataclasses.replace(
        LABEL,
        **labelcheck.HOSTILE_PATIENT,
        drug="^XZ^XA^FO0,0^GB812,508,508^FS",
        diluent="~DGR:EVIL",
        route="IV^FS",
        filter_note="_5E_7E",
        storage="^PQ5",
        preparer="~JR",
        verifier="^XZ",
    )
    zpl = label_zpl(label, tz=NEW_YORK)
    fields = labelcheck.assert_prints_hostile_text(zpl, ZPL_COMMANDS)
    assert "^PQ5" not in zpl
    assert zpl.count("^GB812,508") == 0
    for expected in (
        "^XZ^XA^FO0,0^GB812,508,508^FS",
        "Diluent ~DGR:EVIL",
        "IV^FS over 30 min",
        "_5E_7E",
        "^PQ5",
        "Prep ~JR · Ver ^XZ",
    ):
        assert expected in fields


def test_zpl_narrows_the_barcode_for_a_long_preparation_id():
    long_id = "AB12CD34EF56GH78IJ90"  # letters and digits alternate: no subset C runs
    zpl = label_zpl(dataclasses.replace(LABEL, preparation_id=long_id), tz=NEW_YORK)
    assert f"^BY1^BCN,70,Y,N,N,A^FD{long_id}^FS" in zpl


# --- Cell products and safety notes ---------------------------------------------------------------------------

TIMES = "\u00d7"
CELL_LABEL = dataclasses.replace(
    LABEL,
    drug="Axicabtagene ciloleucel",
    dose_mg=None,
    volume_ml=Decimal("68"),
    concentration_mg_per_ml=None,
    diluent="",
    storage="Room temperature",
    filter_note="Do not use a leukodepleting filter",
    cells=140_000_000,
    cells_unit="CAR+ viable T cells",
    chain_of_identity="COI-2026-000123",
    biosafety="BSL-2",
    premedication="Acetaminophen 650 mg PO and diphenhydramine 12.5 mg IV or PO, about 1 h before",
)


def test_a_cell_label_shows_cells_bag_volume_coi_and_no_mg():
    text = pdf_text(label_pdf(CELL_LABEL, tz=NEW_YORK))
    for expected in (f"1.4 {TIMES} 10⁸ CAR+ viable T cells", "Bag 68 mL", "COI COI-2026-000123",
                     "Do not use a leukodepleting filter", "Biosafety BSL-2", "Premedication before infusion:",
                     "BUD 2025-03-05 14:00", "PRP-000123"):  # fmt: skip
        assert expected in text, (expected, text)
    assert "Dose" not in text
    assert "mg/mL" not in text
    fields = zpl_fields(label_zpl(CELL_LABEL, tz=NEW_YORK))
    assert f"1.4 {TIMES} 10^8 CAR+ viable T cells" in fields
    assert "Bag 68 mL" in fields
    assert "COI COI-2026-000123" in fields
    assert "Do not use a leukodepleting filter" in fields
    assert any(f.startswith("Premedication before infusion: Acetaminophen") for f in fields)


def test_protect_from_light_and_the_end_of_infusion_clock_are_printed():
    label = dataclasses.replace(
        LABEL, protect_from_light=True, infusion_end_by=datetime(2025, 3, 5, 17, 30, tzinfo=UTC)
    )
    text = pdf_text(label_pdf(label, tz=NEW_YORK))
    for expected in (*EVERY_LINE, "Protect from light", "End infusion by 2025-03-05 12:30"):
        assert expected in text, (expected, text)
    fields = zpl_fields(label_zpl(label, tz=NEW_YORK))
    assert "Protect from light" in fields
    assert "End infusion by 2025-03-05 12:30" in fields
    same = dataclasses.replace(LABEL, infusion_end_by=LABEL.beyond_use)  # one clock: printed once, as the BUD
    assert "End infusion by" not in pdf_text(label_pdf(same, tz=NEW_YORK))


@pytest.mark.parametrize("hazardous", [False, True])
def test_safety_notes_stay_above_the_bud_box(hazardous):
    label = dataclasses.replace(CELL_LABEL, hazardous=hazardous, protect_from_light=True)
    pdf = label_pdf(label, tz=NEW_YORK)
    text = pdf_text(pdf)
    assert "Protect from light" in text
    assert "BUD 2025-03-05 14:00" in text
    zpl = label_zpl(label, tz=NEW_YORK)
    for y in (int(y) for x, y in re.findall(r"\^FO(\d+),(\d+)\^A0N", zpl)):
        assert y < 356 or y >= 364  # nothing starts inside the BUD box's top edge area but the BUD itself


def test_a_label_without_cells_needs_dose_and_concentration():
    with pytest.raises(ValueError, match="dose_mg"):
        dataclasses.replace(LABEL, dose_mg=None)
    with pytest.raises(ValueError, match="cells"):
        dataclasses.replace(CELL_LABEL, cells=0)


@pytest.mark.parametrize(
    ("product", "volume", "text"),
    [
        ("0.9% sodium chloride 50 mL", Decimal(50), "0.9% sodium chloride 50 mL"),
        ("0.9% sodium chloride", Decimal(50), "0.9% sodium chloride 50 mL"),
        ("0.9% sodium chloride 100 mL ", Decimal(50), "0.9% sodium chloride 100 mL 50 mL"),
        ("5% dextrose 250 mL", Decimal("250.0"), "5% dextrose 250 mL"),
    ],
)
def test_the_diluent_volume_is_named_once(product, volume, text):
    assert diluent_label(product, volume) == text


def test_a_bag_of_a_day_or_more_gives_its_length_in_hours():
    assert _route_line(dataclasses.replace(LABEL, infusion_minutes=48 * 60)) == "IV infusion over 48 h"
    assert _route_line(dataclasses.replace(LABEL, infusion_minutes=24 * 60)) == "IV infusion over 24 h"
    assert _route_line(dataclasses.replace(LABEL, infusion_minutes=23 * 60)) == "IV infusion over 1380 min"
    assert _route_line(dataclasses.replace(LABEL, infusion_minutes=24 * 60 + 30)) == "IV infusion over 1470 min"


def test_a_continuous_infusion_bag_prints_its_dose_in_its_hours_without_a_concentration():
    bag = dataclasses.replace(
        LABEL, drug="Blinatumomab", dose_mg=Decimal("0.018"), volume_ml=Decimal("250"), concentration_mg_per_ml=None,
        infusion_minutes=48 * 60, bag_hours=48,
    )  # fmt: skip
    text = pdf_text(label_pdf(bag, tz=NEW_YORK))
    assert "Dose 0.018 mg in 48 h" in text
    assert "Volume 250 mL" in text
    assert "Conc" not in text
    assert "IV infusion over 48 h" in text
    with pytest.raises(ValueError, match="concentration_mg_per_ml"):
        dataclasses.replace(bag, bag_hours=None)
    with pytest.raises(ValueError, match="bag_hours must be a positive whole number"):
        dataclasses.replace(bag, bag_hours=0)
