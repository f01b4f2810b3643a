"""CRS/ICANS bedside assessments after each step-up dose of a bispecific (docs/clinical-sources.md §10; admin-editable).

A new rule kind, `after_step_up_dose`: every n hours from each dose that has a hospital stay in the regimen's steps
(the label's), through that stay. Teclistamab: the 48 h stay after each dose of the step-up schedule (doses 1-3);
epcoritamab: the 24 h stay after the cycle 1 day 15 dose. Weekly doses after the steps have no stay and get none.

Every 8 h is the site's protocol (the same interval as the CAR-T protocol of 0011, GK), not a label number: the labels
ask for hospitalisation and monitoring for CRS and neurologic toxicity (ICANS) during it, without an interval.
Not gating any dose; 2 h grace as for CAR-T.
"""

from django.db import migrations, models

ASSESSMENT = "CRS/ICANS assessment (ASTCT)"
BISPECIFICS = ["Teclistamab", "Epcoritamab"]
RULE = {"gates_dose": False, "grace_hours": 2, "lead_hours": 0}


def seed(apps, schema_editor):
    Regimen = apps.get_model("orders", "Regimen")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    test = LabTest.objects.filter(name=ASSESSMENT).first()
    if test is None:
        return
    for regimen in Regimen.objects.filter(drug__name__in=BISPECIFICS):
        MonitoringRule.objects.get_or_create(
            regimen=regimen, lab_test=test, kind="after_step_up_dose", interval_hours=8, defaults=RULE
        )


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0015_seed_crs_icans_assessment"),
        ("orders", "0020_seed_blinatumomab"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="monitoringrule",
            name="monitoring_rule_interval_hours_after_infusion",
        ),
        migrations.AlterField(
            model_name="monitoringrule",
            name="kind",
            field=models.CharField(
                choices=[
                    ("baseline", "Baseline, before the first dose"),
                    ("pre_dose", "Before each dose (within the window)"),
                    ("every_nth_dose", "Before every n-th dose"),
                    ("every_n_days", "Every n days while on therapy"),
                    (
                        "daily_after_infusion",
                        "From day a to day b after the infusion, every n days or n hours (empty: daily)",
                    ),
                    ("after_step_up_dose", "Every n hours during the hospital stay after each step-up dose"),
                ],
                max_length=24,
            ),
        ),
        migrations.AlterField(
            model_name="monitoringruleevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("baseline", "Baseline, before the first dose"),
                    ("pre_dose", "Before each dose (within the window)"),
                    ("every_nth_dose", "Before every n-th dose"),
                    ("every_n_days", "Every n days while on therapy"),
                    (
                        "daily_after_infusion",
                        "From day a to day b after the infusion, every n days or n hours (empty: daily)",
                    ),
                    ("after_step_up_dose", "Every n hours during the hospital stay after each step-up dose"),
                ],
                max_length=24,
            ),
        ),
        migrations.AddConstraint(
            model_name="monitoringrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("interval_hours__isnull", True),
                    models.Q(
                        ("interval_days__isnull", True),
                        ("interval_hours__gte", 1),
                        ("kind__in", ["daily_after_infusion", "after_step_up_dose"]),
                    ),
                    _connector="OR",
                ),
                name="monitoring_rule_interval_hours_after_infusion",
            ),
        ),
        migrations.AddConstraint(
            model_name="monitoringrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "after_step_up_dose"), _negated=True),
                    ("interval_hours__isnull", False),
                    _connector="OR",
                ),
                name="monitoring_rule_after_step_up_in_hours",
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
