"""Seed the test catalogue with the LOINC codes of docs/clinical-sources.md (editable in admin)."""

from django.db import migrations

LAB_TESTS = [
    ("ALT", "1742-6"), ("AST", "1920-8"), ("Total bilirubin", "1975-2"), ("ALP", "6768-6"),
    ("Creatinine", "2160-0"), ("Glucose", "2345-7"), ("Sodium", "2951-2"), ("Potassium", "2823-3"),
    ("Lipase", "3040-3"), ("TSH", "3016-3"), ("Free T4", "3024-7"), ("HbA1c", "4548-4"), ("CK", "2157-6"),
    ("CRP", "1988-5"), ("Ferritin", "2276-4"), ("IL-6", "26881-3"), ("LDH", "2532-0"), ("Fibrinogen", "3255-7"),
    ("D-dimer", "48065-7"), ("INR", "6301-6"), ("aPTT", "14979-9"), ("Haemoglobin", "718-7"),
    ("Platelets", "777-3"), ("WBC", "6690-2"), ("Neutrophils (ANC)", "751-8"),
]  # fmt: skip


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    for name, loinc in LAB_TESTS:
        LabTest.objects.get_or_create(loinc_code=loinc, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
