import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labflow.settings")

app = Celery("labflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_sweeps(sender: Celery, **_: object) -> None:
    from django.conf import settings

    interval = settings.SWEEP_INTERVAL_SECONDS
    # Expire stale ticks: a late sweep is replaced by the next one, never queued up.
    options = {"expires": interval}
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
