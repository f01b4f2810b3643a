"""The rest of the CMP (all 14 components of LOINC 24323-8) and the tests of baseline and CAR-T plans."""

from django.db import migrations

LAB_TESTS = [
    ("Calcium", "17861-6"), ("Albumin", "1751-7"), ("Total protein", "2885-2"), ("Bicarbonate (CO2)", "2028-9"),
    ("Chloride", "2075-0"), ("BUN", "3094-0"),
    ("Troponin I (high-sensitivity)", "89579-7"), ("Cortisol", "2143-6"), ("Uric acid", "3084-1"),
    ("Phosphate", "2777-1"), ("Magnesium", "19123-9"), ("PT", "5902-2"),
]  # fmt: skip
CMP_ADDED = ["Calcium", "Albumin", "Total protein", "Bicarbonate (CO2)", "Chloride", "BUN"]


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    for name, loinc in LAB_TESTS:
        LabTest.objects.get_or_create(loinc_code=loinc, defaults={"name": name})
    cmp = LabTest.objects.filter(loinc_code="24323-8").first()
    if cmp is not None:
        cmp.components.add(*LabTest.objects.filter(name__in=CMP_ADDED))


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0008_seed_panel_components")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
