"""The bedside CRS/ICANS assessment (ASTCT 2019 grading, assessments app) as a monitoring test of its own kind, so a
regimen's plan can schedule it and the overdue sweep flags it (orders 0011; docs/clinical-sources.md §9).

No LOINC code (a bedside grading, not a laboratory observation), no specimen requirement, no result spec: it is never
collected, labelled or resulted. An assessment recorded on the assessment form satisfies it.
"""

from django.db import migrations

NAME = "CRS/ICANS assessment (ASTCT)"


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    LabTest.objects.get_or_create(name=NAME, defaults={"kind": "bedside_assessment", "loinc_code": ""})


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0014_labtest_kind"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
