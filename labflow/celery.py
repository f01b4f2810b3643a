"""The Celery app, its beat schedule, and how worker and beat ride out a broker outage.

Redis is a broker, never the only home of anything (docs/architecture.md §5): the sweeps are level-triggered,
so a tick lost while Redis is down only delays an alert. What matters is how soon alerts flow again once Redis
is back (§6: within 5 s), so:

- every reconnect, the worker's included, waits at most `interval_max` of `CELERY_BROKER_TRANSPORT_OPTIONS`
  between attempts (kombu applies those intervals to its own reconnects; Celery's consumer passes kombu's
  default back-off of up to 30 s, which `Connection` replaces) and retries forever;
- beat keeps a task it could not send due and tries it again after `Scheduler.retry_seconds`, logging one line
  per failed send instead of a traceback.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kombu
import kombu.exceptions
from celery import Celery
from celery.app.amqp import AMQP as CeleryAMQP
from celery.beat import PersistentScheduler, ScheduleEntry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labflow.settings")

logger = logging.getLogger(__name__)

RECONNECT_INTERVALS = ("interval_start", "interval_step", "interval_max")
BROKER_UNREACHABLE = (kombu.exceptions.OperationalError, RedisConnectionError, RedisTimeoutError, OSError)


class Connection(kombu.Connection):
    """A broker connection whose every reconnect loop uses the transport options' intervals."""

    def ensure_connection(self, *args: Any, **kwargs: Any) -> Connection:
        options = self.transport_options or {}
        if len(args) <= 2:  # (errback, max_retries): the intervals are not given positionally
            for name in RECONNECT_INTERVALS:
                if name in options:
                    kwargs.setdefault(name, options[name])
        super().ensure_connection(*args, **kwargs)
        return self


class AMQP(CeleryAMQP):
    Connection = Connection


def broker_unreachable(error: BaseException | None) -> bool:
    """Whether `error`, or an exception it was raised from, is a failure to reach the broker."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, BROKER_UNREACHABLE):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class Scheduler(PersistentScheduler):
    """Beat's scheduler: a send that cannot reach the broker is one log line, and the task stays due."""

    retry_seconds = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._unsent: list[ScheduleEntry] = []
        super().__init__(*args, **kwargs)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as error:
            if not broker_unreachable(error):
                logger.exception("beat: %s not sent", entry.name)
                return
            logger.warning(
                "beat: %s not sent, broker unreachable (%s); trying again in %.0f s",
                entry.name,
                " ".join(str(error).split()),
                self.retry_seconds,
            )
            self._unsent.append(entry)
        else:
            logger.info("Scheduler: Sent due task %s (%s)", entry.name, entry.task)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self._unsent = []
        delay: float = super().tick(*args, **kwargs)
        if not self._unsent:
            return delay
        # tick() already moved the entry to its next run; put the unsent one back, still due, and rebuild the
        # heap from the schedule so the next tick sends it again.
        self.schedule.update({entry.name: entry for entry in self._unsent if entry.name})
        self._heap = None
        return self.retry_seconds


app = Celery("labflow", amqp="labflow.celery:AMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweeps(sender: Celery, **_: object) -> None:
    from django.conf import settings

    interval = settings.SWEEP_INTERVAL_SECONDS
    # Expire stale ticks: a late sweep is replaced by the next one, never queued up. At least 5 s, so a worker
    # clock a little ahead of beat's does not expire every 1 s tick.
    options = {"expires": max(interval, 5.0)}
    sender.add_periodic_task(
        interval, sender.signature("monitoring.sweep_overdue_tests"), name="overdue sweep", options=options
    )
    sender.add_periodic_task(
        interval, sender.signature("alerts.escalate_open_alerts"), name="alert escalation", options=options
    )
    expiry = settings.PREPARATION_EXPIRY_INTERVAL_SECONDS
    sender.add_periodic_task(
        expiry, sender.signature("orders.expire_preparations"), name="preparation expiry", options={"expires": expiry}
    )
    outbound = settings.HL7_OUTBOUND_INTERVAL_SECONDS
    sender.add_periodic_task(
        outbound, sender.signature("results.deliver_outbound_messages"), name="results out (ORU^R01)",
        options={"expires": max(outbound, 5.0)},
    )  # fmt: skip
