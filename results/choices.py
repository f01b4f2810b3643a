from django.db import models


class ValueType(models.TextChoices):
    # HL7 v2 table 0125 (OBX-2), the ones LabFlow stores
    NUMERIC = "NM", "Numeric"
    STRUCTURED_NUMERIC = "SN", "Structured numeric (<5, >11.0, ranges, ratios)"
    TEXT = "ST", "Text"
    CODED = "CWE", "Coded (code, system, text)"


class ResultStatus(models.TextChoices):
    PRELIMINARY = "preliminary", "Preliminary"
    FINAL = "final", "Final (verified)"
    AMENDED = "amended", "Amended (verified)"
    RETRACTED = "retracted", "Retracted by the lab (not valid)"
    NOT_OBTAINED = "not_obtained", "Cannot be obtained"


VERIFIED = (ResultStatus.FINAL, ResultStatus.AMENDED)


class ResultFlag(models.TextChoices):
    # HL7 v2 table 0078 (abnormal flags)
    NORMAL = "N", "Normal"
    LOW = "L", "Low"
    HIGH = "H", "High"
    CRITICAL_LOW = "LL", "Critically low"
    CRITICAL_HIGH = "HH", "Critically high"
    NONE = "", "Not flagged"
    ABNORMAL = "A", "Abnormal"  # a coded or qualitative answer the catalogue marks abnormal


CRITICAL_FLAGS = (ResultFlag.CRITICAL_LOW.value, ResultFlag.CRITICAL_HIGH.value)


class ResultSource(models.TextChoices):
    MANUAL = "manual", "Entered"
    HL7 = "hl7", "HL7 v2"
    CSV = "csv", "CSV file"


class Sex(models.TextChoices):
    ANY = "", "Any"
    FEMALE = "F", "Female"
    MALE = "M", "Male"


class Comparator(models.TextChoices):
    # HL7 v2 SN.1 for censored values ("<5", ">11.0")
    NONE = "", "="
    LESS = "<", "<"
    LESS_EQUAL = "<=", "<="
    GREATER = ">", ">"
    GREATER_EQUAL = ">=", ">="


class MessageOutcome(models.TextChoices):
    ACCEPTED = "AA", "Accepted"
    ERROR = "AE", "Error"
    REJECTED = "AR", "Rejected"


#: OBX-11 statuses (HL7 table 0085) that carry a result value to store.
LAB_RESULT_STATUSES = frozenset("FPCRSU")
#: OBX-11 W (wrong: posted in error) and D (delete): the earlier result is retracted.
LAB_RETRACT_STATUSES = frozenset("WD")
#: OBX-11 X: results cannot be obtained for this observation.
LAB_NOT_OBTAINED = "X"
#: OBX-11 statuses of a result the laboratory itself has not finalised (HL7 0085: preliminary, entered not
#: verified, partial, pending): LabFlow verifies the final report when it arrives, never these.
LAB_NOT_FINAL = frozenset("PRSI")


class OutboundStatus(models.TextChoices):
    """An outbound HL7 message's delivery (results/outbox.py): pending until the receiver accepts it (AA/CA)."""

    PENDING = "pending", "Pending"
    SENT = "sent", "Sent (accepted)"
    ERROR = "error", "Error (refused by the receiver)"
