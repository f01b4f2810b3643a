"""Monitoring plans that match the guidelines (docs/clinical-sources.md "Monitoring plans"; admin-editable).

Checkpoint inhibitors (every regimen whose drug is not a cell product), baseline before dose 1 (ASCO 2021 / ESMO /
SITC 2017 Table 1): TSH and free T4, HbA1c, CK and high-sensitivity troponin I gate dose 1; an 8 am cortisol is
ordered too but does not gate (SITC: "when indicated"). The pre-dose CBC and CMP (all 14 components of LOINC
24323-8 since monitoring 0009) already cover dose 1. A regimen whose TSH rule already orders TSH before dose 1
(every n-th dose, pre-dose) gets no second, baseline TSH. Baseline tests are due 72 h before dose 1 so that the
24 h tests are back in time, and accepted if drawn up to 14 days before it (GK; site-editable).

Axicabtagene ciloleucel, days 0-14 after the infusion, daily, not gating (TLS and coagulopathy; clinical.md
"CAR T-cell therapy"): PT and INR, aPTT, fibrinogen, LDH, uric acid, phosphate, magnesium (next to the CBC, CMP,
CRP and ferritin of 0002)."""

from django.db import migrations

BASELINE = {"lead_hours": 72, "window_hours": 14 * 24, "grace_hours": 24}
BASELINE_TESTS = [
    ("TSH", True), ("Free T4", True), ("HbA1c", True), ("CK", True), ("Troponin I (high-sensitivity)", True),
    ("Cortisol", False),
]  # fmt: skip
CHECKPOINT_TARGETS = ["PD-1", "PD-L1", "CTLA-4"]
TSH_BEFORE_DOSE_1 = ("pre_dose", "every_nth_dose")  # kinds that already order TSH before dose 1
CAR_T_REGIMEN = "Axicabtagene ciloleucel single infusion"
CAR_T_DAILY = ["PT", "INR", "aPTT", "Fibrinogen", "LDH", "Uric acid", "Phosphate", "Magnesium"]
DAILY = {"day_from": 0, "day_to": 14, "gates_dose": False}


def seed(apps, schema_editor):
    Regimen = apps.get_model("orders", "Regimen")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    tests = {t.name: t for t in LabTest.objects.all()}
    # Checkpoint inhibitors only (their targets): later catalogue rows (the step-up bispecifics, lymphodepletion,
    # T-VEC) have plans of their own (the same on a fresh database, where they do not exist yet).
    for regimen in Regimen.objects.filter(drug__cell_therapy=False, drug__target__in=CHECKPOINT_TARGETS):
        tsh_covered = MonitoringRule.objects.filter(
            regimen=regimen, lab_test__name="TSH", kind__in=TSH_BEFORE_DOSE_1
        ).exists()
        for name, gates in BASELINE_TESTS:
            if name not in tests or (name == "TSH" and tsh_covered):
                continue
            MonitoringRule.objects.get_or_create(
                regimen=regimen, lab_test=tests[name], kind="baseline", defaults={**BASELINE, "gates_dose": gates}
            )
    car_t = Regimen.objects.filter(name=CAR_T_REGIMEN).first()
    if car_t is not None:
        for name in CAR_T_DAILY:
            if name in tests:
                MonitoringRule.objects.get_or_create(
                    regimen=car_t, lab_test=tests[name], kind="daily_after_infusion", defaults=DAILY
                )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_label_rules"),
        ("results", "0005_seed_new_tests"),
        ("monitoring", "0010_seed_new_turnaround"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
