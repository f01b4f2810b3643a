"""Aldesleukin after lifileucel starts 3-24 h after the lifileucel infusion ends (AMTAGVI US PI 2/2024 §2:
"administer IL-2 ... beginning 3 to 24 hours after completion of the AMTAGVI infusion"; docs/clinical-sources.md §12).
A course of it is refused without a completed lifileucel infusion, or outside the window (orders.services.courses)."""

from django.db import migrations

ALDESLEUKIN = "Aldesleukin 600,000 IU/kg q8h up to 6 doses (after lifileucel)"
LIFILEUCEL = "Lifileucel single infusion (melanoma)"


def seed(apps, schema_editor):
    Regimen = apps.get_model("orders", "Regimen")
    lifileucel = Regimen.objects.filter(name=LIFILEUCEL).first()
    if lifileucel is not None:
        Regimen.objects.filter(name=ALDESLEUKIN).update(
            follows_regimen=lifileucel, follows_from_hours=3, follows_to_hours=24
        )


class Migration(migrations.Migration):
    dependencies = [("orders", "0022_regimen_follows_window")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
