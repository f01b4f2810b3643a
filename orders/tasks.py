from __future__ import annotations

import logging

import pghistory
from celery import shared_task
from django.utils import timezone

from orders.services.preparations import preparations_expire

logger = logging.getLogger(__name__)


@shared_task(name="orders.expire_preparations", ignore_result=True)
def expire_preparations() -> int:
    with pghistory.context(task="orders.expire_preparations"):
        expired = preparations_expire(now=timezone.now())
    if expired:
        logger.info("expired %d released preparations past their beyond-use time", len(expired))
    return len(expired)
