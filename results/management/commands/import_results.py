"""Import result files: HL7 v2 ORU^R01 (one or many messages per file) or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pghistory
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from labflow.errors import Conflict
from results.importing import Lookup, hl7_messages, import_csv_group, import_oru_message, interface_user, read_csv


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
            with pghistory.context(import_file=path.name):
                if path.suffix.lower() == ".csv":
                    groups = list(read_csv(path))
                    lookup.prefetch(g.accession for g in groups)
                    for group in tqdm(groups, desc=path.name, unit="specimen", disable=no_progress):
                        try:
                            stored += import_csv_group(group, user=account, now=timezone.now(), lookup=lookup)
                        except (ValidationError, Conflict) as error:
                            refused += 1
                            self.stderr.write(f"{path.name}: {' '.join(getattr(error, 'messages', [str(error)]))}")
                else:
                    for message in tqdm(hl7_messages(path), desc=path.name, unit="msg", disable=no_progress):
                        outcome = import_oru_message(message, user=account, now=timezone.now(), lookup=lookup)
                        stored += outcome.stored
                        if outcome.error:
                            refused += 1
                            self.stderr.write(f"{path.name}: refused: {outcome.error}")
        self.stdout.write(f"Stored {stored} results; refused {refused} messages or specimens.")
