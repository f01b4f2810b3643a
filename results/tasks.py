from __future__ import annotations

import logging

import pghistory
from celery import shared_task

from results.outbox import outbox_deliver

logger = logging.getLogger(__name__)


@shared_task(name="results.deliver_outbound_messages", ignore_result=True)
def deliver_outbound_messages() -> int:
    """Send the due ORU^R01 messages (results/outbox.py); beat runs it every HL7_OUTBOUND_INTERVAL_SECONDS."""
    with pghistory.context(task="results.deliver_outbound_messages"):
        report = outbox_deliver()
    if report.sent or report.refused or report.failed:
        logger.info("results out: %d sent, %d refused, %d failed", report.sent, report.refused, report.failed)
    return report.sent
