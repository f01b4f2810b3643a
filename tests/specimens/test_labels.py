"""Specimen tube labels: the PDF (text, page, barcode) and the ZPL (structure, escaping)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core import labelkit
from specimens import labels
from specimens.labels import SpecimenLabel, label_pdf, label_zpl
from tests import labelcheck
from tests.labelcheck import decode_code128, pdf_font_names, pdf_rects, pdf_text, zpl_fields

NEW_YORK = ZoneInfo("America/New_York")

LABEL = SpecimenLabel(
    accession="00000123453",
    **labelcheck.PATIENT,
    collected_at=datetime(2025, 3, 4, 14, 15, tzinfo=UTC),  # 09:15 in New York
    collector="jdoe",
    container="Lavender (K2EDTA)",
    tests=("CBC", "ANC"),
)
EVERY_LINE = (
    "00000123453",
    "MRN 12345678",
    "DOB 1980-01-31",
    "Coll 2025-03-04 09:15 jdoe",
    "Lavender (K2EDTA)",
    "CBC, ANC",
)


# --- The label ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("accession", ["", "12345A", "0012 34", "١٢٣", "123^XZ"])
def test_accession_must_be_ascii_digits(accession):
    with pytest.raises(ValueError, match="accession"):
        dataclasses.replace(LABEL, accession=accession)


def test_collected_at_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        dataclasses.replace(LABEL, collected_at=datetime(2025, 3, 4, 9, 15))  # noqa: DTZ001


# --- PDF ------------------------------------------------------------------------------------------------------


def test_pdf_is_one_tube_sized_page():
    labelcheck.assert_one_page_pdf(label_pdf(LABEL, tz=NEW_YORK), (144, 72))  # 2 in x 1 in


def test_pdf_text_has_every_line():
    text = pdf_text(label_pdf(LABEL, tz=NEW_YORK))
    for expected in EVERY_LINE:
        assert expected in text


def test_pdf_prints_the_collection_time_in_the_given_zone():
    assert "Coll 2025-03-04 23:15" in pdf_text(label_pdf(LABEL, tz=ZoneInfo("Asia/Tokyo")))
    assert "Coll 2025-03-04 14:15" in pdf_text(label_pdf(LABEL, tz=UTC))


def test_pdf_non_ascii_name_is_real_text():
    assert "MÜLLER, Jón Ólafsdóttir" in pdf_text(label_pdf(LABEL, tz=NEW_YORK))


@pytest.fixture
def font_fallback(monkeypatch):
    """Set up font lookup afresh for the test (which hides fonts), and again after it."""
    labels._pdf_fonts.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    labels._pdf_fonts.cache_clear()


def test_pdf_embeds_dejavu_when_present():
    assert labels._FONT_DIRS == labelkit.FONT_DIRS
    labelcheck.assert_embeds_dejavu(label_pdf(LABEL, tz=NEW_YORK))


def test_pdf_falls_back_to_reportlabs_vera(font_fallback):
    font_fallback.setattr(labels, "_FONT_DIRS", ())
    pdf = label_pdf(LABEL, tz=NEW_YORK)
    assert {"BitstreamVeraSans-Roman", "BitstreamVeraSans-Bold"} <= pdf_font_names(pdf)
    assert "MÜLLER, Jón Ólafsdóttir" in pdf_text(pdf)
    assert "MRN 12345678" in pdf_text(pdf)


def test_pdf_falls_back_to_helvetica(font_fallback, tmp_path):
    font_fallback.setattr(labels, "_FONT_DIRS", ())
    font_fallback.setattr(labels, "_REPORTLAB_FONT_DIR", tmp_path)
    pdf = label_pdf(LABEL, tz=NEW_YORK)
    assert pdf_font_names(pdf) == {"Helvetica", "Helvetica-Bold"}
    assert "MÜLLER, Jón Ólafsdóttir" in pdf_text(pdf)  # Latin-1 is in Helvetica's encoding


@pytest.mark.parametrize("accession", ["00000123453", "000001234567", "7", "9876543210"])
def test_pdf_barcode_is_code128_of_the_accession(accession):
    rects = pdf_rects(label_pdf(dataclasses.replace(LABEL, accession=accession), tz=NEW_YORK))
    assert len(rects) >= 10
    assert decode_code128(rects) == accession


def test_pdf_is_deterministic():
    assert label_pdf(LABEL, tz=NEW_YORK) == label_pdf(LABEL, tz=NEW_YORK)


def test_pdf_cuts_long_text_but_keeps_the_dob_and_counts_the_tests():
    label = dataclasses.replace(
        LABEL,
        **labelcheck.LONG_NAME,
        mrn="MRN-0000000000123456789",
        collector="Dr. Bartholomew Featherstonehaugh-Smythe",
        tests=("CBC", "ANC", "CMP", "LFT", "CRP", "Ferritin", "Vitamin B12", "Folate", "TSH", "HbA1c"),
    )
    text = pdf_text(label_pdf(label, tz=NEW_YORK))
    assert "WOLFESCHLEGEL" in text
    assert "Maximiliane" not in text
    assert "DOB 1980-01-31" in text
    assert "MRN MRN-0000" in text
    assert "…" in text
    assert re.search(r"CBC, ANC, .*\+\d+", text), text  # whole test names, then "+N" for the rest


def test_pdf_collapses_control_characters():
    text = pdf_text(label_pdf(dataclasses.replace(LABEL, collector="j\ndoe\t\x00x"), tz=NEW_YORK))
    assert "Coll 2025-03-04 09:15 j doe x" in text


# --- ZPL ------------------------------------------------------------------------------------------------------


def test_zpl_is_one_complete_label():
    labelcheck.assert_one_zpl_label(label_zpl(LABEL, tz=NEW_YORK), "^CI28", "^PW406", "^LL203")


def test_zpl_barcode_is_code128_of_the_accession_with_interpretation_line():
    zpl = label_zpl(LABEL, tz=NEW_YORK)
    match = re.search(r"\^BCN,(\d+),([YN]),([YN]),([YN]),A\^FD(\d+)\^FS", zpl)
    assert match
    assert match[2] == "Y"  # interpretation line printed
    assert match[3] == "N"  # below the bars
    assert match[5] == "00000123453"
    assert "^FD00000123453^FS" in zpl


def test_zpl_text_fields():
    fields = zpl_fields(label_zpl(LABEL, tz=NEW_YORK))
    assert fields == [
        "MÜLLER, Jón Ólafsdóttir",
        "MRN 12345678",
        "DOB 1980-01-31",
        "Lavender",
        "(K2EDTA)",
        "CBC, ANC",
        "Coll 2025-03-04 09:15 jdoe",
    ]


def test_zpl_prints_the_collection_time_in_the_given_zone():
    assert "Coll 2025-03-04 23:15 jdoe" in zpl_fields(label_zpl(LABEL, tz=ZoneInfo("Asia/Tokyo")))


def test_zpl_name_cannot_inject_commands():
    label = dataclasses.replace(
        LABEL, **labelcheck.HOSTILE_PATIENT, collector="~DGR:EVIL", container="^XZ", tests=("^XZ", "~JA")
    )
    allowed = {"XA", "CI", "PW", "LL", "LH", "FO", "A0", "FB", "FH", "FD", "FS", "BY", "BC", "PQ", "XZ"}
    labelcheck.assert_prints_hostile_text(label_zpl(label, tz=NEW_YORK), allowed)


def test_zpl_narrows_the_barcode_for_a_long_accession():
    assert "^BY2^BC" in label_zpl(LABEL, tz=NEW_YORK)
    long_label = dataclasses.replace(LABEL, accession="1" * 32)
    zpl = label_zpl(long_label, tz=NEW_YORK)
    assert "^BY1^BC" in zpl
    assert f"^FD{'1' * 32}^FS" in zpl
    assert decode_code128(pdf_rects(label_pdf(long_label, tz=NEW_YORK))) == "1" * 32
