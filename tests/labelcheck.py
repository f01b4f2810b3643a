"""Reading labels back in tests: the text, fonts and Code 128 bars of a one-page PDF, the text fields and
commands of ZPL; and the checks every label renderer must pass (one page, one format, hostile text printed
as written)."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import date
from typing import Any

import pypdf
from pypdf.generic import DictionaryObject
from reportlab.graphics.barcode import code128

from core import labelkit

# Code 128 symbol value -> its pattern: bar widths in modules as A-D, space widths as a-d (reportlab's table).
CODE128_PATTERNS: dict[int, str] = vars(code128)["_patterns"]

Rect = tuple[float, float, float, float]


def pdf_text(pdf: bytes) -> str:
    """The page's extracted text, white space collapsed (wrapped lines join with a space)."""
    (page,) = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return " ".join(page.extract_text().split())


def pdf_rects(pdf: bytes) -> list[Rect]:
    """The filled rectangles ("x y w h re f*") of the page's content stream."""
    (page,) = pypdf.PdfReader(io.BytesIO(pdf)).pages
    content = page.get_contents()
    assert content is not None
    stream = content.get_data().decode("latin-1")
    number = r"(-?[\d.]+)"
    return [
        (float(x), float(y), float(w), float(h))
        for x, y, w, h in re.findall(rf"{number} {number} {number} {number} re f\*?", stream)
    ]


def barcode_rects(rects: list[Rect]) -> list[Rect]:
    """The bars among filled rectangles: the largest set sharing a bottom and a height (a banner or a box
    drawn elsewhere on the page is left out)."""
    (bars_bottom_and_height, _), *_ = Counter((y, h) for _, y, _, h in rects).most_common(1)
    return [rect for rect in rects if (rect[1], rect[3]) == bars_bottom_and_height]


def pdf_font_names(pdf: bytes) -> set[str]:
    """The base names of the page's fonts, subset prefixes removed."""
    (page,) = pypdf.PdfReader(io.BytesIO(pdf)).pages
    resources = page["/Resources"].get_object()
    assert isinstance(resources, DictionaryObject)
    fonts = resources["/Font"].get_object()
    assert isinstance(fonts, DictionaryObject)
    return {str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1] for font in fonts.values()}


def decode_code128(rects: list[Rect]) -> str:
    """Read a Code 128 symbol (start A, B or C; subsets A, B and C, printable characters) back from its bars."""
    bars = sorted(rects)
    module = min(w for _, _, w, _ in bars)
    widths: list[int] = []
    for (x, _, w, _), following in zip(bars, [*bars[1:], None], strict=True):
        widths.append(round(w / module))
        if following is not None:
            widths.append(round((following[0] - x - w) / module))
    elements = "".join(chr((ord("A") if i % 2 == 0 else ord("a")) + width - 1) for i, width in enumerate(widths))
    by_pattern = {pattern: value for value, pattern in CODE128_PATTERNS.items()}
    symbols, stop = elements[:-7], elements[-7:]
    assert by_pattern[stop] == 106, "no stop pattern"
    values = [by_pattern[symbols[i : i + 6]] for i in range(0, len(symbols), 6)]
    start, *data, check = values
    assert check == (start + sum(i * v for i, v in enumerate(data, start=1))) % 103, "bad check symbol"
    subset = {103: "A", 104: "B", 105: "C"}[start]
    text = ""
    for value in data:
        if subset != "C" and value == 99:
            subset = "C"
        elif value == 100 and subset != "B":
            subset = "B"
        elif value == 101 and subset != "A":
            subset = "A"
        elif subset == "C":
            text += f"{value:02d}"
        else:
            assert value < (64 if subset == "A" else 95), "control characters are not expected on a label"
            text += chr(value + 32)
    return text


def zpl_fields(zpl: str) -> list[str]:
    """The printed text of every ^FH_^FD…^FS field, hex escapes decoded (UTF-8, as ^CI28 says)."""
    raw = re.findall(r"\^FH_\^FD(.*?)\^FS", zpl)
    return [re.sub(rb"_([0-9A-F]{2})", lambda m: bytes.fromhex(m[1].decode()), f.encode()).decode() for f in raw]


def zpl_commands(zpl: str) -> set[str]:
    """The names of the ^ commands of a ZPL text (e.g. "XA", "FO", "A0")."""
    return set(re.findall(r"\^([A-Z@][A-Z0-9@]?)", zpl))


# --- Checks shared by the tube and the bag labels --------------------------------------------------------------


def assert_one_page_pdf(pdf: bytes, size: tuple[float, float]) -> None:
    """A PDF of exactly one page of ``size`` (width, height in points)."""
    assert pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == size


def assert_embeds_dejavu(pdf: bytes) -> None:
    """The PDF's fonts are DejaVu Sans Condensed (regular and bold), which the test machine must have."""
    assert (labelkit.FONT_DIRS[0] / "DejaVuSansCondensed.ttf").is_file(), (
        "fonts-dejavu-core is required (make test installs it)"
    )
    assert {"DejaVuSansCondensed", "DejaVuSansCondensed-Bold"} <= pdf_font_names(pdf)


def assert_one_zpl_label(zpl: str, *commands: str) -> None:
    """Exactly one ZPL format, ^XA … ^XZ with nothing after it, that contains each of ``commands``."""
    assert zpl.startswith("^XA")
    assert zpl.endswith("^XZ")
    assert zpl.count("^XA") == 1
    assert zpl.count("^XZ") == 1
    for command in commands:
        assert command in zpl


# The patient on both labels, with letters beyond ASCII: "MÜLLER, Jón Ólafsdóttir", "MRN 12345678", "DOB 1980-01-31".
PATIENT: dict[str, Any] = {
    "family_name": "Müller",
    "given_name": "Jón Ólafsdóttir",
    "mrn": "12345678",
    "birth_date": date(1980, 1, 31),
}

# A patient name longer than any label has room for: it is cut, never allowed to push other lines off.
LONG_NAME: dict[str, Any] = {
    "family_name": "Wolfeschlegelsteinhausenbergerdorff",
    "given_name": "Maximiliane Anna-Sophie Theodora",
}

# The patient's identifiers written as ZPL commands: a label must print them, never obey them.
HOSTILE_PATIENT: dict[str, Any] = {"family_name": "X^XZ~JA", "given_name": "A_B^FS^XA~JR", "mrn": "1^PQ99"}


def assert_prints_hostile_text(zpl: str, allowed: set[str]) -> list[str]:
    """The ZPL of a label made with :data:`HOSTILE_PATIENT` (and more hostile text): still one format of one copy,
    no tilde command, no command outside ``allowed``, and the patient's lines printed as written. Returns the
    printed text fields."""
    assert_one_zpl_label(zpl, "^PQ1")
    assert "~" not in zpl  # no tilde command at all
    assert zpl_commands(zpl) <= allowed
    assert "^PQ99" not in zpl
    fields = zpl_fields(zpl)
    assert fields[0] == "X^XZ~JA, A_B^FS^XA~JR"  # printed as written
    assert "MRN 1^PQ99" in fields
    return fields
