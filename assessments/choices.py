"""The findings' choices as stored: the same values as the enums of assessments/grading.py (a test checks they
stay equal), with the labels a nurse reads."""

from django.db import models


class Vasopressors(models.TextChoices):
    NONE = "none", "None"
    ONE = "one", "One vasopressor (with or without vasopressin)"
    SEVERAL = "several", "Multiple vasopressors (excluding vasopressin)"


class OxygenSupport(models.TextChoices):
    NONE = "none", "None"
    LOW_FLOW = "low_flow", "Low-flow: nasal cannula ≤ 6 L/min or blow-by"
    HIGH_FLOW = "high_flow", "High-flow nasal cannula > 6 L/min, facemask, non-rebreather or Venturi mask"
    POSITIVE_PRESSURE = "positive_pressure", "Positive pressure: CPAP, BiPAP, intubation and ventilation"


class Consciousness(models.TextChoices):
    ALERT = "alert", "Alert"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously", "Awakens spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice", "Awakens to voice"
    AWAKENS_TO_TOUCH = "awakens_to_touch", "Awakens only to tactile stimulus"
    UNAROUSABLE = "unarousable", "Unarousable, or needs vigorous or repetitive tactile stimuli (stupor, coma)"


class Seizure(models.TextChoices):
    NONE = "none", "None"
    RAPIDLY_RESOLVING_OR_NONCONVULSIVE_EEG = (
        "rapidly_resolving_or_nonconvulsive_eeg",
        "Clinical seizure that resolves rapidly, or non-convulsive seizures on EEG resolving with intervention",
    )
    PROLONGED_OR_REPETITIVE = (
        "prolonged_or_repetitive",
        "Life-threatening prolonged seizure (> 5 min), or repetitive seizures without return to baseline",
    )


class MotorWeakness(models.TextChoices):
    NONE = "none", "None"
    DEEP_FOCAL = "deep_focal", "Deep focal motor weakness (hemiparesis or paraparesis)"


class RaisedIcp(models.TextChoices):
    NONE = "none", "None"
    FOCAL_OEDEMA = "focal_oedema", "Focal/local oedema on neuroimaging"
    DIFFUSE_OEDEMA_OR_SIGNS = (
        "diffuse_oedema_or_signs",
        "Diffuse cerebral oedema, decerebrate or decorticate posturing, cranial nerve VI palsy, papilloedema or "
        "Cushing's triad",
    )


# The ten ICE items (ASTCT 2019) in the order of the test, with what the nurse asks; one point each.
ICE_QUESTIONS = (
    ("oriented_year", "Orientation: states the year"),
    ("oriented_month", "Orientation: states the month"),
    ("oriented_city", "Orientation: states the city"),
    ("oriented_hospital", "Orientation: states the hospital"),
    ("names_object_1", "Naming: names the first of three objects (e.g. points to a clock)"),
    ("names_object_2", "Naming: names the second object (e.g. a pen)"),
    ("names_object_3", "Naming: names the third object (e.g. a button)"),
    (
        "follows_commands",
        'Follows simple commands (e.g. "show me 2 fingers" or "close your eyes and stick out your tongue")',
    ),
    ("writes_sentence", "Writing: writes a standard sentence"),
    ("counts_backwards", "Attention: counts backwards from 100 by 10"),
)
