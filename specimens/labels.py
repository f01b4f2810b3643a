"""Specimen tube labels: a one-page PDF for ordinary printers and ZPL for 203 dpi thermal printers.

Pure functions over a :class:`SpecimenLabel`: no models, no database. Both renderings carry the same
content: a Code 128 barcode of the accession with the accession as text under it, "FAMILY, Given",
"MRN …" and "DOB …", "Coll <collected at> <collector>", the container and the tests.

Layout of the 2 in x 1 in label (both renderings)::

    MÜLLER, Jón                                    (name, bold)
    MRN 12345678                    DOB 1980-01-31
    ▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌    Lavender
    ▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌    (K2EDTA)
    ▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌▌▌    CBC, ANC
          00000123453
    Coll 2025-03-04 09:15 jdoe

Text that does not fit is cut and ends with "…" (or "..." in ZPL, since not every printer font has "…").
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path

import reportlab
from reportlab.graphics.barcode.code128 import Code128
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

__all__ = ["PDF_PAGE_SIZE", "ZPL_DPI", "SpecimenLabel", "label_pdf", "label_zpl"]

_ACCESSION_RE = re.compile(r"[0-9]{1,32}")
_ELLIPSIS = "…"


@dataclass(frozen=True)
class SpecimenLabel:
    accession: str  # digits only (the check digit included), printed as Code 128 and as text
    family_name: str
    given_name: str
    mrn: str
    birth_date: date
    collected_at: datetime  # aware; printed in the time zone given to the renderer
    collector: str  # the collector's name or username
    container: str  # e.g. "Lavender (K2EDTA)"
    tests: tuple[str, ...]  # short test names, e.g. ("CBC", "ANC")

    def __post_init__(self) -> None:
        # The accession goes unescaped into the barcode of both renderings, so it must be plain digits.
        if not _ACCESSION_RE.fullmatch(self.accession):
            raise ValueError(f"An accession is 1 to 32 ASCII digits, not {self.accession!r}.")
        if self.collected_at.tzinfo is None or self.collected_at.utcoffset() is None:
            raise ValueError("collected_at must be an aware datetime.")


# --- The text lines, shared by both renderings -------------------------------------------------------------


def _clean(text: str) -> str:
    """One line of printable text: control characters and runs of white space become single spaces."""
    chars = (" " if unicodedata.category(c)[0] in "CZ" else c for c in unicodedata.normalize("NFC", text))
    return " ".join("".join(chars).split())


def _name_line(label: SpecimenLabel) -> str:
    family, given = _clean(label.family_name).upper(), _clean(label.given_name)
    return f"{family}, {given}" if family and given else family or given


def _mrn_line(label: SpecimenLabel) -> str:
    return f"MRN {_clean(label.mrn)}"


def _dob_line(label: SpecimenLabel) -> str:
    return f"DOB {label.birth_date.isoformat()}"


def _collected_line(label: SpecimenLabel, tz: tzinfo) -> str:
    when = label.collected_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    collector = _clean(label.collector)
    return f"Coll {when} {collector}" if collector else f"Coll {when}"


def _test_names(label: SpecimenLabel) -> list[str]:
    return [name for name in (_clean(test) for test in label.tests) if name]


def _truncate(text: str, fits: Callable[[str], bool], ellipsis: str) -> str:
    """The longest start of ``text`` that fits, ending with ``ellipsis`` when it had to be cut."""
    if fits(text):
        return text
    for end in range(len(text) - 1, -1, -1):
        candidate = text[:end].rstrip(" ,") + ellipsis
        if fits(candidate):
            return candidate
    return ""


def _wrap(text: str, fits: Callable[[str], bool], max_lines: int, ellipsis: str) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines; a word wider than a line is cut by characters."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        if len(lines) == max_lines - 1:
            lines.append(_truncate(" ".join(words), fits, ellipsis))
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


def _wrap_tests(names: list[str], fits: Callable[[str], bool], max_lines: int, ellipsis: str) -> list[str]:
    """The tests in at most ``max_lines`` lines: as many whole names as fit, then "+N" for the rest, so a
    reader knows the tube carries more tests than the label shows; cut only if not even one name fits."""
    for shown in range(len(names), 0, -1):
        text = ", ".join(names[:shown]) + (f" +{len(names) - shown}" if shown < len(names) else "")
        lines = _wrap(text, fits, max_lines, ellipsis)
        if "".join(lines).replace(" ", "") == text.replace(" ", ""):  # nothing was cut
            return lines
    return _wrap(", ".join(names), fits, max_lines, ellipsis)


def _code128_modules(accession: str) -> int:
    """Width of the Code 128 symbol in modules (narrowest bars), without quiet zones."""
    return round(Code128(accession, barWidth=1, quiet=0).width)


# --- PDF -----------------------------------------------------------------------------------------------------

_PT_PER_INCH = 72.0
PDF_PAGE_SIZE = (2 * _PT_PER_INCH, 1 * _PT_PER_INCH)  # 2 in x 1 in, in points

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
_FONT_CANDIDATES = (  # (regular, bold) file names, best first
    ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
)
_REPORTLAB_FONT_DIR = Path(reportlab.__file__).parent / "fonts"  # ships Bitstream Vera


@functools.cache
def _pdf_fonts() -> tuple[str, str]:
    """Names of the (regular, bold) fonts, registered once: DejaVu, else reportlab's Vera, else Helvetica.

    The TrueType fonts are embedded (subset) with a ToUnicode map, so non-ASCII names render and their
    text can be extracted from the PDF; Helvetica covers Latin-1 only.
    """
    candidates = [(d / regular, d / bold) for d in _FONT_DIRS for regular, bold in _FONT_CANDIDATES]
    candidates.append((_REPORTLAB_FONT_DIR / "Vera.ttf", _REPORTLAB_FONT_DIR / "VeraBd.ttf"))
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


def label_pdf(label: SpecimenLabel, *, tz: tzinfo) -> bytes:
    """The label as a one-page 2 in x 1 in PDF with a Code 128 barcode of the accession; byte-for-byte
    the same for the same label."""
    regular, bold = _pdf_fonts()
    page_w = PDF_PAGE_SIZE[0]
    margin = 4.0
    right = page_w - margin

    def fitting(font: str, size: float, width: float) -> Callable[[str], bool]:
        return lambda text: pdfmetrics.stringWidth(text, font, size) <= width

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=PDF_PAGE_SIZE, invariant=1, pageCompression=1)
    canvas.setTitle(f"Specimen {label.accession}")
    canvas.setSubject("Specimen label")
    canvas.setCreator("LabFlow")

    # Name, then MRN at the left and DOB at the right (the DOB is never cut; the MRN is cut if need be).
    canvas.setFont(bold, 7.5)
    canvas.drawString(margin, 62.5, _truncate(_name_line(label), fitting(bold, 7.5, right - margin), _ELLIPSIS))
    canvas.setFont(regular, 6.2)
    dob = _dob_line(label)
    canvas.drawRightString(right, 55.0, dob)
    mrn_width = right - margin - pdfmetrics.stringWidth(dob, regular, 6.2) - 6.0
    canvas.drawString(margin, 55.0, _truncate(_mrn_line(label), fitting(regular, 6.2, mrn_width), _ELLIPSIS))

    # The barcode: 10 mil (0.72 pt) modules, narrower only if a long accession needs it; a quiet zone of
    # 10 modules on either side (the label edge counts on the left).
    modules = _code128_modules(label.accession)
    bar_width = min(0.72, 82.0 / modules)
    quiet = 10 * bar_width
    bars_x, bars_bottom, bars_height = max(margin, quiet), 22.0, 27.0
    barcode = Code128(label.accession, barWidth=bar_width, barHeight=bars_height, quiet=0, humanReadable=0)
    barcode.drawOn(canvas, bars_x, bars_bottom)
    bars_right = bars_x + modules * bar_width

    # The accession as text, centred under the bars.
    canvas.setFont(bold, 7.5)
    canvas.drawCentredString((bars_x + bars_right) / 2, 15.0, label.accession)

    # The column right of the barcode: container (up to two lines), then the tests.
    column_x = bars_right + quiet
    column_fits = fitting(regular, 5.8, right - column_x)
    container = _wrap(_clean(label.container), column_fits, 2, _ELLIPSIS)
    tests = _wrap_tests(_test_names(label), fitting(bold, 5.8, right - column_x), 5 - len(container), _ELLIPSIS)
    y = 44.5
    for line, font in [(line, regular) for line in container] + [(line, bold) for line in tests]:
        canvas.setFont(font, 5.8)
        canvas.drawString(column_x, y, line)
        y -= 6.4

    # Collection time and collector along the bottom.
    canvas.setFont(regular, 6.2)
    collected = _collected_line(label, tz)
    canvas.drawString(margin, 5.0, _truncate(collected, fitting(regular, 6.2, right - margin), _ELLIPSIS))

    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# --- ZPL -----------------------------------------------------------------------------------------------------

ZPL_DPI = 203
_ZPL_WIDTH, _ZPL_HEIGHT = 406, 203  # 2 in x 1 in at 203 dpi
_ZPL_ELLIPSIS = "..."  # not every printer font has "…"
_ZPL_HEX = "_"  # the ^FH escape character


def _zpl_text(text: str) -> str:
    """Field data for ^FH_^FD: the characters that ZPL would read as a command (^, ~) and the escape
    character itself become hexadecimal escapes, so printed text can never end the label or send a
    command."""
    return "".join(f"{_ZPL_HEX}{ord(c):02X}" if c in "^~" + _ZPL_HEX else c for c in text)


def _zpl_fits(height: int, width_dots: int) -> Callable[[str], bool]:
    """Whether a text fits, for the scalable font 0 (CG Triumvirate Bold Condensed) at ``height`` dots.

    There are no font metrics to hand, so it counts characters at a conservative 0.6 em each on average
    (wide capitals are rarely the whole line).
    """
    return lambda text: len(text) * 0.6 * height <= width_dots


def _zpl_field(x: int, y: int, height: int, text: str, *, block: str = "") -> str:
    return f"^FO{x},{y}^A0N,{height},{height}{block}^FH{_ZPL_HEX}^FD{_zpl_text(text)}^FS"


def label_zpl(label: SpecimenLabel, *, tz: tzinfo) -> str:
    """The label as one ZPL II format (^XA … ^XZ) for a 203 dpi printer and a 2 in x 1 in label, UTF-8 (^CI28)."""
    margin = 14
    inner = _ZPL_WIDTH - 2 * margin
    name = _truncate(_name_line(label), _zpl_fits(26, inner), _ZPL_ELLIPSIS)
    dob = _dob_line(label)
    mrn_room = inner - round(len(dob) * 0.6 * 20) - 12
    mrn = _truncate(_mrn_line(label), _zpl_fits(20, mrn_room), _ZPL_ELLIPSIS)

    modules = _code128_modules(label.accession)
    module = 2 if 30 * 2 + modules * 2 <= 290 else 1  # dots: 9.9 mil, or 4.9 mil for an unusually long accession
    bars_x = max(margin, 10 * module)
    bars_right = bars_x + modules * module
    column_x = bars_right + 10 * module
    column_fits = _zpl_fits(18, _ZPL_WIDTH - margin - column_x)
    container = _wrap(_clean(label.container), column_fits, 2, _ZPL_ELLIPSIS)
    tests = _wrap_tests(_test_names(label), column_fits, 5 - len(container), _ZPL_ELLIPSIS)
    collected = _truncate(_collected_line(label, tz), _zpl_fits(20, inner), _ZPL_ELLIPSIS)

    fields = [
        _zpl_field(margin, 8, 26, name),
        _zpl_field(margin, 38, 20, mrn),
        _zpl_field(margin, 38, 20, dob, block=f"^FB{inner},1,0,R"),
        # Code 128, automatic subsets (digits go in subset C), the interpretation line under the bars.
        f"^FO{bars_x},64^BY{module}^BCN,62,Y,N,N,A^FD{label.accession}^FS",
        *(_zpl_field(column_x, 64 + 19 * i, 18, line) for i, line in enumerate(container + tests)),
        _zpl_field(margin, 176, 20, collected),
    ]
    return "\n".join(
        [
            "^XA",
            "^CI28",  # field data is UTF-8
            f"^PW{_ZPL_WIDTH}",
            f"^LL{_ZPL_HEIGHT}",
            "^LH0,0",
            *fields,
            "^PQ1",
            "^XZ",
        ]
    )
