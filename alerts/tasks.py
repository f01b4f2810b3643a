from __future__ import annotations

import logging

import pghistory
from celery import shared_task
from django.conf import settings

from alerts.push import publish_released
from alerts.services import alerts_escalate_unacknowledged

logger = logging.getLogger(__name__)


@shared_task(name="alerts.escalate_open_alerts", ignore_result=True)
def escalate_open_alerts() -> int:
    with pghistory.context(task="alerts.escalate_open_alerts"):
        escalated = alerts_escalate_unacknowledged()
    if escalated:
        logger.info("escalated %d unacknowledged alerts", len(escalated))
    # Holds end without a write: tell the pushed screens (two intervals, so one late tick loses nothing).
    publish_released(since_seconds=2 * settings.SWEEP_INTERVAL_SECONDS)
    return len(escalated)
