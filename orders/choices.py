from django.db import models


class DoseBasis(models.TextChoices):
    FLAT = "flat", "Flat dose (mg)"
    PER_KG = "mg_per_kg", "mg/kg"
    PER_M2 = "mg_per_m2", "mg/m²"
    CELLS_PER_KG = "cells_per_kg", "cells/kg (cell product)"
    CELLS_FLAT = "cells_flat", "cells, flat range (cell product)"


CELL_BASES = (DoseBasis.CELLS_PER_KG, DoseBasis.CELLS_FLAT)


class RuleKind(models.TextChoices):
    BASELINE = "baseline", "Baseline, before the first dose"
    PRE_DOSE = "pre_dose", "Before each dose (within the window)"
    EVERY_NTH_DOSE = "every_nth_dose", "Before every n-th dose"
    EVERY_N_DAYS = "every_n_days", "Every n days while on therapy"
    # Kept its value so the rules seeded before the interval existed mean what they did (no interval: daily).
    DAILY_AFTER_INFUSION = (
        "daily_after_infusion",
        "From day a to day b after the infusion, every n days or n hours (empty: daily)",
    )
    AFTER_STEP_UP_DOSE = "after_step_up_dose", "Every n hours during the hospital stay after each step-up dose"


class Comparator(models.TextChoices):
    GREATER = "gt", ">"
    LESS = "lt", "<"


class Reference(models.TextChoices):
    ABSOLUTE = "absolute", "the value itself"
    ULN = "uln", "x ULN"
    LLN = "lln", "x LLN"
    BASELINE = "baseline", "x the patient's baseline"


class HoldAction(models.TextChoices):
    WITHHOLD = "withhold", "Withhold"
    DISCONTINUE = "discontinue", "Permanently discontinue"


class CourseStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"


class DoseStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    GIVEN = "given", "Given"
    CANCELLED = "cancelled", "Cancelled"


class GateVerdict(models.TextChoices):
    CLEARED = "cleared", "Cleared"
    PENDING = "pending", "Pending"  # the gate cannot decide yet: never cleared
    WITHHELD = "withheld", "Withheld"
    DISCONTINUED = "discontinued", "Permanently discontinue"
    BLOCKED = "blocked", "Blocked by a dose limit"
    OVERRIDDEN = "overridden", "Overridden"
    COSIGNED = "cosigned", "Continued by two oncologists"


GATE_OPEN = (GateVerdict.CLEARED, GateVerdict.OVERRIDDEN, GateVerdict.COSIGNED)


class DecisionKind(models.TextChoices):
    OVERRIDE = "override", "Override by an oncologist"
    COSIGNED = "cosigned", "Two-oncologist decision to continue"


class GateCheckPurpose(models.TextChoices):
    START = "start", "Preparation start"
    DECISION = "decision", "Oncologist decision"
    ADMINISTER = "administer", "Bedside"


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
    CELL_PRODUCT = "cell_product", "Cell product: bag identity, integrity, thaw time"


class BiosafetyLevel(models.TextChoices):
    NONE = "", "Not a genetically modified product"
    BSL1 = "BSL-1", "Biosafety level 1"
    BSL2 = "BSL-2", "Biosafety level 2"


class CoiStep(models.TextChoices):
    # CAR-T chain of identity, in order
    COLLECTION = "collection", "Leukapheresis collection"
    SHIPMENT = "shipment", "Shipment to manufacturer"
    RECEIPT = "receipt", "Receipt of the product"
    THAW = "thaw", "Thaw"
    BEDSIDE = "bedside", "Bedside check"


COI_ORDER = list(CoiStep)


class LabPatternChange(models.TextChoices):
    # How a lab pattern condition compares an analyte's verified results within its window
    RISE_FACTOR = "rise_factor", "Rises: latest ÷ lowest in the window ≥ threshold"
    FALL_PERCENT = "fall_percent", "Falls: drop from the highest in the window ≥ threshold %"
    ABOVE = "above", "Latest value above the threshold"
    BELOW = "below", "Latest value below the threshold"


class ExposureKind(models.TextChoices):
    # How someone was exposed to a genetically modified product (T-VEC): docs/clinical-sources.md §11
    NEEDLESTICK = "needlestick", "Needlestick or sharps injury"
    SPLASH_EYE = "splash_eye", "Splash to the eyes or mucous membranes"
    SKIN = "skin", "Contact with skin"
    SPILL = "spill", "Spill (no person reached)"
    OTHER = "other", "Other"


class PremedicationClass(models.TextChoices):
    """What a step-up dose's label asks to be given before it (teclistamab, epcoritamab: all three)."""

    CORTICOSTEROID = "corticosteroid", "Corticosteroid"
    H1_ANTAGONIST = "h1_antagonist", "H1 antagonist"
    ANTIPYRETIC = "antipyretic", "Antipyretic"


class ToleranceVerdictChoice(models.TextChoices):
    # orders.tolerance.ToleranceVerdict, as stored (a test pins them equal)
    TOLERATED = "tolerated", "Tolerated: the dose may be given"
    HOLD = "hold", "Hold the dose"
    PENDING = "pending", "Pending: a finding is not recorded"
