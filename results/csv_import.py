"""CSV result import: files as labs and spreadsheets export them, stored through `build_results`/`results_store`.

The file
    Columns ``accession, mrn, loinc, value, unit, observed_at`` in any order (others are ignored); the header is
    matched without regard to case, spaces or underscores ("Observed At" is ``observed_at``). The delimiter is
    sniffed from the header line: comma, semicolon or tab. UTF-8 with or without a byte order mark unless an
    ``encoding`` is given (e.g. ``cp1252`` for a Windows export). Empty rows, also Excel's ``,,,,,`` rows, are
    ignored. Values use a decimal point unless ``decimal_comma`` is set (then a value with a point is refused: a
    thousands separator must not become a decimal). ``observed_at`` is ISO 8601 with a time (``2026-11-22T10:15``,
    with or without an offset) unless ``date_format`` (a :func:`datetime.strptime` format) is given; times without
    an offset are in ``TIME_ZONE``. A blank ``observed_at`` means the specimen's collection time; a date that
    cannot be read, or lies in the future, is a refusal, never the collection time.

Transaction policy
    A specimen (every row with its accession number, wherever it is in the file) is all or nothing: a refused
    line refuses its whole specimen, and each refusal names its line. The other specimens are stored, also
    those after a bad line. Specimens are inserted up to ``chunk`` per transaction; should an insert fail
    (another import stored the same result meanwhile), each specimen of that chunk is retried in its own
    transaction. A file that cannot be read at all (wrong encoding, no usable header, broken quoting) stores
    nothing: which rows would be meant is not known. A dry run does all of it in one transaction that is rolled
    back, so its report is exactly what a real run would store.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.errors import Conflict
from results.choices import ResultFlag, ResultSource
from results.importing import Lookup
from results.models import Result
from results.services import ResultEntry, build_results, entry_context, results_store

__all__ = [
    "CSV_COLUMNS",
    "DELIMITERS",
    "CsvFile",
    "CsvGroup",
    "CsvOptions",
    "CsvReport",
    "CsvRow",
    "StoredLine",
    "import_csv",
    "import_csv_groups",
    "parse_csv",
    "read_csv",
]

CSV_COLUMNS = ("accession", "mrn", "loinc", "value", "unit", "observed_at")
DELIMITERS = (",", ";", "\t")
FUTURE_TOLERANCE = timedelta(minutes=5)  # instrument clocks run a little ahead
_COLUMN_NAMES = {re.sub(r"[\s_]+", "", c): c for c in CSV_COLUMNS}
_FIELD_COLUMNS = {"lab_test": "loinc", "specimen": "accession"}  # build_results' field names as CSV columns
_INDEXED_FIELD = re.compile(r"results\[(\d+)\]\.(.+)")
_NUMERIC_CHARS = re.compile(r"[\d\s<>=+\-:/.,]+")  # a number, a censored value (<5), a range or a ratio
_ISO_WITH_TIME = re.compile(r"\d[T ]\d")


@dataclass(frozen=True)
class CsvOptions:
    encoding: str = ""  # "" is UTF-8 with or without a BOM
    decimal_comma: bool = False
    date_format: str = ""  # "" is ISO 8601; else a strptime format


@dataclass
class CsvRow:
    line: int
    loinc: str
    value: str
    unit: str
    observed_at: datetime | None


@dataclass
class CsvGroup:
    """The rows of one specimen; ``refusals`` are the line-numbered reasons found while reading (any refuses it)."""

    accession: str
    mrn: str
    rows: list[CsvRow] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # every line of the specimen, refused ones too


@dataclass
class CsvFile:
    name: str
    delimiter: str = ","
    groups: list[CsvGroup] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # lines that belong to no specimen (no accession)
    error: str = ""  # the file cannot be read: nothing from it is stored


@dataclass(frozen=True)
class StoredLine:
    line: int
    accession: str
    result: Result

    def describe(self) -> str:
        result = self.result
        grade = f"CTCAE G{result.ctcae_grade}" if result.ctcae_grade else ""
        flags = " ".join(f for f in (result.flag if result.flag != ResultFlag.NORMAL else "", grade) if f)
        received = f"{result.received_value} {result.received_unit}".strip()
        return f"line {self.line}: {self.accession} {result.lab_test.name} {received} -> {result.display_value}" + (
            f" [{flags}]" if flags else ""
        )


@dataclass
class CsvReport:
    name: str
    dry_run: bool = False
    stored: list[StoredLine] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # "line N: reason", in line order
    specimens_stored: int = 0
    specimens_refused: int = 0
    lines_refused: int = 0  # lines that belong to no specimen (no accession)
    file_refused: bool = False  # the file could not be read: nothing from it was stored

    @property
    def refused(self) -> int:
        """Refused specimens, plus lines without an accession, plus 1 for a file that could not be read."""
        return self.specimens_refused + self.lines_refused + int(self.file_refused)


class _RefusedError(Exception):
    """A specimen's line-numbered reasons."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# --- Reading -------------------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str) -> str:
    """The text, or ValueError naming the line and what to do."""
    try:
        text = data.decode(encoding or "utf-8-sig")
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}.") from None
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start : error.start + 1].hex().upper()
        hint = " (give the file's encoding with --encoding, e.g. cp1252)" if not encoding else ""
        raise ValueError(f"line {line}: byte 0x{byte} is not {encoding or 'UTF-8'}{hint}.") from None
    return text.removeprefix("\ufeff")


def _column_key(name: str) -> str:
    return re.sub(r"[\s_]+", "", name.strip().casefold())


def _header(first_line: str, line: int) -> tuple[str, dict[str, int]]:
    """(delimiter, column -> index) from the header line: the delimiter that finds the most known columns."""
    best: tuple[int, int, str, dict[str, int]] | None = None
    for delimiter in DELIMITERS:
        names = next(csv.reader([first_line], delimiter=delimiter), [])
        found: dict[str, int] = {}
        for index, name in enumerate(names):
            column = _COLUMN_NAMES.get(_column_key(name))
            if column is None:
                continue
            if column in found:
                raise ValueError(f"line {line}: the header has the column {column} twice.")
            found[column] = index
        score = (len(found), len(names))
        if best is None or score > best[:2]:
            best = (*score, delimiter, found)
    assert best is not None  # DELIMITERS is not empty
    _, _, delimiter, columns = best
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"line {line}: the header lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(expected {', '.join(CSV_COLUMNS)}; separated by comma, semicolon or tab)."
        )
    return delimiter, columns


def _value(raw: str, decimal_comma: bool) -> str:
    """The value with a decimal point; ValueError where a comma or point would be read wrongly."""
    numeric = bool(_NUMERIC_CHARS.fullmatch(raw))
    if decimal_comma and numeric:
        if re.search(r"\d\.\d", raw):
            raise ValueError(f"value {raw!r} has a decimal point, but the file is read with --decimal-comma.")
        return re.sub(r"(?<=\d),(?=\d)", ".", raw)
    if numeric and re.search(r"\d,\d", raw):
        raise ValueError(
            f"value {raw!r} has a comma: a decimal comma needs --decimal-comma (thousands separators are refused)."
        )
    return raw


def _observed_at(raw: str, date_format: str, now: datetime) -> datetime | None:
    if not raw:
        return None
    try:
        if date_format:
            value = datetime.strptime(raw, date_format)  # noqa: DTZ007 - made aware below when it has no offset
        elif _ISO_WITH_TIME.search(raw):
            value = datetime.fromisoformat(raw)
        else:
            raise ValueError
    except ValueError:
        expected = f"the format {date_format!r}" if date_format else "ISO 8601 with a time, e.g. 2026-11-22T10:15"
        raise ValueError(f"observed_at {raw!r} is not a date and time in {expected}.") from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value > now + FUTURE_TOLERANCE:
        raise ValueError(f"observed_at {raw!r} is in the future.")
    return value


def parse_csv(data: bytes, *, name: str, options: CsvOptions | None = None, now: datetime) -> CsvFile:
    """Read a CSV export into specimen groups without touching the database; never raises for bad content."""
    options = options or CsvOptions()
    parsed = CsvFile(name)
    try:
        text = _decode(data, options.encoding)
    except ValueError as error:
        parsed.error = str(error)
        return parsed
    physical = io.StringIO(text, newline="").readlines()  # lines as csv.reader counts them (\n, \r\n or \r)
    header_index = next((i for i, line in enumerate(physical) if line.strip(" \t,;\r\n")), None)
    if header_index is None:
        parsed.error = "the file has no header line."
        return parsed
    header_line = physical[header_index].rstrip("\r\n")
    try:
        parsed.delimiter, columns = _header(header_line, header_index + 1)
    except ValueError as error:
        parsed.error = str(error)
        return parsed
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=parsed.delimiter)
    groups: dict[str, CsvGroup] = {}
    width = max(columns.values()) + 1
    try:
        for record in reader:
            line = reader.line_num - sum(c.count("\n") for c in record)  # where a record with quoted newlines starts
            if line <= header_index + 1 or not any(cell.strip() for cell in record):
                continue  # the header, lines before it, empty rows and Excel's ",,,,," rows
            cells = {column: record[index].strip() if index < len(record) else "" for column, index in columns.items()}
            accession = cells["accession"]
            if not accession:
                parsed.refusals.append(f"line {line}: accession is empty.")
                continue
            group = groups.setdefault(accession, CsvGroup(accession, cells["mrn"]))
            group.lines.append(line)
            try:
                if len(record) < width:
                    raise ValueError(f"{len(record)} fields, the header has {width}.")
                for column in ("mrn", "loinc", "value"):
                    if not cells[column]:
                        raise ValueError(f"{column} is empty.")
                if cells["mrn"] != group.mrn:
                    raise ValueError(f"mrn differs from line {group.lines[0]} of the same specimen.")
                row = CsvRow(
                    line=line,
                    loinc=cells["loinc"],
                    value=_value(cells["value"], options.decimal_comma),
                    unit=cells["unit"],
                    observed_at=_observed_at(cells["observed_at"], options.date_format, now),
                )
            except ValueError as error:
                group.refusals.append(f"line {line}: {error}")
                continue
            group.rows.append(row)
    except csv.Error as error:
        parsed.error = f"line {reader.line_num}: unreadable CSV ({error})."
        parsed.groups, parsed.refusals = [], []
        return parsed
    parsed.groups = list(groups.values())
    return parsed


def read_csv(path: Path, options: CsvOptions | None = None, *, now: datetime | None = None) -> CsvFile:
    return parse_csv(path.read_bytes(), name=path.name, options=options, now=now or timezone.now())


# --- Storing -------------------------------------------------------------------------------------------------


def _entries(group: CsvGroup, lookup: Lookup) -> list[ResultEntry]:
    first = group.lines[0]
    specimen = lookup.specimen(group.accession)
    if specimen is None:
        raise _RefusedError([f"line {first}: unknown accession {group.accession!r}."])
    if specimen.patient.mrn != group.mrn:
        raise _RefusedError([f"line {first}: the specimen {group.accession} belongs to another patient (mrn)."])
    reasons = [f"line {row.line}: unknown test code (loinc) {row.loinc!r}." for row in group.rows
               if row.loinc not in lookup.tests]  # fmt: skip
    if reasons:
        raise _RefusedError(reasons)
    return [ResultEntry(specimen, lookup.tests[r.loinc], r.value, r.unit, r.observed_at) for r in group.rows]


def _reasons(problem: ValidationError | Conflict, rows: Sequence[CsvRow]) -> list[str]:
    """build_results' errors ("results[2].value": …) as line-numbered reasons."""
    if isinstance(problem, ValidationError) and hasattr(problem, "error_dict"):
        reasons = []
        for key, messages in problem.message_dict.items():
            match = _INDEXED_FIELD.fullmatch(key)
            index, name = (int(match[1]), match[2]) if match else (0, key)
            line = rows[index].line if index < len(rows) else rows[0].line
            reasons.append(f"line {line}: {_FIELD_COLUMNS.get(name, name)}: {' '.join(messages)}")
        return reasons
    text = " ".join(problem.messages) if isinstance(problem, ValidationError) else str(problem)
    return [f"line {', '.join(str(r.line) for r in rows)}: {text}"]


def _refuse(report: CsvReport, group: CsvGroup, reasons: list[str]) -> None:
    report.specimens_refused += 1
    suffix = f" Specimen {group.accession} not stored (lines {', '.join(map(str, group.lines))})."
    report.refusals += [reason + (suffix if len(group.lines) > 1 else "") for reason in reasons]


def import_csv_groups(
    groups: Sequence[CsvGroup], *, user: User, now: datetime, lookup: Lookup, report: CsvReport
) -> None:
    """Store each specimen's rows all or nothing, the stored ones in one transaction; add to ``report``."""
    lookup.prefetch(accessions=[g.accession for g in groups])
    batches: list[tuple[CsvGroup, list[ResultEntry]]] = []
    for group in groups:
        try:
            entries = _entries(group, lookup)
        except _RefusedError as refused:
            _refuse(report, group, sorted(group.refusals + refused.reasons, key=_line_order))
            continue
        if group.refusals:
            _refuse(report, group, group.refusals)
        else:
            batches.append((group, entries))
    context = entry_context([e for _, batch in batches for e in batch], lookup.catalogue)
    built: list[tuple[CsvGroup, list[Result]]] = []
    for group, batch in batches:
        try:
            built.append((group, build_results(batch, context=context, user=user, now=now, source=ResultSource.CSV)))
        except (ValidationError, Conflict) as problem:
            _refuse(report, group, _reasons(problem, group.rows))
    try:
        with transaction.atomic():
            results_store([r for _, rows in built for r in rows])
        stored = built
    except DatabaseError:  # e.g. a result stored meanwhile by another import: retry specimen by specimen
        stored = []
        for group, rows in built:
            try:
                with transaction.atomic():
                    results_store(rows)
                stored.append((group, rows))
            except DatabaseError as error:
                _refuse(report, group, [f"line {group.lines[0]}: not stored ({type(error).__name__})."])
    for group, rows in stored:
        report.specimens_stored += 1
        report.stored += [StoredLine(row.line, group.accession, r) for row, r in zip(group.rows, rows, strict=True)]


def import_csv(
    path: Path,
    *,
    user: User,
    now: datetime,
    options: CsvOptions | None = None,
    lookup: Lookup | None = None,
    dry_run: bool = False,
    chunk: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> CsvReport:
    """Import one CSV file (see the module's docstring for the format and the transaction policy).

    ``progress(done, total)`` is called after each chunk of specimens. Never raises for bad content."""
    lookup = lookup or Lookup()
    report = CsvReport(path.name, dry_run=dry_run)
    try:
        data = path.read_bytes()
    except OSError as error:
        report.refusals.append(f"file: cannot be read ({error.strerror or error}).")
        report.file_refused = True
        return report
    parsed = parse_csv(data, name=path.name, options=options, now=now)
    if parsed.error:
        report.refusals.append(f"file: {parsed.error} Nothing stored from this file.")
        report.file_refused = True
        return report
    report.refusals += parsed.refusals
    report.lines_refused = len(parsed.refusals)
    with transaction.atomic() if dry_run else nullcontext():
        for start in range(0, len(parsed.groups), chunk):
            groups = parsed.groups[start : start + chunk]
            import_csv_groups(groups, user=user, now=now, lookup=lookup, report=report)
            if progress is not None:
                progress(start + len(groups), len(parsed.groups))
        if dry_run:
            transaction.set_rollback(True)
    report.refusals.sort(key=_line_order)
    report.stored.sort(key=lambda s: s.line)
    return report


def _line_order(reason: str) -> tuple[int, int]:
    match = re.search(r"line (\d+)", reason)
    return (0, 0) if reason.startswith("file:") else (1, int(match[1]) if match else 0)
