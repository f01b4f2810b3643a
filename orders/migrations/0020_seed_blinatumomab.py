"""Blinatumomab as a continuous infusion in bags (docs/clinical-sources.md §13; every row admin-editable).

BLINCYTO US PI (relapsed or refractory B-cell precursor ALL, patients of at least 45 kg), checked 2026-12-01 against
the label text on blincytohcp.com (administration, preparation), drugs.com (dosage, 2025-05-05; ASHP monograph,
2025-05-10), medscape and a reproduction of the PI's storage table:

- A cycle is 4 weeks (28 days) of continuous IV infusion, then 2 weeks without. Cycle 1: 9 µg/day days 1-7, 28 µg/day
  days 8-28; cycles 2-5: 28 µg/day days 1-28. Each cycle is its own course here (one 28-day infusion).
- Under 45 kg the dose is 5 then 15 µg/m²/day capped at 9 and 28 µg/day: not modelled (the BSA dose with a µg cap
  and the label's volume table), so a weight band below 45 kg REFUSES the regimen (fail closed).
- Bags of 24 h or 48 h, preservative-free (0.9 % sodium chloride). The 72 h, 96 h and 7-day bags need bacteriostatic
  saline (preservative): their in-use storage could not be confirmed, so they are not offered (fail closed).
- The prepared preservative-free bag: 48 h at 23-27 °C, which includes the infusion time; 8 days at 2-8 °C.
- Dexamethasone 20 mg IV 1 h before the first dose of each cycle and before a step dose (cycle 1 day 8).
- Hospitalisation for the first 9 days of cycle 1 and the first 2 days of cycle 2.
- Not seeded: the label's volumes (reconstituted volume, IV solution stabiliser, overfill): the preparer enters the
  bag's volume; the 35 µg vial (0.035 mg) is named in the drug's storage note, not as a vial size.
"""

from datetime import date, timedelta
from decimal import Decimal as D

from django.db import migrations

BLINCYTO = "BLINCYTO US PI §2.1-2.2, §2.4 (blincytohcp.com, drugs.com 2025-05, medscape; date: openFDA record)"
BLINCYTO_DATE = date(2026, 6, 1)
PREMED = "Dexamethasone 20 mg IV 1 h before"
CYCLE_1 = "Blinatumomab cycle 1 (R/R B-ALL, 45 kg or more): 9 then 28 µg/day, continuous"
CYCLE_2 = "Blinatumomab cycle 2 (R/R B-ALL, 45 kg or more): 28 µg/day, continuous"
CYCLES_3_5 = "Blinatumomab cycles 3-5 (R/R B-ALL, 45 kg or more): 28 µg/day, continuous"

DRUG = {
    "target": "CD19 x CD3 (BiTE)", "strength_mg_per_ml": D("0.0125"), "vial_contents_mg": [],
    "allowed_diluents": ["0.9% sodium chloride"], "stability_room": timedelta(hours=48),
    "stability_refrigerated": timedelta(days=8), "in_use_includes_infusion": True, "dose_step_mg": D("0.001"),
    "filter_note": "0.2 micron low protein-binding in-line filter; do not flush the line",
    "storage_note": "35 µg vial, 12.5 µg/mL in 3 mL SWFI; vials 2-8 °C, protect from light",
    "source": BLINCYTO + ": bag without preservative 48 h at 23-27 °C incl. infusion, 8 days at 2-8 °C",
    "effective_from": BLINCYTO_DATE,
}  # fmt: skip

REGIMEN = {
    "dose_basis": "flat", "dose_amount": D("0.028"), "cycle_days": 42, "number_of_doses": 1,
    "infusion_minutes": 1440, "bag_hours_allowed": [24, 48], "infusion_days": 28, "source": BLINCYTO,
    "effective_from": BLINCYTO_DATE,
}  # fmt: skip

STEP = {"premedication_required": True, "premedication_classes": ["corticosteroid"], "source": BLINCYTO,
        "effective_from": BLINCYTO_DATE}  # fmt: skip
STEPS = {
    # regimen: (dose number, day, mg/day, step-up, hospital stay h, premedication)
    CYCLE_1: [
        (1, 1, D("0.009"), True, 216, PREMED + " the first dose of the cycle"),
        (2, 8, D("0.028"), True, 0, PREMED + " the step dose (cycle 1 day 8)"),
    ],
    CYCLE_2: [(1, 1, D("0.028"), False, 48, PREMED + " the first dose of the cycle")],
    CYCLES_3_5: [(1, 1, D("0.028"), False, 0, PREMED + " the first dose of the cycle")],
}
UNDER_45 = "Under 45 kg the label doses 5 then 15 µg/m²/day (at most 9 and 28 µg/day): not modelled, order by hand"

FIXED = "45 kg or more: the fixed µg/day of each step"


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    Regimen = apps.get_model("orders", "Regimen")
    RegimenStep = apps.get_model("orders", "RegimenStep")
    RegimenDoseBand = apps.get_model("orders", "RegimenDoseBand")
    drug, _ = Drug.objects.get_or_create(name="Blinatumomab", defaults=DRUG)
    for name, steps in STEPS.items():
        regimen, created = Regimen.objects.get_or_create(name=name, defaults={**REGIMEN, "drug": drug})
        if not created:
            continue  # kept as an admin left it
        RegimenDoseBand.objects.create(regimen=regimen, weight_below_kg=D(45), refuse=True, note=UNDER_45)
        RegimenDoseBand.objects.create(
            regimen=regimen, weight_from_kg=D(45), dose_basis="flat", dose_amount=D("0.028"), note=FIXED
        )
        for number, day, mg_per_day, step_up, stay, premedication in steps:
            RegimenStep.objects.create(
                regimen=regimen, dose_number=number, day=day, dose_amount=mg_per_day, step_up=step_up,
                hospital_stay_hours=stay, premedication=premedication, **STEP,
            )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("orders", "0019_continuous_infusion_bags")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
