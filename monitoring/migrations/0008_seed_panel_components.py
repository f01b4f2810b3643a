"""Which analytes each panel reports: a panel's result stage is met when all of them are verified."""

from django.db import migrations

COMPONENTS = {
    "CBC with differential": ["WBC", "Neutrophils (ANC)", "Platelets", "Haemoglobin"],
    "Comprehensive metabolic panel": [
        "ALT", "AST", "ALP", "Total bilirubin", "Creatinine", "Glucose", "Sodium", "Potassium",
    ],
}  # fmt: skip


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    for panel_name, names in COMPONENTS.items():
        panel = LabTest.objects.filter(name=panel_name).first()
        if panel is not None:
            panel.components.add(*LabTest.objects.filter(name__in=names))


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0007_labtest_components")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
