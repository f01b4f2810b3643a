from django.db import models


class SpecimenType(models.TextChoices):
    # HL7 v2 table 0487 (specimen type), the ones a monitoring panel draws
    WHOLE_BLOOD = "BLD", "Whole blood"
    SERUM = "SER", "Serum"
    PLASMA = "PLAS", "Plasma"


class SpecimenStatus(models.TextChoices):
    COLLECTED = "collected", "Collected"
    IN_TRANSIT = "in_transit", "In transit"
    RECEIVED = "received", "Received"
    STORED = "stored", "Stored"
    REJECTED = "rejected", "Rejected"
    DISPOSED = "disposed", "Disposed"


class SpecimenCondition(models.TextChoices):
    # HL7 v2 table 0493 (specimen condition)
    AUT = "AUT", "Autolyzed"
    CLOT = "CLOT", "Clotted"
    CON = "CON", "Contaminated"
    COOL = "COOL", "Cool"
    FROZ = "FROZ", "Frozen"
    HEM = "HEM", "Hemolyzed"
    LIVE = "LIVE", "Live"
    ROOM = "ROOM", "Room temperature"
    SNR = "SNR", "Sample not received"


class RejectionReason(models.TextChoices):
    # HL7 v2 table 0490 (specimen reject reason)
    EX = "EX", "Expired / past stability"
    QS = "QS", "Quantity not sufficient"
    RA = "RA", "Missing patient ID number"
    RB = "RB", "Broken container"
    RC = "RC", "Clotting"
    RD = "RD", "Missing collection date"
    RE = "RE", "Missing patient name"
    RH = "RH", "Hemolysis"
    RI = "RI", "Identification problem"
    RM = "RM", "Labeling"
    RN = "RN", "Contamination"
    RP = "RP", "Missing phlebotomist ID"
    RR = "RR", "Improper storage"


class CustodyEventKind(models.TextChoices):
    COLLECTED = "collected", "Collected"
    LABEL_PRINTED = "label_printed", "Label printed"
    LABEL_REPRINTED = "label_reprinted", "Label reprinted"
    IN_TRANSIT = "in_transit", "In transit"
    RECEIVED = "received", "Received"
    ALIQUOTED = "aliquoted", "Aliquoted"
    STORED = "stored", "Stored"
    REJECTED = "rejected", "Rejected"
    DISPOSED = "disposed", "Disposed"


# Custody steps a user records directly; the others come with collect, receive, reject, print.
MANUAL_CUSTODY_KINDS = (
    CustodyEventKind.IN_TRANSIT,
    CustodyEventKind.ALIQUOTED,
    CustodyEventKind.STORED,
    CustodyEventKind.DISPOSED,
)
