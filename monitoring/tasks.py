from __future__ import annotations

import logging

import pghistory
from celery import shared_task

from monitoring.services import monitoring_tests_flag_overdue, sweep_heartbeat_record

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.sweep_overdue_tests", ignore_result=True)
def sweep_overdue_tests() -> int:
    with pghistory.context(task="monitoring.sweep_overdue_tests"):
        alert_ids = monitoring_tests_flag_overdue()
        sweep_heartbeat_record(name="overdue_sweep", flagged=len(alert_ids))
    if alert_ids:
        logger.info("overdue sweep raised %d alerts", len(alert_ids))
    return len(alert_ids)
