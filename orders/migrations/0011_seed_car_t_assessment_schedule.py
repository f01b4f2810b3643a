"""CRS/ICANS bedside assessments after a cell-therapy infusion, as data (docs/clinical-sources.md §9; admin-editable).

Every cell-therapy regimen of the catalogue (today: axicabtagene ciloleucel) gets the site protocol:

- every 8 h from day 0 (the infusion) through day 7: 24 assessments, the first at the infusion's time;
- then every 12 h from day 8 through day 14: 14 more, the last at D14 + 12 h;

not gating any dose, with a 2 h grace (an assessment up to 2 h early satisfies it: assessments.services).

The label's minimum is less: YESCARTA USPI (revised 6/2025, REMS removed) asks to monitor patients for signs and
symptoms of CRS and neurologic toxicities at least daily for the first week and for at least 2 weeks after the
infusion. The 8 h / 12 h schedule is the site's protocol (the issue's example plan; GK), stricter than the label.
"""

from django.db import migrations

ASSESSMENT = "CRS/ICANS assessment (ASTCT)"
RULE = {"kind": "daily_after_infusion", "gates_dose": False, "grace_hours": 2}
RULES = [
    # day from, day to (a whole day), every n hours
    (0, 7, 8),
    (8, 14, 12),
]


def seed(apps, schema_editor):
    Regimen = apps.get_model("orders", "Regimen")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    test = LabTest.objects.filter(name=ASSESSMENT).first()
    if test is None:
        return
    for regimen in Regimen.objects.filter(drug__cell_therapy=True):
        for day_from, day_to, hours in RULES:
            MonitoringRule.objects.get_or_create(
                regimen=regimen, lab_test=test, day_from=day_from, day_to=day_to, interval_hours=hours, defaults=RULE
            )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0010_monitoring_rule_interval_hours"),
        ("monitoring", "0015_seed_crs_icans_assessment"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
