"""Import result files: HL7 v2 ORU^R01 (one or many messages per file) or CSV."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pghistory
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from results.csv_import import CsvOptions, import_csv
from results.importing import Lookup, hl7_messages, import_oru_messages, interface_user

CHUNK = 500  # messages or specimens stored per transaction


class Command(BaseCommand):
    help = "Import results from HL7 v2 (ORU^R01) or CSV files; each message or specimen is all or nothing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--user", default="lis-interface", help="account the results are entered by")
        parser.add_argument("--no-progress", action="store_true")
        csv = parser.add_argument_group("CSV files", "see results/csv_import.py for the format")
        csv.add_argument("--encoding", default="", help="encoding of CSV files (default: UTF-8, with or without BOM)")
        csv.add_argument("--decimal-comma", action="store_true", help="CSV values use a decimal comma (5,2)")
        csv.add_argument("--date-format", default="", help="strptime format of observed_at (default: ISO 8601)")
        csv.add_argument("--dry-run", action="store_true", help="CSV only: report what would be stored, store nothing")

    def handle(self, *args: Any, files: list[Path], dry_run: bool, **options: Any) -> None:
        if dry_run and any(path.suffix.lower() != ".csv" for path in files):
            raise CommandError("--dry-run is for CSV files only.")
        with transaction.atomic() if dry_run else nullcontext():  # a dry run rolls back, the account too
            self._import(*args, files=files, dry_run=dry_run, **options)
            if dry_run:
                transaction.set_rollback(True)

    def _import_csv(self, path: Path, *, account: User, lookup: Lookup, options: CsvOptions, dry_run: bool,
                    no_progress: bool) -> tuple[int, int]:  # fmt: skip
        """One CSV file: (results stored, specimens or lines refused); refusals to stderr with line numbers."""
        with tqdm(desc=path.name, unit="specimen", disable=no_progress) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = import_csv(path, user=account, now=timezone.now(), options=options, lookup=lookup,
                                dry_run=dry_run, chunk=CHUNK, progress=progress)  # fmt: skip
        for line in report.stored if dry_run else ():
            self.stdout.write(f"{path.name}: would store {line.describe()}")
        for reason in report.refusals:
            self.stderr.write(f"{path.name}: refused: {reason}")
        return len(report.stored), report.refused

    def _import(self, *args: Any, files: list[Path], user: str, no_progress: bool, dry_run: bool, encoding: str,
                decimal_comma: bool, date_format: str, **_: Any) -> None:  # fmt: skip
        account = interface_user(user)
        csv_options = CsvOptions(encoding=encoding, decimal_comma=decimal_comma, date_format=date_format)
        lookup = Lookup()
        stored = refused = 0
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            if path.suffix.lower() == ".csv":
                with pghistory.context(import_file=path.name):
                    count, refusals = self._import_csv(path, account=account, lookup=lookup, options=csv_options,
                                                       dry_run=dry_run, no_progress=no_progress)  # fmt: skip
                stored += count
                refused += refusals
                continue
            items: list[Any] = hl7_messages(path)
            with (
                pghistory.context(import_file=path.name),
                tqdm(total=len(items), desc=path.name, unit="msg", disable=no_progress) as bar,
            ):
                for start in range(0, len(items), CHUNK):
                    chunk = items[start : start + CHUNK]
                    outcomes = import_oru_messages(chunk, user=account, now=timezone.now(), lookup=lookup)
                    count = sum(o.stored for o in outcomes)
                    reasons = [o.error for o in outcomes if o.error]
                    stored += count
                    refused += len(reasons)
                    for reason in reasons:
                        self.stderr.write(f"{path.name}: refused: {reason}")
                    bar.update(len(chunk))
        done = "Dry run, nothing stored: would store" if dry_run else "Stored"
        self.stdout.write(f"{done} {stored} results; refused {refused} messages or specimens.")
