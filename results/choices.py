from django.db import models


class ValueType(models.TextChoices):
    # HL7 v2 table 0125 (OBX-2), the ones LabFlow stores
    NUMERIC = "NM", "Numeric"
    TEXT = "ST", "Text"


class ResultStatus(models.TextChoices):
    PRELIMINARY = "preliminary", "Preliminary"
    FINAL = "final", "Final (verified)"
    AMENDED = "amended", "Amended (verified)"


VERIFIED = (ResultStatus.FINAL, ResultStatus.AMENDED)


class ResultFlag(models.TextChoices):
    # HL7 v2 table 0078 (abnormal flags)
    NORMAL = "N", "Normal"
    LOW = "L", "Low"
    HIGH = "H", "High"
    CRITICAL_LOW = "LL", "Critically low"
    CRITICAL_HIGH = "HH", "Critically high"
    NONE = "", "Not flagged"


class ResultSource(models.TextChoices):
    MANUAL = "manual", "Entered"
    HL7 = "hl7", "HL7 v2"
    CSV = "csv", "CSV file"


class Sex(models.TextChoices):
    ANY = "", "Any"
    FEMALE = "F", "Female"
    MALE = "M", "Male"
