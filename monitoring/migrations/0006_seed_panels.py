"""Panels that monitoring plans order as one test (CBC with differential, CMP)."""

from datetime import timedelta

from django.db import migrations

PANELS = [("CBC with differential", "57021-8", 2), ("Comprehensive metabolic panel", "24323-8", 4)]


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    for name, loinc, hours in PANELS:
        LabTest.objects.get_or_create(loinc_code=loinc, defaults={"name": name, "turnaround": timedelta(hours=hours)})


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0005_seed_turnaround")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
