from django.db import models


class MonitoringTestStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    OVERDUE = "overdue", "Overdue"
    SATISFIED = "satisfied", "Satisfied"
    CANCELLED = "cancelled", "Cancelled"
