"""Accession number sequence; tubes (CLSI GP41 order of draw) and each catalogue test's specimen needs.

Values are defaults from docs/clinical-sources.md (site-editable in admin)."""

from datetime import timedelta
from decimal import Decimal

from django.db import migrations

CONTAINERS = [
    # code, name, cap colour, additive, specimen type, order of draw
    ("BLUE_CIT", "Light blue top", "light blue", "3.2% sodium citrate", "PLAS", 2),
    ("GOLD_SST", "Gold top SST", "gold", "clot activator, gel", "SER", 3),
    ("GREEN_LIH", "Light green top PST", "light green", "lithium heparin, gel", "PLAS", 4),
    ("LAV_EDTA", "Lavender top", "lavender", "K2EDTA", "BLD", 5),
    ("GREY_FLU", "Grey top", "grey", "sodium fluoride / potassium oxalate", "PLAS", 6),
]
H = timedelta(hours=1)
CBC = ("LAV_EDTA", "2.0", 24 * H, 48 * H)
SERUM = ("GOLD_SST", "1.0", 2 * H, 24 * H)  # separate within 2 h at room temperature
REQUIREMENTS = {
    "CBC with differential": CBC, "WBC": CBC, "Neutrophils (ANC)": CBC, "Platelets": CBC, "Haemoglobin": CBC,
    "HbA1c": ("LAV_EDTA", "1.0", 72 * H, 168 * H),
    "Comprehensive metabolic panel": SERUM, "ALT": SERUM, "AST": SERUM, "ALP": SERUM, "Total bilirubin": SERUM,
    "Creatinine": SERUM, "Glucose": SERUM, "Sodium": SERUM, "Potassium": SERUM, "Lipase": SERUM, "CK": SERUM,
    "LDH": SERUM, "CRP": SERUM, "Ferritin": SERUM, "IL-6": SERUM, "TSH": SERUM, "Free T4": SERUM,
    "INR": ("BLUE_CIT", "2.7", 24 * H, 24 * H),
    "aPTT": ("BLUE_CIT", "2.7", 4 * H, 4 * H),
    "Fibrinogen": ("BLUE_CIT", "2.7", 4 * H, 4 * H),
    "D-dimer": ("BLUE_CIT", "2.7", 8 * H, 24 * H),
}  # fmt: skip


def seed(apps, schema_editor):
    Container = apps.get_model("specimens", "Container")
    Requirement = apps.get_model("specimens", "TestSpecimenRequirement")
    LabTest = apps.get_model("monitoring", "LabTest")
    containers = {}
    for code, name, colour, additive, specimen_type, order in CONTAINERS:
        containers[code], _ = Container.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "cap_colour": colour,
                "additive": additive,
                "specimen_type": specimen_type,
                "draw_order": order,
            },
        )
    for test in LabTest.objects.filter(name__in=REQUIREMENTS):
        code, volume, room, fridge = REQUIREMENTS[test.name]
        Requirement.objects.get_or_create(
            lab_test=test,
            defaults={
                "container": containers[code],
                "min_volume_ml": Decimal(volume),
                "stability_room_temp": room,
                "stability_refrigerated": fridge,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("specimens", "0001_initial"), ("monitoring", "0006_seed_panels")]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE specimens_accession_seq START 1000", "DROP SEQUENCE specimens_accession_seq"
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
