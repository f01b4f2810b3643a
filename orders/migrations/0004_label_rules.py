"""The catalogue brought to the labels current on 2026-12-01, and the hold rules with their actions.

Every number carries its source and effective date; docs/clinical-sources.md says how each was checked and
where a label and the earlier reference disagree (the label wins). A rule that already exists with other
values gets a new version (the old one is kept, superseded), as hold_rule_revise does.
"""

from datetime import date, timedelta
from decimal import Decimal as D

from django.db import migrations
from django.utils import timezone

H = timedelta(hours=1)
CPI = ["Pembrolizumab", "Nivolumab", "Ipilimumab", "Atezolizumab", "Durvalumab", "Cemiplimab"]
KEYTRUDA = "KEYTRUDA US PI §2.3 Table 2 (D&A rev. 07/2026)"
CLASS = "Keytruda, Tecentriq, Opdivo PI §2 dose modifications (class wording)"
CEMIPLIMAB = "LIBTAYO US PI §2 Table 1 (03/2023)"
IPI = "OPDIVO + YERVOY PI §2 dose modifications (combination)"
SITE = "site policy (GK)"
KEYTRUDA_DATE, CLASS_DATE, CEMIPLIMAB_DATE, SITE_DATE = date(2026, 7, 1), date(2026, 7, 1), date(2023, 3, 1), None

# key, lab test, comparator, threshold, reference, unit, action, drugs, requires a result, description, source, date
HOLD_RULES = [
    ("alt-withhold", "ALT", "gt", "3", "uln", "", "withhold", CPI, True, "ALT > 3 x ULN", CLASS, CLASS_DATE),
    ("ast-withhold", "AST", "gt", "3", "uln", "", "withhold", CPI, True, "AST > 3 x ULN", CLASS, CLASS_DATE),
    ("alt-discontinue", "ALT", "gt", "8", "uln", "", "discontinue", ["Pembrolizumab", "Nivolumab", "Atezolizumab",
     "Durvalumab"], True, "ALT > 8 x ULN", CLASS, CLASS_DATE),
    ("ast-discontinue", "AST", "gt", "8", "uln", "", "discontinue", ["Pembrolizumab", "Nivolumab", "Atezolizumab",
     "Durvalumab"], True, "AST > 8 x ULN", CLASS, CLASS_DATE),
    ("alt-discontinue-cemiplimab", "ALT", "gt", "10", "uln", "", "discontinue", ["Cemiplimab"], True,
     "ALT > 10 x ULN (cemiplimab)", CEMIPLIMAB, CEMIPLIMAB_DATE),
    ("ast-discontinue-cemiplimab", "AST", "gt", "10", "uln", "", "discontinue", ["Cemiplimab"], True,
     "AST > 10 x ULN (cemiplimab)", CEMIPLIMAB, CEMIPLIMAB_DATE),
    ("alt-discontinue-ipilimumab", "ALT", "gt", "5", "uln", "", "discontinue", ["Ipilimumab"], True,
     "ALT > 5 x ULN (ipilimumab)", IPI, CLASS_DATE),
    ("ast-discontinue-ipilimumab", "AST", "gt", "5", "uln", "", "discontinue", ["Ipilimumab"], True,
     "AST > 5 x ULN (ipilimumab)", IPI, CLASS_DATE),
    ("bilirubin-withhold", "Total bilirubin", "gt", "1.5", "uln", "", "withhold", CPI, True,
     "Total bilirubin > 1.5 x ULN", CLASS, CLASS_DATE),
    ("bilirubin-discontinue", "Total bilirubin", "gt", "3", "uln", "", "discontinue", CPI, True,
     "Total bilirubin > 3 x ULN", CLASS, CLASS_DATE),
    ("creatinine-withhold", "Creatinine", "gt", "1.5", "uln", "", "withhold", CPI, True,
     "Creatinine > 1.5 x ULN (nephritis grade 2-3)", f"{KEYTRUDA}; CTCAE v5.0 creatinine increased", KEYTRUDA_DATE),
    ("creatinine-discontinue", "Creatinine", "gt", "6", "uln", "", "discontinue", CPI, True,
     "Creatinine > 6 x ULN (nephritis grade 4)", f"{KEYTRUDA}; CTCAE v5.0 creatinine increased", KEYTRUDA_DATE),
    ("glucose-withhold", "Glucose", "gt", "250", "absolute", "mg/dL", "withhold", CPI, True,
     "Glucose > 250 mg/dL (hyperglycaemia grade 3)", f"{KEYTRUDA}; ASCO 2021 Table 4 (G3 > 250 mg/dL)",
     KEYTRUDA_DATE),
    ("troponin-withhold", "Troponin I (high-sensitivity)", "gt", "1", "uln", "", "withhold", CPI, False,
     "Troponin above its upper reference limit (myocarditis suspected)",
     f"{KEYTRUDA} (myocarditis grade 2-4: permanently discontinue once confirmed); ASCO 2021 §9", KEYTRUDA_DATE),
    ("anc-withhold", "Neutrophils (ANC)", "lt", "1.0", "absolute", "10*3/uL", "withhold", CPI, True,
     "ANC < 1.0 x 10^9/L", SITE, SITE_DATE),
    ("platelets-withhold", "Platelets", "lt", "50", "absolute", "10*3/uL", "withhold", CPI, True,
     "Platelets < 50 x 10^9/L", SITE, SITE_DATE),
]  # fmt: skip
RULE_FIELDS = ("comparator", "threshold", "reference", "unit", "action", "requires_result", "description", "source",
               "effective_from")  # fmt: skip

OPDIVO = ("OPDIVO US PI §2 preparation and administration", date(2026, 1, 1))
DRUGS = {
    "Pembrolizumab": {
        "stability_room": 6 * H, "stability_refrigerated": 96 * H, "in_use_includes_infusion": True,
        "protect_from_light": True, "source": f"{KEYTRUDA}; §2.x preparation (96 h R / 6 h RT to end of infusion)",
        "effective_from": KEYTRUDA_DATE,
    },
    "Nivolumab": {
        "stability_room": 8 * H, "stability_refrigerated": 7 * 24 * H, "in_use_includes_infusion": True,
        "max_final_volume_ml": D(160), "max_final_volume_ml_per_kg": D(4), "per_kg_volume_below_kg": D(40),
        "protect_from_light": True, "source": OPDIVO[0], "effective_from": OPDIVO[1],
    },
    "Ipilimumab": {
        "may_give_undiluted": True, "protect_from_light": True,
        "source": "YERVOY EU SmPC §6.6 (undiluted 5 mg/mL or diluted); US PI §2: diluted 1-2 mg/mL, 24 h RT or R",
        "effective_from": date(2023, 2, 15),
    },
    "Atezolizumab": {
        "bag_sizes_ml": [D(250)], "stability_room": 6 * H, "stability_refrigerated": 24 * H,
        "in_use_includes_infusion": True, "protect_from_light": True,
        "source": "TECENTRIQ US PI §2 (250 mL bag; 6 h RT incl. infusion, 24 h R); 3.2-16.8 mg/mL EU SmPC",
        "effective_from": date(2024, 2, 22),
    },
    "Durvalumab": {
        "stability_room": 4 * H, "stability_refrigerated": 24 * H, "in_use_includes_infusion": False,
        "source": "IMFINZI US PI §2.2 Table 1, §2.3 (puncture to start of infusion: 24 h R, 4 h RT)",
        "effective_from": date(2026, 1, 2),
    },
    "Cemiplimab": {
        "stability_room": 8 * H, "stability_refrigerated": 24 * H, "in_use_includes_infusion": True,
        "protect_from_light": True, "source": "LIBTAYO US PI §2 (8 h RT / 24 h R to end of infusion)",
        "effective_from": CEMIPLIMAB_DATE,
    },
    "Axicabtagene ciloleucel": {
        "thaw_to_infusion_limit": 3 * H, "rescue_drug": "Tocilizumab", "rescue_doses_required": 2,
        "premedication": "Acetaminophen 650 mg PO and diphenhydramine 12.5 mg IV or PO, about 1 h before",
        "biosafety_level": "BSL-2",
        "source": "YESCARTA US PI §2.1-2.2 (04/2024); thaw window 3 h; biosafety level: site policy (GK)",
        "effective_from": date(2024, 4, 19),
    },
}  # fmt: skip
REGIMENS = {
    "Ipilimumab 3 mg/kg q3w x4": {
        "course_window_days": 112, "rounding_tolerance_percent": D(10),
        "source": "YERVOY US PI 2011-2018 §2.1: all doses within 16 weeks of the first (site policy since)",
        "effective_from": date(2018, 1, 1),
    },
    "Durvalumab 1500 mg q4w": {
        "rounding_tolerance_percent": D(10), "source": "IMFINZI US PI §2.2 Table 1", "effective_from": date(2026, 1, 2),
    },
    "Axicabtagene ciloleucel single infusion": {
        "dose_basis": "cells_per_kg", "cells_per_kg": 2_000_000, "cells_max": 200_000_000,
        "source": "YESCARTA US PI §2.1: 2 x 10^6 CAR+ viable T cells/kg, max 2 x 10^8", "effective_from": date(2024, 4, 19),
    },
}  # fmt: skip
BANDS = {
    "Durvalumab 1500 mg q4w": [
        {"weight_from_kg": D(30), "weight_below_kg": None, "dose_basis": "flat", "dose_amount": D(1500),
         "note": "1500 mg at 30 kg or more"},
        {"weight_from_kg": None, "weight_below_kg": D(30), "dose_basis": "mg_per_kg", "dose_amount": D(20),
         "note": "Under 30 kg: 20 mg/kg"},
    ],
}  # fmt: skip


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    Regimen = apps.get_model("orders", "Regimen")
    RegimenDoseBand = apps.get_model("orders", "RegimenDoseBand")
    HoldRule = apps.get_model("orders", "HoldRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    for name, values in DRUGS.items():
        Drug.objects.filter(name=name).update(**values)
    for name, values in REGIMENS.items():
        Regimen.objects.filter(name=name).update(**values)
    for name, bands in BANDS.items():
        regimen = Regimen.objects.filter(name=name).first()
        if regimen is not None and not RegimenDoseBand.objects.filter(regimen=regimen).exists():
            for band in bands:
                RegimenDoseBand.objects.create(regimen=regimen, **band)
    tests = {t.name: t for t in LabTest.objects.all()}
    drugs = {d.name: d for d in Drug.objects.all()}
    now = timezone.now()
    for (
        key,
        test,
        comparator,
        threshold,
        reference,
        unit,
        action,
        drug_names,
        required,
        text,
        source,
        when,
    ) in HOLD_RULES:
        if test not in tests:
            continue
        wanted = {
            "comparator": comparator, "threshold": D(threshold), "reference": reference, "unit": unit,
            "action": action, "requires_result": required, "description": text, "source": source,
            "effective_from": when,
        }  # fmt: skip
        current = HoldRule.objects.filter(key=key, active=True, superseded_by__isnull=True).first()
        if current is not None and all(getattr(current, f) == wanted[f] for f in RULE_FIELDS):
            continue
        version = 1
        if current is not None:
            version = current.version + 1
            HoldRule.objects.filter(pk=current.pk).update(active=False)
        rule = HoldRule.objects.create(
            key=key, version=version, lab_test=tests[test], lookback_days=14, created_at=now, **wanted
        )
        rule.drugs.set([drugs[name] for name in drug_names if name in drugs])
        if current is not None:
            HoldRule.objects.filter(pk=current.pk).update(superseded_by=rule)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_gate_rules_cells"),
        ("monitoring", "0009_seed_cmp_and_cell_therapy_tests"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
