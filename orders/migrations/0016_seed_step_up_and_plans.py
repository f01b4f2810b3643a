"""Step-up bispecifics and a phased checkpoint plan, as data (docs/clinical-sources.md §10; admin-editable).

- Teclistamab (TECVAYLI US PI §2.1-2.2, checked 2026-12-01 against the label text reproduced by prescriberpoint.com,
  last updated 2025-12-12, and drugs.com, 2024-07-05): SC, 0.06 mg/kg day 1, 0.3 mg/kg day 4, 1.5 mg/kg day 7 (the
  step-up schedule), then 1.5 mg/kg weekly. Pretreatment (corticosteroid, H1 antagonist, antipyretic) 1 to 3 hours
  before each dose of the step-up schedule, the first treatment dose included; hospitalised for 48 hours after each
  of them. Step-up doses from the 10 mg/mL vial (30 mg/3 mL), treatment doses from the 90 mg/mL vial
  (153 mg/1.7 mL); measured to 0.01 mL. The every-2-weeks option (complete response for at least 6 months) is not
  seeded: it is a decision on a running course, not a regimen to start.
- Epcoritamab, DLBCL (EPKINLY US PI §2.1-2.2 Table 1): SC, 28-day cycles; cycle 1 0.16 mg day 1, 0.8 mg day 8, 48 mg
  days 15 and 22; cycles 2-3 days 1, 8, 15, 22; cycles 4-9 days 1 and 15; cycle 10 on day 1, every 4 weeks. Premedicate
  before each dose of cycle 1; hospitalised 24 hours after the cycle 1 day 15 dose. Seeded INACTIVE: the 0.16 and
  0.8 mg doses need the label's dilution (§2.7/§2.8), whose volumes the search could not verify, so their strength is
  not seeded and LabFlow refuses to calculate them (fail closed) until pharmacy enters the diluted concentration on
  steps 1 and 2 and activates the regimen.
- Nivolumab 1 mg/kg + ipilimumab 3 mg/kg q3w x4, then nivolumab 480 mg q4w or 240 mg q2w (OPDIVO US PI §2 Table 1,
  melanoma): two plans. The label starts the single agent "after completing 4 doses of combination therapy" and
  gives no day; LabFlow starts it 21 days after the last combination dose (one q3w interval, site policy, GK).
- Monitoring: the nivolumab 1 mg/kg regimen gets the checkpoint-inhibitor plan (pre-dose CBC and CMP, TSH before
  every dose, the baseline labs of 0005). A CBC before each bispecific dose (minimal; the CRS/ICANS assessments around step-up doses are issue
  14's assessment scheduling, not seeded here).
"""

import importlib
from datetime import date
from decimal import Decimal as D

from django.db import migrations

TECVAYLI = "TECVAYLI US PI §2.1-2.2 (Table 1; pretreatment 1-3 h before; 48 h hospitalisation)"
TECVAYLI_DATE = date(2025, 12, 12)
EPKINLY = "EPKINLY US PI §2.1-2.2 Table 1 (DLBCL 2-step-up schedule; 24 h hospitalisation after C1D15)"
EPKINLY_DATE = date(2024, 7, 26)
OPDIVO = "OPDIVO US PI §2 Table 1 (melanoma: 1 mg/kg + ipilimumab 3 mg/kg q3w x4, then 240 mg q2w or 480 mg q4w)"
OPDIVO_DATE = date(2026, 1, 1)
CLASSES = ["corticosteroid", "h1_antagonist", "antipyretic"]
TEC_PREMED = "Dexamethasone 16 mg, diphenhydramine 50 mg, acetaminophen 650-1000 mg (PO or IV), 1-3 h before"
EPC_PREMED = "Prednisolone 100 mg (or equivalent), diphenhydramine 50 mg, acetaminophen 650-1000 mg, 30-120 min before"
CBC = "CBC with differential"

DRUGS = {
    "Teclistamab": {
        "target": "BCMA x CD3", "strength_mg_per_ml": D(90), "vial_contents_mg": [D(153)], "allowed_diluents": [],
        "bag_sizes_ml": [], "dose_step_mg": D("0.1"), "volume_step_ml": D("0.01"),
        "source": "TECVAYLI US PI §3, §16 (10 mg/mL 30 mg/3 mL and 90 mg/mL 153 mg/1.7 mL single-dose vials; SC)",
        "effective_from": TECVAYLI_DATE,
    },
    "Epcoritamab": {
        "target": "CD20 x CD3", "strength_mg_per_ml": D(60), "vial_contents_mg": [D(48)], "allowed_diluents": [],
        "bag_sizes_ml": [], "dose_step_mg": D("0.01"), "volume_step_ml": D("0.01"),
        "source": "EPKINLY US PI §3, §16 (4 mg/0.8 mL and 48 mg/0.8 mL single-dose vials; SC)",
        "effective_from": EPKINLY_DATE,
    },
}  # fmt: skip

TEC_STEP = {
    "premedication_required": True, "premedication_classes": CLASSES, "premedication": TEC_PREMED,
    "premedication_within_hours": 3, "hospital_stay_hours": 48, "source": TECVAYLI, "effective_from": TECVAYLI_DATE,
}  # fmt: skip
TEC_STEPS = [
    # dose, day, mg/kg, step-up, strength, vials, note
    (1, 1, "0.06", True, D(10), [D(30)], "Step-up dose 1: 10 mg/mL vial"),
    (2, 4, "0.3", True, D(10), [D(30)], "Step-up dose 2: 10 mg/mL vial"),
    (3, 7, "1.5", False, None, [], "First treatment dose: 90 mg/mL vial"),
]


def _epcoritamab_days() -> list[int]:
    """Days of doses 1-25 (cycle 10 day 1 is the last listed day; then every 28 days)."""

    def day(cycle: int, day_of_cycle: int) -> int:
        return 28 * (cycle - 1) + day_of_cycle

    days = [day(c, d) for c in (1, 2, 3) for d in (1, 8, 15, 22)]
    days += [day(c, d) for c in range(4, 10) for d in (1, 15)]
    return [*days, day(10, 1)]


EPC_PREMED_STEP = {
    "premedication_required": True, "premedication_classes": CLASSES, "premedication": EPC_PREMED,
    "premedication_within_hours": 2,
}  # fmt: skip


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    Regimen = apps.get_model("orders", "Regimen")
    RegimenStep = apps.get_model("orders", "RegimenStep")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    TherapyPlan = apps.get_model("orders", "TherapyPlan")
    TherapyPlanPhase = apps.get_model("orders", "TherapyPlanPhase")
    LabTest = apps.get_model("monitoring", "LabTest")
    cbc = LabTest.objects.filter(name=CBC).first()
    drugs = {name: Drug.objects.get_or_create(name=name, defaults=values)[0] for name, values in DRUGS.items()}

    tec, created = Regimen.objects.get_or_create(
        name="Teclistamab step-up 0.06/0.3/1.5 mg/kg then 1.5 mg/kg weekly",
        defaults={
            "drug": drugs["Teclistamab"], "dose_basis": "mg_per_kg", "dose_amount": D("1.5"), "cycle_days": 7,
            "number_of_doses": 26, "infusion_minutes": 5, "rounding_tolerance_percent": None, "source": TECVAYLI,
            "effective_from": TECVAYLI_DATE,
        },
    )  # fmt: skip
    if created:
        for number, day, amount, step_up, strength, vials, note in TEC_STEPS:
            RegimenStep.objects.create(
                regimen=tec, dose_number=number, day=day, dose_amount=D(amount), step_up=step_up,
                strength_mg_per_ml=strength, vial_contents_mg=vials, preparation_note=note, **TEC_STEP,
            )  # fmt: skip

    epc, created = Regimen.objects.get_or_create(
        name="Epcoritamab DLBCL step-up 0.16/0.8 mg then 48 mg",
        defaults={
            "drug": drugs["Epcoritamab"], "dose_basis": "flat", "dose_amount": D(48), "cycle_days": 28,
            "number_of_doses": 27, "infusion_minutes": 5, "rounding_tolerance_percent": None, "source": EPKINLY,
            "effective_from": EPKINLY_DATE, "active": False,
        },
    )  # fmt: skip
    if created:
        for number, day in enumerate(_epcoritamab_days(), start=1):
            cycle_1 = number <= 4
            RegimenStep.objects.create(
                regimen=epc, dose_number=number, day=day, step_up=number <= 2,
                dose_amount={1: D("0.16"), 2: D("0.8")}.get(number),
                vial_contents_mg=[D(4)] if number <= 2 else [],
                hospital_stay_hours=24 if number == 3 else 0,
                preparation_note=(
                    "Dilute per EPKINLY US PI §2.7 or §2.8 (4 mg/0.8 mL vial); pharmacy enters the diluted "
                    "strength here before activating the regimen" if number <= 2 else ""
                ),
                source=EPKINLY, effective_from=EPKINLY_DATE, **(EPC_PREMED_STEP if cycle_1 else {}),
            )  # fmt: skip

    nivo = Drug.objects.get(name="Nivolumab")
    nivo_combo, created = Regimen.objects.get_or_create(
        name="Nivolumab 1 mg/kg q3w x4 (with ipilimumab)",
        defaults={
            "drug": nivo, "dose_basis": "mg_per_kg", "dose_amount": D(1), "cycle_days": 21, "number_of_doses": 4,
            "infusion_minutes": 30, "rounding_tolerance_percent": D(10), "source": OPDIVO,
            "effective_from": OPDIVO_DATE,
        },
    )  # fmt: skip
    tsh = LabTest.objects.filter(name="TSH").first()
    cmp_ = LabTest.objects.filter(name="Comprehensive metabolic panel").first()
    if created:
        for test in (cbc, cmp_):
            if test is not None:
                MonitoringRule.objects.create(regimen=nivo_combo, lab_test=test, kind="pre_dose")
        if tsh is not None:
            MonitoringRule.objects.create(regimen=nivo_combo, lab_test=tsh, kind="every_nth_dose", every_nth_dose=1)
    for regimen in (tec, epc):
        if cbc is not None and not MonitoringRule.objects.filter(regimen=regimen, lab_test=cbc).exists():
            MonitoringRule.objects.create(regimen=regimen, lab_test=cbc, kind="pre_dose", lead_hours=24)

    # The checkpoint-inhibitor baseline labs of 0005 (TSH is ordered before every dose here, so no second one).
    importlib.import_module("orders.migrations.0005_monitoring_plans").seed(apps, schema_editor)

    ipi = Regimen.objects.get(name="Ipilimumab 3 mg/kg q3w x4")
    for maintenance in ("Nivolumab 480 mg q4w", "Nivolumab 240 mg q2w"):
        plan, created = TherapyPlan.objects.get_or_create(
            name=f"Nivolumab + ipilimumab (melanoma), then {maintenance.lower()}",
            defaults={"source": OPDIVO, "effective_from": OPDIVO_DATE},
        )
        if created:
            for regimen in (nivo_combo, ipi):
                TherapyPlanPhase.objects.create(plan=plan, position=1, regimen=regimen, source=OPDIVO,
                                                effective_from=OPDIVO_DATE)  # fmt: skip
            TherapyPlanPhase.objects.create(
                plan=plan, position=2, regimen=Regimen.objects.get(name=maintenance), starts_days_after_previous=21,
                source="OPDIVO US PI §2 Table 1: after completing 4 doses (no day given; 21 days: site policy, GK)",
                effective_from=OPDIVO_DATE,
            )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0015_audit_triggers_cover_all_new_fields"),
        ("monitoring", "0008_seed_panel_components"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
