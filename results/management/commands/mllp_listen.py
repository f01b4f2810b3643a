"""Receive ORU^R01 results and the ADT patient feed over MLLP (routed by MSH-9) and answer each with an ACK."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pghistory
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from results.adt import handle_hl7_frame
from results.importing import Lookup, interface_user
from results.mllp import serve

logger = logging.getLogger(__name__)


def frame_handler(account: User) -> Callable[[str], str]:
    """What the listener does with each frame: one at a time, routed by MSH-9 (ORU to results, ADT to the patient
    register), under the pghistory context ``interface=mllp``."""
    lock = threading.Lock()  # one message at a time keeps the catalogue cache simple and ordering stable

    def handler(text: str) -> str:
        with lock:
            close_old_connections()
            with pghistory.context(interface="mllp"):
                reply, route, stored = handle_hl7_frame(text, user=account, now=timezone.now(), lookup=Lookup())
            # Counts only: no patient data in logs.
            if route == "adt":
                logger.info("ADT applied %d patient events", stored)
            else:
                logger.info("ORU stored %d results", stored)
            return reply

    return handler


class Command(BaseCommand):
    help = (
        "Listen over MLLP for HL7 v2 ORU^R01 results (single messages or FHS/BHS batches) and ADT^A01/A02/A03/A04/"
        "A08/A31/A40 patient events, and store them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--user", default="lis-interface", help="account the results are entered by")

    def handle(self, *args: Any, host: str, port: int, user: str, **_: Any) -> None:
        handler = frame_handler(interface_user(user))
        ready = threading.Event()
        bound: list[tuple[str, int]] = []
        threading.Thread(target=lambda: ready.wait() and self.stdout.write(f"MLLP listening on {bound[0]}"),
                         daemon=True).start()  # fmt: skip
        serve(host, port, handler, ready=ready, bound=bound)
