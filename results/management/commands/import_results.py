"""Import result files: HL7 v2 ORU^R01 (one or many messages per file) or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pghistory
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from results.importing import Lookup, hl7_messages, import_csv_groups, import_oru_messages, interface_user, read_csv

CHUNK = 500  # messages or specimens stored per transaction


class Command(BaseCommand):
    help = "Import results from HL7 v2 (ORU^R01) or CSV files; each message or specimen is all or nothing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--user", default="lis-interface", help="account the results are entered by")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, files: list[Path], user: str, no_progress: bool, **_: Any) -> None:
        account = interface_user(user)
        lookup = Lookup()
        stored = refused = 0
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            csv = path.suffix.lower() == ".csv"
            items: list[Any] = list(read_csv(path)) if csv else hl7_messages(path)
            with (
                pghistory.context(import_file=path.name),
                tqdm(total=len(items), desc=path.name, unit="specimen" if csv else "msg", disable=no_progress) as bar,
            ):
                for start in range(0, len(items), CHUNK):
                    chunk = items[start : start + CHUNK]
                    if csv:
                        count, reasons = import_csv_groups(chunk, user=account, now=timezone.now(), lookup=lookup)
                    else:
                        outcomes = import_oru_messages(chunk, user=account, now=timezone.now(), lookup=lookup)
                        count = sum(o.stored for o in outcomes)
                        reasons = [o.error for o in outcomes if o.error]
                    stored += count
                    refused += len(reasons)
                    for reason in reasons:
                        self.stderr.write(f"{path.name}: refused: {reason}")
                    bar.update(len(chunk))
        self.stdout.write(f"Stored {stored} results; refused {refused} messages or specimens.")
