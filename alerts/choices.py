from django.db import models


class AlertKind(models.TextChoices):
    COLLECTION_OVERDUE = "collection_overdue", "Collection overdue"
    RESULT_OVERDUE = "result_overdue", "Result overdue"
    SPECIMEN_REJECTED = "specimen_rejected", "Specimen rejected"
    CRITICAL_RESULT = "critical_result", "Critical result"
    TOXICITY = "toxicity", "CTCAE grade 3 or higher"
    RESULT_AMENDED = "result_amended", "Result amended"
    PREPARATION_EXPIRED = "preparation_expired", "Preparation expired"
    DOSE_DISCONTINUE = "dose_discontinue", "Dose: permanent discontinuation rule met"
    LAB_PATTERN = "lab_pattern", "Lab pattern rule met"
    CRS = "crs", "Cytokine release syndrome (ASTCT grade)"
    ICANS = "icans", "ICANS neurotoxicity (ASTCT grade)"
    ASSESSMENT_OVERDUE = "assessment_overdue", "CRS/ICANS assessment overdue"


class AlertAudience(models.TextChoices):
    """Who an alert is for: the care-team roles in AUDIENCE_ROLES, or the laboratory."""

    CARE_TEAM = "care_team", "Care team"
    NURSES = "nurses", "Nurses"
    ONCOLOGISTS = "oncologists", "Oncologists"
    LAB = "lab", "Laboratory"


class AlertSeverity(models.IntegerChoices):
    LOW = 1, "Low"
    MODERATE = 2, "Moderate"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class ResolutionReason(models.TextChoices):
    MANUAL = "manual", "Resolved by a user"
    SPECIMEN_COLLECTED = "specimen_collected", "Specimen collected"
    TEST_CANCELLED = "test_cancelled", "Monitoring test cancelled"
    SPECIMEN_REJECTED = "specimen_rejected", "Specimen rejected, recollection scheduled"
    RECOLLECTED = "recollected", "Specimen recollected"
    RESULT_VERIFIED = "result_verified", "Verified result reported"
    RESULT_REVIEWED = "result_reviewed", "Result reviewed"
    RESULT_RETRACTED = "result_retracted", "Result retracted by the lab"
    ASSESSMENT_RECORDED = "assessment_recorded", "Bedside assessment recorded"
