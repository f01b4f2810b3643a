from django.db import models


class DoseBasis(models.TextChoices):
    FLAT = "flat", "Flat dose (mg)"
    PER_KG = "mg_per_kg", "mg/kg"
    PER_M2 = "mg_per_m2", "mg/m²"


class RuleKind(models.TextChoices):
    PRE_DOSE = "pre_dose", "Before each dose (within the window)"
    EVERY_NTH_DOSE = "every_nth_dose", "Before every n-th dose"
    EVERY_N_DAYS = "every_n_days", "Every n days while on therapy"
    DAILY_AFTER_INFUSION = "daily_after_infusion", "Daily from day a to day b after the infusion"


class Comparator(models.TextChoices):
    GREATER = "gt", ">"
    LESS = "lt", "<"


class Reference(models.TextChoices):
    ABSOLUTE = "absolute", "the value itself"
    ULN = "uln", "x ULN"
    LLN = "lln", "x LLN"


class CourseStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"


class DoseStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    GIVEN = "given", "Given"
    CANCELLED = "cancelled", "Cancelled"


class GateVerdict(models.TextChoices):
    CLEARED = "cleared", "Cleared"
    BLOCKED = "blocked", "Blocked"
    OVERRIDDEN = "overridden", "Overridden"


class PreparationStatus(models.TextChoices):
    ORDERED = "ordered", "Ordered"
    IN_PREPARATION = "in_preparation", "In preparation"
    AWAITING_VERIFICATION = "awaiting_verification", "Awaiting verification"
    REJECTED = "rejected", "Rejected (re-prepare)"
    RELEASED = "released", "Released"
    ADMINISTERED = "administered", "Administered"
    EXPIRED = "expired", "Expired"
    WASTED = "wasted", "Wasted"


class CompoundingCategory(models.TextChoices):
    IMMEDIATE = "immediate", "Immediate use"
    CATEGORY_1 = "category_1", "Category 1"
    CATEGORY_2 = "category_2", "Category 2"


class Storage(models.TextChoices):
    ROOM = "room", "Room temperature"
    REFRIGERATED = "refrigerated", "Refrigerated 2-8 °C"


class ComponentKind(models.TextChoices):
    VIAL = "vial", "Drug vial"
    DILUENT = "diluent", "Diluent"


class VerificationMethod(models.TextChoices):
    GRAVIMETRIC = "gravimetric", "Gravimetric (g)"
    VOLUMETRIC = "volumetric", "Volumetric (mL)"


class CoiStep(models.TextChoices):
    # CAR-T chain of identity, in order
    COLLECTION = "collection", "Leukapheresis collection"
    SHIPMENT = "shipment", "Shipment to manufacturer"
    RECEIPT = "receipt", "Receipt of the product"
    THAW = "thaw", "Thaw"
    BEDSIDE = "bedside", "Bedside check"


COI_ORDER = list(CoiStep)
