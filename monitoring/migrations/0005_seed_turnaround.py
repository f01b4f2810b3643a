"""Typical turnaround (collection to verified result) per catalogue test; site-editable in admin."""

from datetime import timedelta

from django.db import migrations

TURNAROUND_HOURS = {
    "WBC": 2, "Neutrophils (ANC)": 2, "Platelets": 2, "Haemoglobin": 2, "INR": 2, "aPTT": 2, "Fibrinogen": 2,
    "Sodium": 2, "Potassium": 2, "Glucose": 2, "Creatinine": 4, "ALT": 4, "AST": 4, "ALP": 4,
    "Total bilirubin": 4, "CK": 4, "Lipase": 4, "CRP": 4, "LDH": 4, "D-dimer": 4, "Ferritin": 24,
    "TSH": 24, "Free T4": 24, "HbA1c": 24, "IL-6": 72,
}  # fmt: skip


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    for name, hours in TURNAROUND_HOURS.items():
        LabTest.objects.filter(name=name).update(turnaround=timedelta(hours=hours))


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0004_result_stage")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
