"""Receive ORU^R01 results over MLLP and answer each with an ACK."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pghistory
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from results.importing import Lookup, import_hl7_frame, interface_user
from results.mllp import serve

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Listen for HL7 v2 ORU^R01 results (single messages or FHS/BHS batches) over MLLP and store them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--user", default="lis-interface", help="account the results are entered by")

    def handle(self, *args: Any, host: str, port: int, user: str, **_: Any) -> None:
        account = interface_user(user)
        lock = threading.Lock()  # one message at a time keeps the catalogue cache simple and ordering stable

        def handler(text: str) -> str:
            with lock:
                close_old_connections()
                with pghistory.context(interface="mllp"):
                    reply, stored = import_hl7_frame(text, user=account, now=timezone.now(), lookup=Lookup())
                # Counts only: no patient data in logs.
                logger.info("ORU stored %d results", stored)
                return reply

        ready = threading.Event()
        bound: list[tuple[str, int]] = []
        threading.Thread(target=lambda: ready.wait() and self.stdout.write(f"MLLP listening on {bound[0]}"),
                         daemon=True).start()  # fmt: skip
        serve(host, port, handler, ready=ready, bound=bound)
