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


class LabTestKind(models.TextChoices):
    """What doing a test takes: a specimen drawn and resulted by the lab, or a bedside assessment that is done
    when it is recorded (CRS/ICANS grading; docs/architecture.md §4a). Bedside tests are never collected,
    labelled or resulted, so they never reach the collection list, a tube or the lab's worklists."""

    SPECIMEN = "specimen", "Specimen (collected and resulted by the lab)"
    BEDSIDE_ASSESSMENT = "bedside_assessment", "Bedside assessment (done when recorded)"
