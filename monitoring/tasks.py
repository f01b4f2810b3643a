from __future__ import annotations

import logging

import pghistory
from celery import shared_task

from monitoring.services import monitoring_sweep_run

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.sweep_overdue_tests", ignore_result=True)
def sweep_overdue_tests() -> int:
    with pghistory.context(task="monitoring.sweep_overdue_tests"):
        alert_ids = monitoring_sweep_run(name="overdue_sweep")
    if alert_ids:
        logger.info("overdue sweep raised %d alerts", len(alert_ids))
    return len(alert_ids)
