"""IgG (serum, LOINC 2465-3) for the cell-therapy follow-up plan (orders 0009; docs/clinical-sources.md §8), with
its result spec, reference range, tube and turnaround, the way monitoring 0009 / results 0005 / monitoring 0010
seed the others.

- Unit mg/dL, no decimals: the unit the hypogammaglobulinaemia threshold is given in (IgG < 400 mg/dL).
- Adult reference range 700-1600 mg/dL: a typical adult range (GK); assay-dependent, the laboratory's own range
  replaces it. No critical limits and no CTCAE v5 lab term (CTCAE does not grade IgG).
- Serum in a gold SST, as the other chemistry (specimens 0002); turnaround 24 h (immunoassays often run in batches).
"""

from datetime import timedelta
from decimal import Decimal

from django.db import migrations

NAME, LOINC = "IgG", "2465-3"
UNIT, DECIMALS = "mg/dL", 0
RANGE = (Decimal(700), Decimal(1600))
H = timedelta(hours=1)
SERUM = ("GOLD_SST", Decimal("1.0"), 2 * H, 24 * H)  # container, min volume mL, stability room, refrigerated
TURNAROUND = 24 * H


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    ResultSpec = apps.get_model("results", "ResultSpec")
    ReferenceRange = apps.get_model("results", "ReferenceRange")
    Container = apps.get_model("specimens", "Container")
    Requirement = apps.get_model("specimens", "TestSpecimenRequirement")
    test, _ = LabTest.objects.get_or_create(loinc_code=LOINC, defaults={"name": NAME, "turnaround": TURNAROUND})
    ResultSpec.objects.get_or_create(lab_test=test, defaults={"unit": UNIT, "decimal_places": DECIMALS})
    if not ReferenceRange.objects.filter(lab_test=test).exists():
        ReferenceRange.objects.create(lab_test=test, sex="", low=RANGE[0], high=RANGE[1])
    code, volume, room, fridge = SERUM
    container = Container.objects.filter(code=code).first()
    if container is not None:
        Requirement.objects.get_or_create(
            lab_test=test,
            defaults={
                "container": container,
                "min_volume_ml": volume,
                "stability_room_temp": room,
                "stability_refrigerated": fridge,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0012_sweep_flag_audit"),
        ("results", "0008_review_inbox_order_index"),
        ("specimens", "0003_pt_inr_not_refrigerated"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
