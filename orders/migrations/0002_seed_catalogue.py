"""Drugs, regimens and monitoring plans (US labels). Everything is admin-editable data; 0004 brings them to
the labels current on 2026-12-01 and seeds the hold rules (docs/clinical-sources.md)."""

from datetime import timedelta
from decimal import Decimal as D

from django.db import migrations

H = timedelta(hours=1)
NS_D5W = ["0.9% sodium chloride", "5% dextrose"]
NS = ["0.9% sodium chloride"]
DRUGS = [
    # name, target, mg/mL, vial contents mg, diluents, conc min, conc max, stability room, fridge, filter, hazardous, cell
    ("Pembrolizumab", "PD-1", "25", ["100"], NS_D5W, "1", "10", 6 * H, 96 * H, "0.2-5 µm in-line filter", False, False),
    ("Nivolumab", "PD-1", "10", ["40", "100", "120", "240"], NS_D5W, "1", "10", 8 * H, 24 * H,
     "0.2-1.2 µm in-line filter", False, False),
    ("Ipilimumab", "CTLA-4", "5", ["50", "200"], NS_D5W, "1", "2", 24 * H, 24 * H, "0.2-1.2 µm in-line filter",
     False, False),
    ("Atezolizumab", "PD-L1", "60", ["840", "1200"], NS, "3.2", "16.8", 6 * H, 24 * H, "", False, False),
    ("Durvalumab", "PD-L1", "50", ["120", "500"], NS_D5W, "1", "15", 4 * H, 24 * H, "0.2 µm in-line filter",
     False, False),
    ("Cemiplimab", "PD-1", "50", ["350"], NS_D5W, "1", "20", 8 * H, 24 * H, "0.2-5 µm in-line filter", False, False),
    ("Axicabtagene ciloleucel", "CD19 CAR T", "1", ["1"], [], None, None, 3 * H, None, "No leukodepleting filter",
     False, True),
]  # fmt: skip
REGIMENS = [
    # name, drug, basis, amount, cycle days, doses, infusion min, max dose
    ("Pembrolizumab 200 mg q3w", "Pembrolizumab", "flat", "200", 21, 35, 30, None),
    ("Pembrolizumab 400 mg q6w", "Pembrolizumab", "flat", "400", 42, 18, 30, None),
    ("Nivolumab 240 mg q2w", "Nivolumab", "flat", "240", 14, 26, 30, None),
    ("Nivolumab 480 mg q4w", "Nivolumab", "flat", "480", 28, 13, 30, None),
    ("Ipilimumab 3 mg/kg q3w x4", "Ipilimumab", "mg_per_kg", "3", 21, 4, 30, None),
    ("Atezolizumab 1200 mg q3w", "Atezolizumab", "flat", "1200", 21, 17, 60, None),
    ("Durvalumab 1500 mg q4w", "Durvalumab", "flat", "1500", 28, 12, 60, None),
    ("Cemiplimab 350 mg q3w", "Cemiplimab", "flat", "350", 21, 17, 30, None),
    ("Axicabtagene ciloleucel single infusion", "Axicabtagene ciloleucel", "flat", "1", 1, 1, 30, None),
]
CBC, CMP, TSH = "CBC with differential", "Comprehensive metabolic panel", "TSH"
PRE_DOSE = [(CBC, "pre_dose", {}), (CMP, "pre_dose", {})]
PLANS = {
    "Pembrolizumab 200 mg q3w": [*PRE_DOSE, (TSH, "every_n_days", {"interval_days": 42})],
    "Pembrolizumab 400 mg q6w": [*PRE_DOSE, (TSH, "every_n_days", {"interval_days": 42})],
    "Nivolumab 240 mg q2w": [*PRE_DOSE, (TSH, "every_nth_dose", {"every_nth_dose": 2})],
    "Nivolumab 480 mg q4w": [*PRE_DOSE, (TSH, "every_n_days", {"interval_days": 42})],
    "Ipilimumab 3 mg/kg q3w x4": [*PRE_DOSE, (TSH, "every_nth_dose", {"every_nth_dose": 1})],
    "Atezolizumab 1200 mg q3w": [*PRE_DOSE, (TSH, "every_n_days", {"interval_days": 42})],
    "Durvalumab 1500 mg q4w": [*PRE_DOSE, (TSH, "every_n_days", {"interval_days": 42})],
    "Cemiplimab 350 mg q3w": [*PRE_DOSE, (TSH, "every_n_days", {"interval_days": 42})],
    "Axicabtagene ciloleucel single infusion": [
        *PRE_DOSE,
        *[(name, "daily_after_infusion", {"day_from": 0, "day_to": 14, "gates_dose": False})
          for name in (CBC, CMP, "CRP", "Ferritin")],
    ],
}  # fmt: skip


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    Regimen = apps.get_model("orders", "Regimen")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    tests = {t.name: t for t in LabTest.objects.all()}
    drugs = {}
    for name, target, strength, vials, diluents, cmin, cmax, room, fridge, filter_note, hazardous, cell in DRUGS:
        drugs[name], _ = Drug.objects.get_or_create(
            name=name,
            defaults={
                "target": target, "strength_mg_per_ml": D(strength), "vial_contents_mg": [D(v) for v in vials],
                "allowed_diluents": diluents, "concentration_min": D(cmin) if cmin else None,
                "concentration_max": D(cmax) if cmax else None, "stability_room": room,
                "stability_refrigerated": fridge, "filter_note": filter_note, "hazardous": hazardous,
                "cell_therapy": cell,
            },
        )  # fmt: skip
    for name, drug, basis, amount, cycle, doses, minutes, max_dose in REGIMENS:
        regimen, created = Regimen.objects.get_or_create(
            name=name,
            defaults={
                "drug": drugs[drug], "dose_basis": basis, "dose_amount": D(amount), "cycle_days": cycle,
                "number_of_doses": doses, "infusion_minutes": minutes, "max_dose_mg": max_dose,
            },
        )  # fmt: skip
        if created:
            for test_name, kind, options in PLANS[name]:
                MonitoringRule.objects.create(regimen=regimen, lab_test=tests[test_name], kind=kind, **options)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("results", "0003_result_decimal_places"),
        ("monitoring", "0008_seed_panel_components"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
