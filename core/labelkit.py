"""Label primitives shared by the label renderers (specimen tubes, infusion bags): PDF and ZPL.

Pure helpers, no models and no database:

* the patient: :class:`PatientIdentifiers` (the fields every label prints), :func:`name_line`, :func:`mrn_line`
  and :func:`dob_line` (its lines);
* text: :func:`clean` (one printable line), :func:`truncate` and :func:`wrap` (fit with an ellipsis),
  :func:`fit_size` (the largest font size at which a text, or a row of texts, fits) and :func:`shrink_to_fit`
  (shrink, then cut);
* PDF: :func:`pdf_fonts` (DejaVu, else reportlab's Vera, else Helvetica; embedded so that text extracts),
  :func:`pdf_measure` / :func:`pdf_fits`, :func:`render_pdf` (a deterministic one-page document) and
  :func:`draw_code128`;
* ZPL: :func:`zpl_text` (^FH escaping of user text), :func:`zpl_measure` / :func:`zpl_fits`,
  :func:`zpl_field`, :func:`zpl_box`, :func:`zpl_code128` and :func:`zpl_label` (^XA … ^XZ, UTF-8).

A value encoded in a barcode goes into the PDF and the ZPL unescaped, so it must match
:data:`BARCODE_VALUE_RE` (ASCII letters, digits and hyphens): both barcode helpers refuse anything else.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import reportlab
from reportlab.graphics.barcode.code128 import Code128
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

__all__ = [
    "BARCODE_VALUE_RE",
    "ELLIPSIS",
    "FONT_DIRS",
    "PT_PER_INCH",
    "REPORTLAB_FONT_DIR",
    "ZPL_DPI",
    "ZPL_ELLIPSIS",
    "Fits",
    "Measure",
    "PatientIdentifiers",
    "check_aware",
    "clean",
    "code128_modules",
    "dob_line",
    "draw_code128",
    "fit_size",
    "mrn_line",
    "name_line",
    "pdf_fits",
    "pdf_fonts",
    "pdf_measure",
    "register_fonts",
    "render_pdf",
    "shrink_to_fit",
    "truncate",
    "wrap",
    "zpl_box",
    "zpl_code128",
    "zpl_field",
    "zpl_fits",
    "zpl_label",
    "zpl_measure",
    "zpl_text",
]

Fits = Callable[[str], bool]  # whether a text fits the room it is meant for
Measure = Callable[[str, float], float]  # the width of a text at a font size

ELLIPSIS = "…"
ZPL_ELLIPSIS = "..."  # not every printer font has "…"
BARCODE_VALUE_RE = re.compile(r"[A-Za-z0-9-]{1,48}")


# --- Text ----------------------------------------------------------------------------------------------------


def clean(text: str) -> str:
    """One line of printable text: control characters and runs of white space become single spaces."""
    chars = (" " if unicodedata.category(c)[0] in "CZ" else c for c in unicodedata.normalize("NFC", text))
    return " ".join("".join(chars).split())


@dataclass(frozen=True)
class PatientIdentifiers:
    """The patient's two identifiers every label carries (name and MRN, date of birth); a label's data class
    extends it with what it prints besides."""

    family_name: str
    given_name: str
    mrn: str
    birth_date: date


def name_line(family_name: str, given_name: str) -> str:
    """The patient's name as "FAMILY, Given" (either alone if the other is blank)."""
    family, given = clean(family_name).upper(), clean(given_name)
    return f"{family}, {given}" if family and given else family or given


def mrn_line(mrn: str) -> str:
    return f"MRN {clean(mrn)}"


def dob_line(birth_date: date) -> str:
    return f"DOB {birth_date.isoformat()}"


def check_aware(value: datetime, name: str) -> None:
    """Refuse a naive datetime: a label prints times in the time zone given to its renderer."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime.")


def truncate(text: str, fits: Fits, ellipsis: str) -> str:
    """The longest start of ``text`` that fits, ending with ``ellipsis`` when it had to be cut."""
    if fits(text):
        return text
    for end in range(len(text) - 1, -1, -1):
        candidate = text[:end].rstrip(" ,") + ellipsis
        if fits(candidate):
            return candidate
    return ""


def wrap(text: str, fits: Fits, max_lines: int, ellipsis: str) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines; a word wider than a line is cut by characters."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        if len(lines) == max_lines - 1:
            lines.append(truncate(" ".join(words), fits, ellipsis))
            break
        line = words.pop(0)
        if not fits(line):  # a single over-long word: cut it where it stops fitting and carry the rest
            cut = max((end for end in range(1, len(line)) if fits(line[:end])), default=1)
            line, rest = line[:cut], line[cut:]
            words.insert(0, rest)
        else:
            while words and fits(f"{line} {words[0]}"):
                line = f"{line} {words.pop(0)}"
        lines.append(line)
    return [line for line in lines if line]


def fit_size(
    texts: Sequence[str], measure: Measure, sizes: Iterable[float], width: float, *, gap: float = 0.0
) -> float | None:
    """The first of ``sizes`` (give them largest first) at which ``texts``, set in a row ``gap`` apart, are
    at most ``width`` wide; None if they fit at none."""
    for size in sizes:
        if sum(measure(text, size) for text in texts) + gap * (len(texts) - 1) <= width:
            return size
    return None


def shrink_to_fit(
    text: str, measure: Measure, sizes: Sequence[float], width: float, ellipsis: str
) -> tuple[float, str]:
    """The first of ``sizes`` (largest first) at which ``text`` is at most ``width`` wide, and the text; if it
    fits at none, the last size and the text cut to fit at it (see :func:`truncate`)."""
    size = fit_size([text], measure, sizes, width)
    if size is not None:
        return size, text
    return sizes[-1], truncate(text, lambda t: measure(t, sizes[-1]) <= width, ellipsis)


def _check_barcode_value(value: str) -> None:
    if not BARCODE_VALUE_RE.fullmatch(value):
        raise ValueError(f"A barcode value is 1 to 48 ASCII letters, digits or hyphens, not {value!r}.")


def code128_modules(value: str) -> int:
    """Width of the Code 128 symbol in modules (narrowest bars), without quiet zones."""
    return round(Code128(value, barWidth=1, quiet=0).width)


# --- PDF -----------------------------------------------------------------------------------------------------

PT_PER_INCH = 72.0

FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts/truetype/dejavu"),)
FONT_CANDIDATES = (  # (regular, bold) file names, best first
    ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
)
REPORTLAB_FONT_DIR = Path(reportlab.__file__).parent / "fonts"  # ships Bitstream Vera


@functools.cache
def register_fonts(font_dirs: tuple[Path, ...], fallback_dir: Path) -> tuple[str, str]:
    """Names of the (regular, bold) fonts, registered once per arguments: DejaVu from ``font_dirs``, else
    Vera from ``fallback_dir``, else Helvetica.

    The TrueType fonts are embedded (subset) with a ToUnicode map, so non-ASCII names render and their
    text can be extracted from the PDF; Helvetica covers Latin-1 only.
    """
    candidates = [(d / regular, d / bold) for d in font_dirs for regular, bold in FONT_CANDIDATES]
    candidates.append((fallback_dir / "Vera.ttf", fallback_dir / "VeraBd.ttf"))
    for regular, bold in candidates:
        if regular.is_file() and bold.is_file():
            names = f"LabFlow-{regular.stem}", f"LabFlow-{bold.stem}"
            try:
                for name, path in zip(names, (regular, bold), strict=True):
                    pdfmetrics.registerFont(TTFont(name, str(path)))
            except Exception:  # noqa: S112 - an unreadable font file: try the next one
                continue
            return names
    return "Helvetica", "Helvetica-Bold"


def pdf_fonts() -> tuple[str, str]:
    """The (regular, bold) fonts from the default places (:data:`FONT_DIRS`, :data:`REPORTLAB_FONT_DIR`)."""
    return register_fonts(FONT_DIRS, REPORTLAB_FONT_DIR)


def pdf_measure(font: str) -> Measure:
    """The width in points of a text set in ``font`` at a size."""
    return lambda text, size: pdfmetrics.stringWidth(text, font, size)


def pdf_fits(font: str, size: float, width: float) -> Fits:
    return lambda text: pdfmetrics.stringWidth(text, font, size) <= width


def render_pdf(page_size: tuple[float, float], *, title: str, subject: str, draw: Callable[[Canvas], None]) -> bytes:
    """A one-page PDF of ``page_size`` (points) that ``draw`` paints; byte-for-byte the same for the same
    drawing (no dates, no random document id), content compressed."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=page_size, invariant=1, pageCompression=1)
    canvas.setTitle(title)
    canvas.setSubject(subject)
    canvas.setCreator("LabFlow")
    draw(canvas)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def draw_code128(canvas: Canvas, value: str, x: float, y: float, *, bar_width: float, height: float) -> float:
    """Draw the bars of a Code 128 symbol of ``value`` (no quiet zones, no text) from (x, y), the bottom left,
    as filled rectangles; the x of its right end."""
    _check_barcode_value(value)
    barcode = Code128(value, barWidth=bar_width, barHeight=height, quiet=0, humanReadable=0)
    barcode.drawOn(canvas, x, y)
    return x + code128_modules(value) * bar_width


# --- ZPL -----------------------------------------------------------------------------------------------------

ZPL_DPI = 203
_ZPL_HEX = "_"  # the ^FH escape character


def zpl_text(text: str) -> str:
    """Field data for ^FH_^FD: the characters that ZPL would read as a command (^, ~) and the escape
    character itself become hexadecimal escapes, so printed text can never end the label or send a
    command."""
    return "".join(f"{_ZPL_HEX}{ord(c):02X}" if c in "^~" + _ZPL_HEX else c for c in text)


def zpl_measure(text: str, height: float) -> float:
    """The width in dots of a text in the scalable font 0 (CG Triumvirate Bold Condensed) at ``height`` dots.

    There are no font metrics to hand, so it counts characters at a conservative 0.6 em each on average
    (wide capitals are rarely the whole line).
    """
    return len(text) * 0.6 * height


def zpl_fits(height: int, width_dots: int) -> Fits:
    """Whether a text fits ``width_dots`` in the font 0 at ``height`` dots (see :func:`zpl_measure`)."""
    return lambda text: zpl_measure(text, height) <= width_dots


def zpl_field(x: int, y: int, height: int, text: str, *, block: str = "", reverse: bool = False) -> str:
    """A text field in font 0 at (x, y), the top left; ``block`` is an optional ^FB; ``reverse`` prints
    it white on a black ^GB box. The text is escaped (:func:`zpl_text`)."""
    return f"^FO{x},{y}^A0N,{height},{height}{block}{'^FR' if reverse else ''}^FH{_ZPL_HEX}^FD{zpl_text(text)}^FS"


def zpl_box(x: int, y: int, width: int, height: int, thickness: int) -> str:
    """A box (^GB) at (x, y); a thickness of half the smaller side or more fills it black."""
    return f"^FO{x},{y}^GB{width},{height},{thickness}^FS"


def zpl_code128(x: int, y: int, *, module: int, height: int, value: str) -> str:
    """A Code 128 symbol of ``value`` at (x, y): automatic subsets (digit runs go in subset C), modules
    ``module`` dots wide, bars ``height`` dots tall, the interpretation line printed under the bars."""
    _check_barcode_value(value)
    return f"^FO{x},{y}^BY{module}^BCN,{height},Y,N,N,A^FD{value}^FS"


def zpl_label(width: int, height: int, fields: Iterable[str]) -> str:
    """One ZPL II format (^XA … ^XZ) of ``width`` x ``height`` dots, one copy, field data in UTF-8 (^CI28)."""
    return "\n".join(
        [
            "^XA",
            "^CI28",  # field data is UTF-8
            f"^PW{width}",
            f"^LL{height}",
            "^LH0,0",
            *fields,
            "^PQ1",
            "^XZ",
        ]
    )
