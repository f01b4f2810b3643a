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
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from reportlab.pdfgen.canvas import Canvas

from core import labelkit
from core.labelkit import (
    ELLIPSIS,
    ZPL_ELLIPSIS,
    clean,
    code128_modules,
    dob_line,
    mrn_line,
    name_line,
    truncate,
    wrap,
    zpl_field,
    zpl_fits,
)

__all__ = ["PDF_PAGE_SIZE", "ZPL_DPI", "SpecimenLabel", "label_pdf", "label_zpl"]

_ACCESSION_RE = re.compile(r"[0-9]{1,32}")


@dataclass(frozen=True)
class SpecimenLabel(labelkit.PatientIdentifiers):
    accession: str  # digits only (the check digit included), printed as Code 128 and as text
    collected_at: datetime  # aware; printed in the time zone given to the renderer
    collector: str  # the collector's name or username
    container: str  # e.g. "Lavender (K2EDTA)"
    tests: tuple[str, ...]  # short test names, e.g. ("CBC", "ANC")

    def __post_init__(self) -> None:
        # The accession goes unescaped into the barcode of both renderings, so it must be plain digits.
        if not _ACCESSION_RE.fullmatch(self.accession):
            raise ValueError(f"An accession is 1 to 32 ASCII digits, not {self.accession!r}.")
        labelkit.check_aware(self.collected_at, "collected_at")


# --- The text lines, shared by both renderings -------------------------------------------------------------


def _collected_line(label: SpecimenLabel, tz: tzinfo) -> str:
    when = label.collected_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    collector = clean(label.collector)
    return f"Coll {when} {collector}" if collector else f"Coll {when}"


def _test_names(label: SpecimenLabel) -> list[str]:
    return [name for name in (clean(test) for test in label.tests) if name]


def _wrap_tests(names: list[str], fits: Callable[[str], bool], max_lines: int, ellipsis: str) -> list[str]:
    """The tests in at most ``max_lines`` lines: as many whole names as fit, then "+N" for the rest, so a
    reader knows the tube carries more tests than the label shows; cut only if not even one name fits."""
    for shown in range(len(names), 0, -1):
        text = ", ".join(names[:shown]) + (f" +{len(names) - shown}" if shown < len(names) else "")
        lines = wrap(text, fits, max_lines, ellipsis)
        if "".join(lines).replace(" ", "") == text.replace(" ", ""):  # nothing was cut
            return lines
    return wrap(", ".join(names), fits, max_lines, ellipsis)


# --- PDF -----------------------------------------------------------------------------------------------------

PDF_PAGE_SIZE = (2 * labelkit.PT_PER_INCH, 1 * labelkit.PT_PER_INCH)  # 2 in x 1 in, in points

# Where the fonts come from (see labelkit.register_fonts); module attributes so that they can be changed.
_FONT_DIRS = labelkit.FONT_DIRS
_REPORTLAB_FONT_DIR = labelkit.REPORTLAB_FONT_DIR


@functools.cache
def _pdf_fonts() -> tuple[str, str]:
    """Names of the (regular, bold) fonts: DejaVu, else reportlab's Vera, else Helvetica."""
    return labelkit.register_fonts(tuple(_FONT_DIRS), _REPORTLAB_FONT_DIR)


def label_pdf(label: SpecimenLabel, *, tz: tzinfo) -> bytes:
    """The label as a one-page 2 in x 1 in PDF with a Code 128 barcode of the accession; byte-for-byte
    the same for the same label."""
    regular, bold = _pdf_fonts()
    fitting = labelkit.pdf_fits
    page_w = PDF_PAGE_SIZE[0]
    margin = 4.0
    right = page_w - margin

    def draw(canvas: Canvas) -> None:
        # Name, then MRN at the left and DOB at the right (the DOB is never cut; the MRN is cut if need be).
        name = name_line(label.family_name, label.given_name)
        canvas.setFont(bold, 7.5)
        canvas.drawString(margin, 62.5, truncate(name, fitting(bold, 7.5, right - margin), ELLIPSIS))
        canvas.setFont(regular, 6.2)
        dob = dob_line(label.birth_date)
        canvas.drawRightString(right, 55.0, dob)
        mrn_width = right - margin - labelkit.pdf_measure(regular)(dob, 6.2) - 6.0
        canvas.drawString(margin, 55.0, truncate(mrn_line(label.mrn), fitting(regular, 6.2, mrn_width), ELLIPSIS))

        # The barcode: 10 mil (0.72 pt) modules, narrower only if a long accession needs it; a quiet zone of
        # 10 modules on either side (the label edge counts on the left).
        bar_width = min(0.72, 82.0 / code128_modules(label.accession))
        quiet = 10 * bar_width
        bars_x = max(margin, quiet)
        bars_right = labelkit.draw_code128(canvas, label.accession, bars_x, 22.0, bar_width=bar_width, height=27.0)

        # The accession as text, centred under the bars.
        canvas.setFont(bold, 7.5)
        canvas.drawCentredString((bars_x + bars_right) / 2, 15.0, label.accession)

        # The column right of the barcode: container (up to two lines), then the tests.
        column_x = bars_right + quiet
        column_fits = fitting(regular, 5.8, right - column_x)
        container = wrap(clean(label.container), column_fits, 2, ELLIPSIS)
        tests = _wrap_tests(_test_names(label), fitting(bold, 5.8, right - column_x), 5 - len(container), ELLIPSIS)
        y = 44.5
        for line, font in [(line, regular) for line in container] + [(line, bold) for line in tests]:
            canvas.setFont(font, 5.8)
            canvas.drawString(column_x, y, line)
            y -= 6.4

        # Collection time and collector along the bottom.
        canvas.setFont(regular, 6.2)
        collected = _collected_line(label, tz)
        canvas.drawString(margin, 5.0, truncate(collected, fitting(regular, 6.2, right - margin), ELLIPSIS))

    return labelkit.render_pdf(PDF_PAGE_SIZE, title=f"Specimen {label.accession}", subject="Specimen label", draw=draw)


# --- ZPL -----------------------------------------------------------------------------------------------------

ZPL_DPI = labelkit.ZPL_DPI
_ZPL_WIDTH, _ZPL_HEIGHT = 406, 203  # 2 in x 1 in at 203 dpi


def label_zpl(label: SpecimenLabel, *, tz: tzinfo) -> str:
    """The label as one ZPL II format (^XA … ^XZ) for a 203 dpi printer and a 2 in x 1 in label, UTF-8 (^CI28)."""
    margin = 14
    inner = _ZPL_WIDTH - 2 * margin
    name = truncate(name_line(label.family_name, label.given_name), zpl_fits(26, inner), ZPL_ELLIPSIS)
    dob = dob_line(label.birth_date)
    mrn_room = inner - round(labelkit.zpl_measure(dob, 20)) - 12
    mrn = truncate(mrn_line(label.mrn), zpl_fits(20, mrn_room), ZPL_ELLIPSIS)

    modules = code128_modules(label.accession)
    module = 2 if 30 * 2 + modules * 2 <= 290 else 1  # dots: 9.9 mil, or 4.9 mil for an unusually long accession
    bars_x = max(margin, 10 * module)
    bars_right = bars_x + modules * module
    column_x = bars_right + 10 * module
    column_fits = zpl_fits(18, _ZPL_WIDTH - margin - column_x)
    container = wrap(clean(label.container), column_fits, 2, ZPL_ELLIPSIS)
    tests = _wrap_tests(_test_names(label), column_fits, 5 - len(container), ZPL_ELLIPSIS)
    collected = truncate(_collected_line(label, tz), zpl_fits(20, inner), ZPL_ELLIPSIS)

    fields = [
        zpl_field(margin, 8, 26, name),
        zpl_field(margin, 38, 20, mrn),
        zpl_field(margin, 38, 20, dob, block=f"^FB{inner},1,0,R"),
        labelkit.zpl_code128(bars_x, 64, module=module, height=62, value=label.accession),
        *(zpl_field(column_x, 64 + 19 * i, 18, line) for i, line in enumerate(container + tests)),
        zpl_field(margin, 176, 20, collected),
    ]
    return labelkit.zpl_label(_ZPL_WIDTH, _ZPL_HEIGHT, fields)
