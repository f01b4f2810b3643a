"""Thaw-to-infusion limits for brexucabtagene autoleucel and idecabtagene vicleucel (docs/clinical-sources.md §11),
left empty by 0013 because no retrieved copy of the label gave them. LabFlow counts every limit from the recorded
thaw, which the preparer records as the start of the thaw: stricter than a label that counts from thaw completion.

- Tecartus: "the infusion should begin within 30 minutes of complete thaw and the total infusion time should not
  exceed 30 minutes" (Swiss product information, Haltbarkeit; thawed product stable up to 3 h at 20-25 °C): 1 h,
  with the regimen's 30 min infusion it must start within 30 min of the thaw.
- Abecma: "each bag must be infused within 1 hour from start of thaw" (EU SmPC §6.3, Israeli MoH copy): 1 h.

A limit an administrator already entered is kept (never overwritten)."""

from datetime import timedelta

from django.db import migrations

LIMITS = {
    "Brexucabtagene autoleucel": (
        timedelta(hours=1),
        "TECARTUS US PI §2 (openFDA 2026-08-11); thaw 1 h: start within 30 min of thaw, infusion at most 30 min "
        "(Swiss PI, ch.oddb.org 67884); BSL site policy (GK)",
    ),
    "Idecabtagene vicleucel": (
        timedelta(hours=1),
        "ABECMA US PI §2 (D&A 2.2 rev. 11/2025); thaw 1 h: each bag infused within 1 h from start of thaw "
        "(EU SmPC §6.3, Israeli MoH copy); BSL site policy (GK)",
    ),
}


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    for name, (limit, source) in LIMITS.items():
        Drug.objects.filter(name=name, thaw_to_infusion_limit__isnull=True).update(
            thaw_to_infusion_limit=limit, source=source
        )


class Migration(migrations.Migration):
    dependencies = [("orders", "0023_seed_aldesleukin_follows_lifileucel")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
