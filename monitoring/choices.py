from django.db import models


class MonitoringTestStatus(models.TextChoices):
    """Two stages: a specimen is collected by `deadline`, then resulted by `result_deadline`."""

    SCHEDULED = "scheduled", "Scheduled"
    OVERDUE = "overdue", "Collection overdue"
    COLLECTED = "collected", "Collected, awaiting result"
    RESULT_OVERDUE = "result_overdue", "Result overdue"
    SATISFIED = "satisfied", "Satisfied"
    RECOLLECT = "recollect", "Specimen rejected, recollection scheduled"
    CANCELLED = "cancelled", "Cancelled"


AWAITING_COLLECTION = (MonitoringTestStatus.SCHEDULED, MonitoringTestStatus.OVERDUE)
AWAITING_RESULT = (MonitoringTestStatus.COLLECTED, MonitoringTestStatus.RESULT_OVERDUE)
