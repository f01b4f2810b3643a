from django.db import models


class Role(models.TextChoices):
    """Roles are Django groups; the group name is the label."""

    LAB_TECHNICIAN = "lab_technician", "Lab technician"
    ONCOLOGIST = "oncologist", "Oncologist"
    NURSE = "nurse", "Nurse"
