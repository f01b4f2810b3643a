"""Units, CTCAE terms, delta checks, reference ranges and critical limits (docs/clinical-sources.md;
typical adult values, site-editable in admin). Critical limits are inclusive: LL when value <= critical_low,
HH when value >= critical_high; strict limits of the source are expressed at the reporting resolution
(K < 2.8 -> 2.7; INR > 5 -> 5.1; fibrinogen < 100 -> 99)."""

from datetime import timedelta
from decimal import Decimal

from django.db import migrations

D = Decimal
WEEK = timedelta(days=7)
# name: (unit, decimals, CTCAE low term, CTCAE high term, delta %, delta absolute)
SPECS = {
    "ALT": ("U/L", 0, "", "Alanine aminotransferase increased", None, None),
    "AST": ("U/L", 0, "", "Aspartate aminotransferase increased", None, None),
    "ALP": ("U/L", 0, "", "Alkaline phosphatase increased", None, None),
    "Total bilirubin": ("mg/dL", 1, "", "Blood bilirubin increased", None, None),
    "Creatinine": ("mg/dL", 2, "", "Creatinine increased", D("50"), None),
    "Glucose": ("mg/dL", 0, "Hypoglycemia", "", None, None),
    "Sodium": ("mmol/L", 0, "Hyponatremia", "Hypernatremia", None, D("8")),
    "Potassium": ("mmol/L", 1, "Hypokalemia", "Hyperkalemia", None, D("1.0")),
    "Lipase": ("U/L", 0, "", "Lipase increased", None, None),
    "TSH": ("m[IU]/L", 2, "", "", None, None),
    "Free T4": ("ng/dL", 2, "", "", None, None),
    "HbA1c": ("%", 1, "", "", None, None),
    "CK": ("U/L", 0, "", "CPK increased", None, None),
    "CRP": ("mg/L", 1, "", "", None, None),
    "Ferritin": ("ng/mL", 0, "", "", None, None),
    "IL-6": ("pg/mL", 1, "", "", None, None),
    "LDH": ("U/L", 0, "", "Blood lactate dehydrogenase increased", None, None),
    "Fibrinogen": ("mg/dL", 0, "Fibrinogen decreased", "", D("50"), None),
    "D-dimer": ("ng/mL{FEU}", 0, "", "", None, None),
    "INR": ("{INR}", 1, "", "INR increased", None, D("1.0")),
    "aPTT": ("s", 1, "", "Activated partial thromboplastin time prolonged", None, None),
    "Haemoglobin": ("g/dL", 1, "Anemia", "Hemoglobin increased", None, D("2.0")),
    "Platelets": ("10*3/uL", 0, "Platelet count decreased", "", D("50"), None),
    "WBC": ("10*3/uL", 1, "White blood cell decreased", "Leukocytosis", D("50"), None),
    "Neutrophils (ANC)": ("10*3/uL", 2, "Neutrophil count decreased", "", D("50"), None),
}
# name: [(sex, low, high, critical low, critical high)]
RANGES = {
    "ALT": [("", 7, 56, None, None)],
    "AST": [("", 10, 40, None, None)],
    "ALP": [("", 44, 147, None, None)],
    "Total bilirubin": [("", "0.1", "1.2", None, 10)],
    "Creatinine": [("F", "0.59", "1.04", None, 6), ("M", "0.74", "1.35", None, 6)],
    "Glucose": [("", 70, 99, 40, 500)],
    "Sodium": [("", 135, 145, 120, 160)],
    "Potassium": [("", "3.5", "5.1", "2.7", "6.2")],
    "Lipase": [("", 0, 160, None, None)],
    "TSH": [("", "0.4", "4.5", None, None)],
    "Free T4": [("", "0.8", "1.8", None, None)],
    "HbA1c": [("", "4.0", "5.6", None, None)],
    "CK": [("F", 26, 192, None, None), ("M", 39, 308, None, None)],
    "CRP": [("", 0, 5, None, None)],
    "Ferritin": [("F", 15, 150, None, None), ("M", 30, 400, None, None)],
    "IL-6": [("", 0, 7, None, None)],
    "LDH": [("", 140, 280, None, None)],
    "Fibrinogen": [("", 200, 400, 99, None)],
    "D-dimer": [("", 0, 500, None, None)],
    "INR": [("", "0.8", "1.2", None, "5.1")],
    "aPTT": [("", 25, 35, None, None)],
    "Haemoglobin": [("F", "12.0", "15.5", "7.0", None), ("M", "13.5", "17.5", "7.0", None)],
    "Platelets": [("", 150, 400, 20, 1000)],
    "WBC": [("", "4.0", "11.0", "1.0", 25)],
    "Neutrophils (ANC)": [("", "1.8", "7.7", "0.5", None)],
}


def _d(value):
    return None if value is None else Decimal(str(value))


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    ResultSpec = apps.get_model("results", "ResultSpec")
    ReferenceRange = apps.get_model("results", "ReferenceRange")
    for test in LabTest.objects.filter(name__in=SPECS):
        unit, decimals, low_term, high_term, delta_percent, delta_absolute = SPECS[test.name]
        ResultSpec.objects.get_or_create(
            lab_test=test,
            defaults={
                "unit": unit,
                "decimal_places": decimals,
                "ctcae_term_low": low_term,
                "ctcae_term_high": high_term,
                "delta_percent": delta_percent,
                "delta_absolute": delta_absolute,
                "delta_window": WEEK if (delta_percent or delta_absolute) else None,
            },
        )
        if not ReferenceRange.objects.filter(lab_test=test).exists():
            for sex, low, high, critical_low, critical_high in RANGES[test.name]:
                ReferenceRange.objects.create(
                    lab_test=test,
                    sex=sex,
                    low=_d(low),
                    high=_d(high),
                    critical_low=_d(critical_low),
                    critical_high=_d(critical_high),
                )


class Migration(migrations.Migration):
    dependencies = [("results", "0001_initial"), ("monitoring", "0008_seed_panel_components")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
