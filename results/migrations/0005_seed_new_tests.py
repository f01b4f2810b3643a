"""Result specs, reference ranges, critical limits and specimen needs of the twelve tests monitoring 0009 added
(the rest of the CMP, LOINC 24323-8, and the baseline and CAR-T tests). Same shape as 0002.

Typical adult values, site-editable in admin; reference ranges depend on the assay and must be replaced by the
laboratory's own. Critical limits are inclusive (LL when value <= critical_low, HH when value >= critical_high):
- Calcium <= 6.5 / >= 13.0 mg/dL: docs/clinical-sources.md "Critical values".
- Bicarbonate <= 10 / >= 40 mmol/L, chloride <= 80 / >= 120 mmol/L, phosphate <= 1.0 mg/dL, magnesium <= 1.0 /
  >= 4.9 mg/dL: typical hospital critical-value lists (GK, site-specific).
- No critical limits for albumin, total protein, BUN, troponin, cortisol, uric acid or PT (the INR carries the
  coagulation limit).
- Troponin I (high-sensitivity): the upper reference limit is the sex-specific 99th percentile of a healthy
  population, which differs by assay. Seeded: F 16 / M 34 ng/L, the 99th percentiles of one common hs-cTnI assay
  (Abbott ARCHITECT STAT hs-TnI: 15.6 / 34.2 ng/L; overall 26.2 ng/L). A site on another assay must change them.
- Cortisol: morning (7-9 am) serum range 5-25 ug/dL; afternoon values are lower, so the plan orders it at 8 am.
CTCAE v5 terms only where results.ctcae can grade them (results/ctcae_table.py): calcium (graded as measured; CTCAE
uses albumin-corrected calcium), albumin, magnesium, uric acid. Phosphate, bicarbonate, chloride, BUN, total
protein, troponin, cortisol and PT have no lab-gradable CTCAE v5 term.

The specimen needs (tube, volume, stability) follow specimens 0002 and clinical.md "Specimens": chemistry, troponin
and cortisol in gold SST; PT in light-blue citrate, 24 h at room temperature and not acceptable refrigerated
(CLSI H21-A5: cold activates factor VII), hence a refrigerated stability of zero.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import migrations

# name: (unit, decimals, CTCAE low term, CTCAE high term, delta %, delta absolute)
SPECS = {
    "Calcium": ("mg/dL", 1, "Hypocalcemia", "Hypercalcemia", None, None),
    "Albumin": ("g/dL", 1, "Hypoalbuminemia", "", None, None),
    "Total protein": ("g/dL", 1, "", "", None, None),
    "Bicarbonate (CO2)": ("mmol/L", 0, "", "", None, None),
    "Chloride": ("mmol/L", 0, "", "", None, None),
    "BUN": ("mg/dL", 0, "", "", None, None),
    "Troponin I (high-sensitivity)": ("ng/L", 0, "", "", None, None),
    "Cortisol": ("ug/dL", 1, "", "", None, None),
    "Uric acid": ("mg/dL", 1, "", "Hyperuricemia", None, None),
    "Phosphate": ("mg/dL", 1, "", "", None, None),
    "Magnesium": ("mg/dL", 1, "Hypomagnesemia", "Hypermagnesemia", None, None),
    "PT": ("s", 1, "", "", None, None),
}
# name: [(sex, low, high, critical low, critical high)]
RANGES = {
    "Calcium": [("", "8.5", "10.2", "6.5", "13.0")],
    "Albumin": [("", "3.5", "5.0", None, None)],
    "Total protein": [("", "6.0", "8.3", None, None)],
    "Bicarbonate (CO2)": [("", 22, 29, 10, 40)],
    "Chloride": [("", 98, 107, 80, 120)],
    "BUN": [("", 7, 20, None, None)],
    "Troponin I (high-sensitivity)": [("F", 0, 16, None, None), ("M", 0, 34, None, None)],
    "Cortisol": [("", "5.0", "25.0", None, None)],
    "Uric acid": [("F", "2.6", "6.0", None, None), ("M", "3.5", "7.2", None, None)],
    "Phosphate": [("", "2.5", "4.5", "1.0", None)],
    "Magnesium": [("", "1.7", "2.2", "1.0", "4.9")],
    "PT": [("", "11.0", "13.5", None, None)],
}
H = timedelta(hours=1)
SERUM = ("GOLD_SST", "1.0", 2 * H, 24 * H)  # separate within 2 h at room temperature (specimens 0002)
# name: (container code, minimum volume mL, stability at room temperature, refrigerated)
REQUIREMENTS = {
    "Calcium": SERUM, "Albumin": SERUM, "Total protein": SERUM, "Bicarbonate (CO2)": SERUM, "Chloride": SERUM,
    "BUN": SERUM, "Troponin I (high-sensitivity)": SERUM, "Cortisol": SERUM, "Uric acid": SERUM,
    "Phosphate": SERUM, "Magnesium": SERUM,
    "PT": ("BLUE_CIT", "2.7", 24 * H, timedelta(0)),
}  # fmt: skip


def _d(value):
    return None if value is None else Decimal(str(value))


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    ResultSpec = apps.get_model("results", "ResultSpec")
    ReferenceRange = apps.get_model("results", "ReferenceRange")
    Container = apps.get_model("specimens", "Container")
    Requirement = apps.get_model("specimens", "TestSpecimenRequirement")
    containers = {c.code: c for c in Container.objects.all()}
    for test in LabTest.objects.filter(name__in=SPECS):
        unit, decimals, low_term, high_term, delta_percent, delta_absolute = SPECS[test.name]
        ResultSpec.objects.get_or_create(
            lab_test=test,
            defaults={
                "unit": unit,
                "decimal_places": decimals,
                "ctcae_term_low": low_term,
                "ctcae_term_high": high_term,
                "delta_percent": delta_percent,
                "delta_absolute": delta_absolute,
                "delta_window": timedelta(days=7) if (delta_percent or delta_absolute) else None,
            },
        )
        if not ReferenceRange.objects.filter(lab_test=test).exists():
            for sex, low, high, critical_low, critical_high in RANGES[test.name]:
                ReferenceRange.objects.create(
                    lab_test=test,
                    sex=sex,
                    low=_d(low),
                    high=_d(high),
                    critical_low=_d(critical_low),
                    critical_high=_d(critical_high),
                )
        code, volume, room, fridge = REQUIREMENTS[test.name]
        if code in containers:
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
    dependencies = [
        ("results", "0004_hl7_control_id_index"),
        ("monitoring", "0009_seed_cmp_and_cell_therapy_tests"),
        ("specimens", "0002_accession_sequence_and_catalogue"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
