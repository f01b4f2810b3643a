from django.db import models


class Sex(models.TextChoices):
    # HL7 v2 table 0001 (administrative sex)
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class CareTeamRole(models.TextChoices):
    ONCOLOGIST = "oncologist", "Oncologist"
    NURSE = "nurse", "Nurse"
    # Rungs of the escalation ladder: people an unanswered alert reaches next.
    CHARGE_NURSE = "charge_nurse", "Charge nurse"
    COVERING_ONCOLOGIST = "covering_oncologist", "Covering oncologist"
    ATTENDING = "attending", "Attending physician"
