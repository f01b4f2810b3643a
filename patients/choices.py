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
