"""Lifileucel (TIL) with its lymphodepletion and the high-dose aldesleukin that follows it, from the current US
labels (docs/clinical-sources.md §12; every row admin-editable, each with its source and date).

- Lifileucel: one dose of 7.5-72 x 10^9 viable cells in 1-4 bags; the thaw-to-infusion limit was not found in a
  retrieved label text, so none is seeded: the product cannot be thawed until an admin enters it (fail closed).
- Lymphodepletion: cyclophosphamide 60 mg/kg daily for 2 days (with mesna), then fludarabine 25 mg/m² daily for 5
  days, as their own courses (hazardous drugs: USP <800> handling as for the other lymphodepleting regimens).
- Aldesleukin 600,000 IU/kg (0.037 mg/kg) IV over 15 min every 8 h, starting 3-24 h after the infusion, up to 6
  doses; each dose waits for a bedside tolerance check (orders.tolerance) and a held dose is not made up.
- CBC with differential before each aldesleukin dose and daily after the infusion to day 14 (prolonged severe
  cytopenia, boxed warning); a basic metabolic follow-up is the site's.
"""

from datetime import date, timedelta
from decimal import Decimal as D

from django.db import migrations

AMTAGVI = "AMTAGVI (lifileucel) US PI 2/2024 §2 (openFDA label record 2026-07-18; rxreasoner copy of §2)"
PROLEUKIN = "PROLEUKIN (aldesleukin) US PI §2 (drugs.com 2/2024: 600,000 IU/kg = 0.037 mg/kg q8h); IL2 medical FAQ"

DRUGS = {
    "Lifileucel": {
        "target": "Tumour-infiltrating lymphocytes (TIL)", "strength_mg_per_ml": D(1), "vial_contents_mg": [D(1)],
        "allowed_diluents": [], "cell_therapy": True, "thaw_to_infusion_limit": None,
        "filter_note": "No leukocyte-depleting filter",
        "premedication": "Acetaminophen and diphenhydramine (or another H1-antihistamine), 30-60 min before",
        "source": AMTAGVI + "; thaw-to-infusion limit NOT VERIFIED: none seeded (cannot be thawed until entered)",
        "effective_from": date(2024, 2, 16),
    },
    "Aldesleukin": {
        "target": "IL-2", "strength_mg_per_ml": D("1.1"), "vial_contents_mg": [D("1.3")],
        "allowed_diluents": ["5% dextrose"], "bag_sizes_ml": [D(25), D(50), D(100)],
        "concentration_min": D("0.03"), "concentration_max": D("0.07"),
        "stability_room": timedelta(hours=48), "stability_refrigerated": timedelta(hours=48),
        "in_use_includes_infusion": True, "dose_step_mg": D("0.01"), "tolerance_check_required": True,
        "filter_note": "No in-line filter",
        "source": "PROLEUKIN US PI §2, §16: 22 MIU (1.3 mg) vial, 1.1 mg/mL reconstituted; D5W to 0.03-0.07 mg/mL; "
                  "48 h at 2-25 °C incl. infusion (drugs.com 2/2024)",
        "effective_from": date(2024, 2, 7),
    },
}  # fmt: skip

LIFILEUCEL_LD = (
    "Cyclophosphamide 60 mg/kg IV with mesna daily for 2 days, then fludarabine 25 mg/m² IV daily for 5 days; "
    "infuse as soon as possible after 24 h from the last fludarabine, no later than 4 days; confirm lifileucel and "
    "aldesleukin are available before starting"
)
REGIMENS = {
    "Lifileucel single infusion (melanoma)": {
        "drug": "Lifileucel", "dose_basis": "cells_flat", "dose_amount": D(1), "cells_min": 7_500_000_000,
        "cells_max": 72_000_000_000, "cycle_days": 1, "number_of_doses": 1, "infusion_minutes": 100,
        "lymphodepletion": LIFILEUCEL_LD,
        "source": AMTAGVI + ": 7.5-72 x 10^9 viable cells in 1-4 bags of 100-125 mL, 1 mL/min for 5 min then "
                  "5-10 mL/min", "effective_from": date(2024, 2, 16),
    },
    "Aldesleukin 600,000 IU/kg q8h up to 6 doses (after lifileucel)": {
        "drug": "Aldesleukin", "dose_basis": "mg_per_kg", "dose_amount": D("0.037"), "cycle_days": 1,
        "cycle_hours": 8, "number_of_doses": 6, "infusion_minutes": 15,
        "source": AMTAGVI + ": 600,000 IU/kg every 8-12 h from 3-24 h after the infusion, up to 6 doses; "
                  "PROLEUKIN: 0.037 mg/kg, 15 min", "effective_from": date(2024, 2, 16),
    },
    "Cyclophosphamide 60 mg/kg daily x2 (lifileucel lymphodepletion)": {
        "drug": "Cyclophosphamide", "dose_basis": "mg_per_kg", "dose_amount": D(60), "cycle_days": 1,
        "number_of_doses": 2, "infusion_minutes": 60, "source": AMTAGVI + " (with mesna)",
        "effective_from": date(2024, 2, 16),
    },
    "Fludarabine 25 mg/m² daily x5 (lifileucel lymphodepletion)": {
        "drug": "Fludarabine", "dose_basis": "mg_per_m2", "dose_amount": D(25), "cycle_days": 1,
        "number_of_doses": 5, "infusion_minutes": 30, "source": AMTAGVI, "effective_from": date(2024, 2, 16),
    },
}  # fmt: skip


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    Regimen = apps.get_model("orders", "Regimen")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    drugs = {d.name: d for d in Drug.objects.filter(name__in=["Cyclophosphamide", "Fludarabine"])}
    for name, values in DRUGS.items():
        drugs[name], _ = Drug.objects.get_or_create(name=name, defaults=values)
    regimens = {}
    for name, values in REGIMENS.items():
        if values["drug"] not in drugs:
            continue  # the lymphodepleting drugs of 0013 were removed by an admin: nothing to attach to
        regimens[name], _ = Regimen.objects.get_or_create(name=name, defaults={**values, "drug": drugs[values["drug"]]})
    cbc = LabTest.objects.filter(name="CBC with differential").first()
    if cbc is None:
        return
    il2 = regimens.get("Aldesleukin 600,000 IU/kg q8h up to 6 doses (after lifileucel)")
    if il2 is not None:
        MonitoringRule.objects.get_or_create(
            regimen=il2, lab_test=cbc, kind="pre_dose",
            defaults={"lead_hours": 4, "window_hours": 12, "grace_hours": 2, "gates_dose": False},
        )  # fmt: skip
    til = regimens.get("Lifileucel single infusion (melanoma)")
    if til is not None:
        MonitoringRule.objects.get_or_create(
            regimen=til, lab_test=cbc, kind="daily_after_infusion", day_from=1, day_to=14,
            defaults={"grace_hours": 12, "gates_dose": False},
        )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("orders", "0017_tolerance_checks_hourly_cycles"), ("monitoring", "0015_seed_crs_icans_assessment")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
