"""Infusion bag labels: a one-page PDF for ordinary printers and ZPL for 203 dpi thermal printers.

Pure functions over a :class:`PreparationLabel`: no models, no database. Both renderings carry the same
content: the patient's two identifiers ("FAMILY, Given" with "MRN …", and "DOB …"), the drug in large bold
type, dose, final volume and concentration, the diluent, route and infusion time, the filter, the
beyond-use date and time (boxed), storage, preparer and verifier, a Code 128 barcode of the preparation id
with the id as text under it, and a "HAZARDOUS" banner across the top for a hazardous drug.

Layout of the 4 in x 2.5 in label (both renderings)::

    ████████████████████ HAZARDOUS ████████████████████   (hazardous drugs only)
    MÜLLER, Jón                                            (name, bold)
    MRN 12345678                             DOB 1980-01-31
    ───────────────────────────────────────────────────────
    Pembrolizumab                                          (bold, as large as fits)
    Dose 240 mg    Volume 148 mL    Conc 1.62 mg/mL        (bold)
    Diluent 0.9% NaCl 100 mL
    IV infusion over 30 min
    0.2-5 µm in-line filter
    ┌──────────────────────┐
    │ BUD 2025-03-05 14:00 │              ▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌
    └──────────────────────┘              ▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌
    Refrigerate 2-8 °C  (bold)            ▌▌▌▐▐▌▌▌▐▐▌▌▌▐▐▌
    Prep jdoe · Ver asmith                   PRP-000123

A cell product (``cells`` given) shows its viable cells and the certificate's bag volume instead of mg and
concentration, and its chain-of-identity ID where the diluent goes. Safety notes follow the filter line, in
smaller type when they need the room: "End infusion by …" (a label in-use time that runs to the end of the
infusion), "Protect from light", the biosafety level of a genetically modified product, and the
premedication to give before the infusion (wrapped over two lines at most).

Numbers (dose, volume, concentration, cells) and the BUD are never cut: the line's type shrinks instead, and a
number too long to print whole is refused when the label is made. Other text that does not fit is cut and
ends with "…" (or "..." in ZPL); the preparer and the verifier are cut alike so that both stay on the label.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from reportlab.lib.colors import black, white
from reportlab.pdfgen.canvas import Canvas

from core import labelkit
from core.labelkit import (
    ELLIPSIS,
    ZPL_ELLIPSIS,
    Fits,
    clean,
    code128_modules,
    dob_line,
    fit_size,
    mrn_line,
    name_line,
    shrink_to_fit,
    truncate,
    zpl_box,
    zpl_field,
    zpl_fits,
    zpl_measure,
)
from core.numbers import plain_decimal
from orders.dosing import format_cells
from orders.lesions import format_pfu

__all__ = ["PDF_PAGE_SIZE", "ZPL_DPI", "PreparationLabel", "label_pdf", "label_zpl"]

# Letters, digits and inner hyphens: it goes unescaped into the barcode of both renderings.
_PREPARATION_ID_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,18}[A-Za-z0-9])?")
_MAX_NUMBER_CHARS = 10  # "12345.6789": a longer number would not print whole in its place
_HAZARDOUS = "HAZARDOUS DRUG: CHEMO PRECAUTIONS"  # USP <800>: handle with chemotherapy precautions
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


@dataclass(frozen=True)
class PreparationLabel(labelkit.PatientIdentifiers):
    preparation_id: str  # e.g. "PRP-000123": 1 to 20 ASCII letters, digits, inner hyphens; Code 128 and text
    drug: str  # e.g. "Pembrolizumab"
    dose_mg: Decimal | None  # None for a cell product (cells instead)
    volume_ml: Decimal  # the final volume in the bag (a cell product: from the certificate of analysis)
    concentration_mg_per_ml: Decimal | None
    diluent: str  # e.g. "0.9% NaCl 100 mL"
    beyond_use: datetime  # aware; printed in the time zone given to the renderer
    storage: str  # e.g. "Refrigerate 2-8 °C"
    preparer: str
    verifier: str
    route: str = "IV infusion"
    infusion_minutes: int | None = None
    filter_note: str = ""  # e.g. "0.2-5 µm in-line filter"
    hazardous: bool = False
    cells: int | None = None  # a cell product: viable cells in the bag (certificate of analysis)
    cells_unit: str = "viable cells"  # e.g. "CAR+ viable T cells"
    chain_of_identity: str = ""  # a cell product's COI ID, printed whole
    infusion_end_by: datetime | None = None  # aware; the label's in-use time runs to the end of the infusion
    protect_from_light: bool = False
    biosafety: str = ""  # e.g. "BSL-1" for a genetically modified product
    premedication: str = ""  # to give before the infusion starts
    # A bag of a continuous infusion (blinatumomab): its µg-level concentration is not printed (no mg/mL to check);
    # the dose is printed with the hours the bag runs.
    bag_hours: int | None = None
    pfu_per_ml: int | None = None  # an oncolytic virus: its concentration (no mg); volume_ml is the visit's total

    def __post_init__(self) -> None:
        if not _PREPARATION_ID_RE.fullmatch(self.preparation_id):
            raise ValueError(
                f"A preparation id is 1 to 20 ASCII letters, digits and inner hyphens, not {self.preparation_id!r}."
            )
        labelkit.check_aware(self.beyond_use, "beyond_use")
        if isinstance(self.birth_date, datetime):
            raise ValueError("birth_date must be a date, not a datetime.")
        if self.cells is not None and (isinstance(self.cells, bool) or not isinstance(self.cells, int)):
            raise ValueError(f"cells must be a whole number, not {self.cells!r}.")
        if self.cells is not None and self.cells <= 0:
            raise ValueError("cells must be positive.")
        if self.infusion_end_by is not None:
            labelkit.check_aware(self.infusion_end_by, "infusion_end_by")
        if len(clean(self.chain_of_identity)) > 40:
            raise ValueError("chain_of_identity is at most 40 characters.")
        if self.pfu_per_ml is not None and (
            isinstance(self.pfu_per_ml, bool) or not isinstance(self.pfu_per_ml, int) or self.pfu_per_ml <= 0
        ):
            raise ValueError(f"pfu_per_ml must be a positive whole number, not {self.pfu_per_ml!r}.")
        no_mg = self.cells is not None or self.pfu_per_ml is not None
        amounts: tuple[str, ...] = ("volume_ml",) if no_mg else ("dose_mg", "volume_ml", "concentration_mg_per_ml")
        if self.bag_hours is not None:
            if isinstance(self.bag_hours, bool) or not isinstance(self.bag_hours, int) or self.bag_hours <= 0:
                raise ValueError(f"bag_hours must be a positive whole number of hours, not {self.bag_hours!r}.")
            amounts = ("dose_mg", "volume_ml")
        for name in amounts:
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"{name} must be a positive finite Decimal, not {value!r}.")
            if len(plain_decimal(value)) > _MAX_NUMBER_CHARS:
                raise ValueError(f"{name} {value} is too long to print whole: round it first.")
        if self.infusion_minutes is not None and (
            isinstance(self.infusion_minutes, bool) or not isinstance(self.infusion_minutes, int)
        ):
            raise ValueError(f"infusion_minutes must be a whole number of minutes, not {self.infusion_minutes!r}.")
        if self.infusion_minutes is not None and self.infusion_minutes <= 0:
            raise ValueError("infusion_minutes must be positive.")
        if not name_line(self.family_name, self.given_name):
            raise ValueError("The patient's name is blank.")
        for name in ("mrn", "drug", "storage", "preparer", "verifier"):
            if not clean(getattr(self, name)):
                raise ValueError(f"{name} is blank.")


# --- The text lines, shared by both renderings -------------------------------------------------------------


def _amounts(label: PreparationLabel, *, superscript: bool = True) -> list[str]:
    if label.cells is not None:
        cells = format_cells(label.cells)
        if not superscript and cells != cells.translate(_SUPERSCRIPTS):  # printer fonts lack superscript digits
            cells = cells.replace(" 10", " 10^", 1).translate(_SUPERSCRIPTS)
        return [f"{cells} {clean(label.cells_unit)}".strip(), f"Bag {plain_decimal(label.volume_ml)} mL"]
    if label.pfu_per_ml is not None:
        pfu = format_pfu(label.pfu_per_ml)
        if not superscript:
            pfu = pfu.replace("10", "10^", 1).translate(_SUPERSCRIPTS) if pfu != str(label.pfu_per_ml) else pfu
        return [f"{pfu} PFU/mL", f"Volume {plain_decimal(label.volume_ml)} mL (all lesions)"]
    assert label.dose_mg is not None  # checked when made
    if label.bag_hours is not None:
        return [
            f"Dose {plain_decimal(label.dose_mg)} mg in {label.bag_hours} h",
            f"Volume {plain_decimal(label.volume_ml)} mL",
        ]
    assert label.concentration_mg_per_ml is not None
    return [
        f"Dose {plain_decimal(label.dose_mg)} mg",
        f"Volume {plain_decimal(label.volume_ml)} mL",
        f"Conc {plain_decimal(label.concentration_mg_per_ml)} mg/mL",
    ]


def _coi_line(label: PreparationLabel) -> str:
    coi = clean(label.chain_of_identity)
    return f"COI {coi}" if coi else ""


def _base_lines(label: PreparationLabel) -> list[str]:
    """Diluent (or, for a cell product, the chain-of-identity ID), route and infusion time, filter."""
    return [_diluent_line(label) or _coi_line(label), _route_line(label), clean(label.filter_note)]


def _safety_notes(label: PreparationLabel, tz: tzinfo) -> list[str]:
    notes = []
    if _diluent_line(label) and _coi_line(label):
        notes.append(_coi_line(label))
    if label.infusion_end_by is not None and label.infusion_end_by != label.beyond_use:
        notes.append(f"End infusion by {label.infusion_end_by.astimezone(tz).strftime('%Y-%m-%d %H:%M')}")
    if label.protect_from_light:
        notes.append("Protect from light")
    if clean(label.biosafety):
        notes.append(f"Biosafety {clean(label.biosafety)}: genetically modified product")
    if clean(label.premedication):
        notes.append(f"Premedication before infusion: {clean(label.premedication)}")
    return notes


def _wrap(text: str, fits: Fits, ellipsis: str, most: int = 2) -> list[str]:
    """``text`` over at most ``most`` lines, words kept whole where they can be; the last line is cut."""
    lines: list[str] = []
    words = text.split(" ")
    while words and len(lines) < most - 1:
        line = words.pop(0)
        while words and fits(f"{line} {words[0]}"):
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:
        lines.append(truncate(" ".join(words), fits, ellipsis))
    return lines


def _note_layout(
    label: PreparationLabel,
    tz: tzinfo,
    fits_at: Callable[[float], Fits],
    sizes: Sequence[float],
    room: float,
    step: Callable[[float], float],
    ellipsis: str,
) -> tuple[float, list[str]]:
    """The size and lines for the base lines plus the safety notes, in ``room`` (first to last line)."""
    base = [line for line in _base_lines(label) if line]
    notes = _safety_notes(label, tz)
    for size in sizes:
        fits = fits_at(size)
        lines = base + [part for note in notes for part in _wrap(note, fits, ellipsis)]
        if (len(lines) - 1) * step(size) <= room:
            return size, [truncate(line, fits, ellipsis) for line in lines]
    size = sizes[-1]
    fits = fits_at(size)
    joined = [*base, truncate(" · ".join(notes), fits, ellipsis)]
    while len(joined) > 1 and (len(joined) - 1) * step(size) > room:
        joined[-2:] = [truncate(" · ".join(joined[-2:]), fits, ellipsis)]
    return size, joined


def _diluent_line(label: PreparationLabel) -> str:
    diluent = clean(label.diluent)
    return f"Diluent {diluent}" if diluent else ""


def _route_line(label: PreparationLabel) -> str:
    route = clean(label.route)
    if label.infusion_minutes is None:
        return route
    minutes = label.infusion_minutes
    # A bag of a continuous infusion runs a day or more: in hours (a 48 h bag, not 2880 min).
    length = f"{minutes // 60} h" if minutes >= 24 * 60 and minutes % 60 == 0 else f"{minutes} min"
    return f"{route} over {length}" if route else f"Over {length}"


def _bud_line(label: PreparationLabel, tz: tzinfo) -> str:
    return f"BUD {label.beyond_use.astimezone(tz).strftime('%Y-%m-%d %H:%M')}"


def _staff_line(label: PreparationLabel, fits: Fits, ellipsis: str) -> str:
    """The line "Prep <preparer> · Ver <verifier>"; if it does not fit, the longer part is cut first, so that
    both names keep their start."""
    parts = [f"Prep {clean(label.preparer)}", f"Ver {clean(label.verifier)}"]
    kept = [len(part) for part in parts]

    def line() -> str:
        shown = [part if n == len(part) else part[:n].rstrip() + ellipsis for part, n in zip(parts, kept, strict=True)]
        return " · ".join(shown)

    while not fits(line()) and max(kept) > len("Prep "):
        longer = 0 if kept[0] >= kept[1] else 1
        kept[longer] -= 1
    return line()


def _steps(largest: float, smallest: float, step: float) -> list[float]:
    """Font sizes from ``largest`` down to ``smallest``."""
    count = round((largest - smallest) / step)
    return [largest - i * step for i in range(count + 1)]


# --- PDF -----------------------------------------------------------------------------------------------------

PDF_PAGE_SIZE = (4 * labelkit.PT_PER_INCH, 2.5 * labelkit.PT_PER_INCH)  # 4 in x 2.5 in, in points


def label_pdf(label: PreparationLabel, *, tz: tzinfo) -> bytes:
    """The label as a one-page 4 in x 2.5 in PDF with a Code 128 barcode of the preparation id; byte-for-byte
    the same for the same label."""
    regular, bold = labelkit.pdf_fonts()
    fitting = labelkit.pdf_fits
    page_w, page_h = PDF_PAGE_SIZE
    margin = 8.0
    right = page_w - margin
    inner = right - margin

    def draw(canvas: Canvas) -> None:
        def text(x: float, top: float, line: str, font: str, size: float) -> None:
            """Draw ``line`` with its baseline ``top`` points below the top edge."""
            canvas.setFont(font, size)
            canvas.drawString(x, page_h - top, line)

        # The hazardous banner: white on black across the top.
        top = margin
        if label.hazardous:
            canvas.rect(margin, page_h - top - 17, inner, 17, stroke=0, fill=1)
            canvas.setFillColor(white)
            canvas.setFont(bold, 11)
            canvas.drawCentredString(page_w / 2, page_h - top - 12.4, _HAZARDOUS)
            canvas.setFillColor(black)
            top += 21

        # The patient: name (smaller type before it is cut), then MRN at the left and DOB at the right (the DOB
        # is never cut).
        name = name_line(label.family_name, label.given_name)
        size, name = shrink_to_fit(name, labelkit.pdf_measure(bold), _steps(12, 9, 0.5), inner, ELLIPSIS)
        text(margin, top + 10, name, bold, size)
        dob = dob_line(label.birth_date)
        canvas.setFont(regular, 10)
        canvas.drawRightString(right, page_h - top - 23, dob)
        mrn_room = inner - labelkit.pdf_measure(regular)(dob, 10) - 10
        text(margin, top + 23, truncate(mrn_line(label.mrn), fitting(regular, 10, mrn_room), ELLIPSIS), regular, 10)
        canvas.setLineWidth(0.6)
        canvas.line(margin, page_h - top - 28, right, page_h - top - 28)

        # The drug, as large as fits (cut only if it does not fit at 10 pt); the amounts in a row, never cut.
        size, drug = shrink_to_fit(clean(label.drug), labelkit.pdf_measure(bold), _steps(17, 10, 0.5), inner, ELLIPSIS)
        text(margin, top + 45, drug, bold, size)
        amounts, gap = _amounts(label), 16.0
        size = fit_size(amounts, labelkit.pdf_measure(bold), _steps(10.5, 6, 0.5), inner, gap=gap) or 6
        x = margin
        for amount in amounts:
            text(x, top + 59, amount, bold, size)
            x += labelkit.pdf_measure(bold)(amount, size) + gap

        # Diluent, route and infusion time, filter.
        if not _safety_notes(label, tz):
            for offset, line in zip((71, 82, 93), _base_lines(label), strict=True):
                if line:
                    text(margin, top + offset, truncate(line, fitting(regular, 9.5, inner), ELLIPSIS), regular, 9.5)
        else:  # the lines close up (smaller type if need be) above the BUD box
            size, lines = _note_layout(
                label, tz, lambda size: fitting(regular, size, inner), _steps(9.5, 6, 0.5), 125 - (top + 71),
                lambda size: size * 1.16, ELLIPSIS,
            )  # fmt: skip
            for index, line in enumerate(lines):
                text(margin, top + 71 + index * size * 1.16, line, regular, size)

        # The barcode at the bottom right: 10 mil (0.72 pt) modules, narrower only if a long id needs it; a
        # quiet zone of 10 modules on either side (the label edge counts on the right).
        modules = code128_modules(label.preparation_id)
        bar_width = min(0.72, 110.0 / modules)
        quiet = 10 * bar_width
        bars_right = right if quiet <= margin else page_w - quiet
        bars_x = bars_right - modules * bar_width
        labelkit.draw_code128(canvas, label.preparation_id, bars_x, 22.0, bar_width=bar_width, height=30.0)
        # The id under the bars, centred on them but kept inside the margin.
        id_size = fit_size([label.preparation_id], labelkit.pdf_measure(bold), _steps(10, 6, 0.5), inner / 2) or 6
        id_width = labelkit.pdf_measure(bold)(label.preparation_id, id_size)
        id_x = min((bars_x + bars_right - id_width) / 2, right - id_width)
        text(id_x, 172, label.preparation_id, bold, id_size)

        # Left of the barcode and its id: the BUD boxed, storage, preparer and verifier.
        column = min(bars_x - quiet, id_x - 8) - margin
        bud = _bud_line(label, tz)
        bud_size = fit_size([bud], labelkit.pdf_measure(bold), _steps(13, 8, 0.5), column - 10) or 8
        canvas.setLineWidth(1.2)
        canvas.rect(margin, page_h - 148, labelkit.pdf_measure(bold)(bud, bud_size) + 10, 20, stroke=1, fill=0)
        text(margin + 5, 142.5 - 0.365 * (13 - bud_size), bud, bold, bud_size)  # capitals centred in the box
        text(margin, 160, truncate(clean(label.storage), fitting(bold, 10, column), ELLIPSIS), bold, 10)
        text(margin, 172, _staff_line(label, fitting(regular, 8.5, column), ELLIPSIS), regular, 8.5)

    return labelkit.render_pdf(
        PDF_PAGE_SIZE, title=f"Preparation {label.preparation_id}", subject="Preparation label", draw=draw
    )


# --- ZPL -----------------------------------------------------------------------------------------------------

ZPL_DPI = labelkit.ZPL_DPI
_ZPL_WIDTH, _ZPL_HEIGHT = 812, 508  # 4 in x 2.5 in at 203 dpi


def _zpl_size(texts: list[str], largest: int, smallest: int, width: int, *, gap: int = 0) -> int:
    """The largest even text height from ``largest`` down to ``smallest`` dots at which ``texts`` fit in a row."""
    return int(fit_size(texts, zpl_measure, range(largest, smallest - 1, -2), width, gap=gap) or smallest)


def label_zpl(label: PreparationLabel, *, tz: tzinfo) -> str:
    """The label as one ZPL II format (^XA … ^XZ) for a 203 dpi printer and a 4 in x 2.5 in label, UTF-8
    (^CI28)."""
    margin = 20
    inner = _ZPL_WIDTH - 2 * margin
    fields: list[str] = []

    top = margin
    if label.hazardous:
        fields += [
            zpl_box(margin, top, inner, 46, 46),
            zpl_field(margin, top + 8, 30, _HAZARDOUS, block=f"^FB{inner},1,0,C", reverse=True),
        ]
        top += 56

    size, name = shrink_to_fit(
        name_line(label.family_name, label.given_name), zpl_measure, range(34, 25, -2), inner, ZPL_ELLIPSIS
    )
    name_height = int(size)
    dob = dob_line(label.birth_date)
    mrn_room = inner - round(zpl_measure(dob, 28)) - 24
    mrn = truncate(mrn_line(label.mrn), zpl_fits(28, mrn_room), ZPL_ELLIPSIS)
    fields += [
        zpl_field(margin, top + 34 - name_height, name_height, name),
        zpl_field(margin, top + 40, 28, mrn),
        zpl_field(margin, top + 40, 28, dob, block=f"^FB{inner},1,0,R"),
        zpl_box(margin, top + 74, inner, 2, 2),
    ]

    size, drug = shrink_to_fit(clean(label.drug), zpl_measure, range(50, 29, -2), inner, ZPL_ELLIPSIS)
    fields.append(zpl_field(margin, top + 82 + 50 - int(size), int(size), drug))
    amounts, gap = _amounts(label, superscript=False), 36
    amounts_height = _zpl_size(amounts, 32, 20, inner, gap=gap)
    x = margin
    for amount in amounts:
        fields.append(zpl_field(x, top + 140 + (32 - amounts_height), amounts_height, amount))
        x += round(zpl_measure(amount, amounts_height)) + gap
    if not _safety_notes(label, tz):
        for offset, line in zip((180, 212, 244), _base_lines(label), strict=True):
            if line:
                fields.append(zpl_field(margin, top + offset, 26, truncate(line, zpl_fits(26, inner), ZPL_ELLIPSIS)))
    else:  # the lines close up (smaller type if need be) above the BUD box
        height, lines = _note_layout(
            label, tz, lambda size: zpl_fits(int(size), inner), range(26, 15, -2), 350 - (top + 180) - 26,
            lambda size: size + 6, ZPL_ELLIPSIS,
        )  # fmt: skip
        for index, line in enumerate(lines):
            fields.append(zpl_field(margin, top + 180 + index * (int(height) + 6), int(height), line))

    # The barcode at the bottom right, 2-dot (9.9 mil) modules, 1-dot for an unusually long id; the label edge
    # counts towards the quiet zone on the right.
    modules = code128_modules(label.preparation_id)
    module = 2 if modules * 2 <= 320 else 1
    bars_right = _ZPL_WIDTH - max(margin, 10 * module)
    bars_x = bars_right - modules * module
    fields.append(labelkit.zpl_code128(bars_x, 358, module=module, height=70, value=label.preparation_id))

    column = bars_x - 10 * module - margin
    bud = _bud_line(label, tz)
    bud_height = _zpl_size([bud], 38, 24, column - 24)
    bud_box = round(zpl_measure(bud, bud_height)) + 24
    fields += [
        zpl_box(margin, 356, bud_box, 52, 3),
        zpl_field(margin, 364 + (38 - bud_height) // 2, bud_height, bud, block=f"^FB{bud_box},1,0,C"),
        zpl_field(margin, 416, 28, truncate(clean(label.storage), zpl_fits(28, column), ZPL_ELLIPSIS)),
        zpl_field(margin, 454, 24, _staff_line(label, zpl_fits(24, column), ZPL_ELLIPSIS)),
    ]
    return labelkit.zpl_label(_ZPL_WIDTH, _ZPL_HEIGHT, fields)
