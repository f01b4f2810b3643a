"""PT and INR specimens are not accepted refrigerated: a refrigerated stability of zero.

clinical.md "Specimens" (CLSI H21-A5): PT 24 h at room temperature only, since cold activates factor VII; the
INR is computed from the PT, so the same citrate tube rule holds for it. 0002 seeded INR with 24 h refrigerated;
results 0005 seeds PT already with zero (this migration sets it too where the row exists). Receipt refuses a
specimen whose test has a stability of zero for how it arrived (specimens.services.specimen_receive).

Not reversed: going back would make a refrigerated INR acceptable again.
"""

from datetime import timedelta

from django.db import migrations

NOT_REFRIGERATED = ("PT", "INR")


def seed(apps, schema_editor):
    Requirement = apps.get_model("specimens", "TestSpecimenRequirement")
    for requirement in Requirement.objects.filter(lab_test__name__in=NOT_REFRIGERATED):
        if requirement.stability_refrigerated != timedelta(0):
            requirement.stability_refrigerated = timedelta(0)
            requirement.save(update_fields=["stability_refrigerated"])


class Migration(migrations.Migration):
    dependencies = [("specimens", "0002_accession_sequence_and_catalogue")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
