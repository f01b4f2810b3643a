"""Typical turnaround (collection to verified result) of the tests 0009 added; site-editable in admin.

Electrolytes and PT as the others (2 h), chemistry 4 h, high-sensitivity troponin 1 h (it decides about
myocarditis and the dose), cortisol 24 h (often run in batches)."""

from datetime import timedelta

from django.db import migrations

TURNAROUND_HOURS = {
    "Calcium": 4, "Albumin": 4, "Total protein": 4, "Bicarbonate (CO2)": 2, "Chloride": 2, "BUN": 4,
    "Troponin I (high-sensitivity)": 1, "Cortisol": 24, "Uric acid": 4, "Phosphate": 4, "Magnesium": 4, "PT": 2,
}  # fmt: skip


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    for name, hours in TURNAROUND_HOURS.items():
        LabTest.objects.filter(name=name).update(turnaround=timedelta(hours=hours))


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0009_seed_cmp_and_cell_therapy_tests")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
