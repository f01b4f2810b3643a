from __future__ import annotations

import logging

import pghistory
from celery import shared_task

from alerts.services import alerts_escalate_unacknowledged

logger = logging.getLogger(__name__)


@shared_task(name="alerts.escalate_open_alerts", ignore_result=True)
def escalate_open_alerts() -> int:
    with pghistory.context(task="alerts.escalate_open_alerts"):
        escalated = alerts_escalate_unacknowledged()
    if escalated:
        logger.info("escalated %d unacknowledged alerts", len(escalated))
    return len(escalated)
