"""Logging without patient data (docs/architecture.md §5 Operations, "No patient data in … logs").

LabFlow's own log calls name ids and counts only; this filter is the second line: it rewrites whatever a library
or an exception message might carry (an HL7 PID segment, `mrn=…`, PostgreSQL's `Key (mrn)=(…)` and `Failing row
contains (…)`, a patient's `FAMILY, Given (MRN)`) before the handler formats the record. The patterns look for
patient data by its context: a bare token shaped like an MRN is left alone, since message control ids and
accession numbers look the same and operators need them. It imports nothing of Django so that logging can be
configured before the apps load.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable

import pythonjsonlogger.json

REDACTED = "[redacted]"

# Attributes every LogRecord has: anything else came in through `extra=` and is checked too.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Field names whose values are patient data wherever they appear (`extra=` keys, key=value text).
PATIENT_FIELDS = (
    "mrn",
    "family_name",
    "given_name",
    "patient_name",
    "birth_date",
    "date_of_birth",
    "dob",
    "wristband",
)


def _patient_str(match: re.Match[str]) -> str:
    """Keep the words before the upper-case family name (the log's own text), redact the rest."""
    words = match.group(1).split(" ")
    keep = len(words)
    while keep > 0 and words[keep - 1].isupper():
        keep -= 1
    if keep == len(words):  # no upper-case family name at the end: redact it all, the safe side
        keep = 0
    return " ".join([*words[:keep], REDACTED])


_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # HL7 v2 segments about the person: everything after the segment id.
    (re.compile(r"\b(PID|PD1|NK1|PV1|PV2|GT1|IN1|IN2)\|[^\r\n]*"), rf"\1|{REDACTED}"),
    # PostgreSQL's constraint details: Key (mrn)=(T0001234) already exists; Failing row contains (…, names, …).
    (re.compile(r"(Key \([^)]*\)=\()[^)]*(\))"), rf"\1{REDACTED}\2"),
    (re.compile(r"(Failing row contains \().*"), rf"\1{REDACTED})"),
    # key=value, key: value, 'key': 'value' for the patient fields.
    (
        re.compile(
            r"""(['"]?\b(?:""" + "|".join(PATIENT_FIELDS) + r""")\b['"]?\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s,;)}\]]+)""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # Patient.__str__: FAMILY, Given (MRN), in any script (the words before the comma: see _patient_str).
    (re.compile(r"\b([^\W_][\w'\u2019 .-]{0,60}), [^(),\n]{1,80} \([A-Z0-9-]{4,20}\)"), _patient_str),
    # "MRN T0001234" in prose.
    (re.compile(r"\b((?i:mrn)\s+)(?=[A-Z0-9-]*[0-9])[A-Z0-9-]{4,20}\b"), rf"\1{REDACTED}"),
)


def redact(text: str) -> str:
    """The text with patient data replaced by [redacted]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactPatientData(logging.Filter):
    """A handler filter: formats the record's message, exception and stack itself and redacts them, and redacts
    extra fields, so that no formatter (plain or JSON) sees the raw text. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is rather than lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if isinstance(record.exc_text, str):
            # logging.Formatter prints exc_text when set; JsonFormatter below does too.
            record.exc_text = redact(record.exc_text)
        if isinstance(record.stack_info, str):
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key in _RECORD_ATTRIBUTES:
                continue
            if key.lower() in PATIENT_FIELDS:
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """python-json-logger's formatter, printing the redacted traceback (exc_text) rather than formatting the
    exception again from exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        exc_info = record.exc_info
        if record.exc_text:
            record.exc_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info
