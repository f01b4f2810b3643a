"""Cell-therapy follow-up after day 14, as data (docs/clinical-sources.md §8; admin-editable).

Every cell-therapy regimen of the catalogue (today: axicabtagene ciloleucel) gets, not gating any dose and with a
72 h grace (outpatient visits; site policy, GK):

- CBC with differential weekly after the daily D0-14 counts: D21, D28 (every 7 days, days 21-28);
- then monthly to month 3: D60, D90 (every 30 days, days 60-90);
- IgG monthly from day 30 to month 3: D30, D60, D90 (every 30 days, days 30-90).

The labels (Yescarta/Kymriah/Breyanzi USPI, "Prolonged cytopenias", "Hypogammaglobulinemia") say to monitor blood
counts and immunoglobulin levels after the infusion but give no schedule. The schedule follows Chakraborty R et al.,
"Late effects after CAR T-cell therapy for lymphoid malignancies", Transplant Cell Ther 2021;27(3):222-229, Table 2:
CBC at least every 30 days after the acute phase until the counts recover; serum IgG monthly beyond day 30 until
IgG > 400 mg/dL. The weekly D21/D28 counts bridge the daily window to the day-28 visit. CMV and HBV monitoring are
not seeded: the label asks for HBV/HCV/HIV screening before cell collection, not for monitoring after the infusion.

Each cell product also gets the post-infusion periods of its current US label (REMS removed, June 2025): stay
within proximity of the treatment centre for at least 2 weeks and do not drive for at least 2 weeks (before: 4 and
8 weeks).

And a lab pattern rule (versioned data, orders.patterns): a verified IgG below settings.IGG_IVIG_THRESHOLD_MG_DL
(400 mg/dL by default, the value in the seeding settings) during a cell-therapy course alerts the oncologists, once
per course. Changing the threshold later is a new version of the rule (admin), not a new setting value.
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import migrations
from django.utils import timezone

CBC, IGG = "CBC with differential", "IgG"
FOLLOW_UP = {"kind": "daily_after_infusion", "gates_dose": False, "grace_hours": 72}
RULES = [
    # lab test, day from, day to, every n days
    (CBC, 21, 28, 7),
    (CBC, 60, 90, 30),
    (IGG, 30, 90, 30),
]
PROXIMITY_DAYS = NO_DRIVING_DAYS = 14
PERIODS_SOURCE = (
    "YESCARTA/KYMRIAH USPI §5 and §17 (revised 6/2025, REMS removed): proximity of the treatment centre "
    ">= 2 weeks, no driving >= 2 weeks after infusion"
)
PERIODS_EFFECTIVE = date(2025, 6, 26)  # FDA safety communication on the REMS removal and label updates
IGG_RULE = {
    "key": "cell-therapy-igg-below-ivig-threshold",
    "name": "Hypogammaglobulinaemia after a cell therapy: IgG below the IVIG threshold",
    "message": "IgG below the IVIG threshold (consider immunoglobulin replacement)",
    "source": "Chakraborty R et al. Transplant Cell Ther 2021;27:222-229 Table 2 (IgG monthly until > 400 mg/dL); "
    "threshold: settings.IGG_IVIG_THRESHOLD_MG_DL at seeding",
    "effective_from": date(2021, 3, 1),
}
IGG_WINDOW_HOURS = 31 * 24  # the monthly result counts when it is verified within a month of its draw


def seed(apps, schema_editor):
    Regimen = apps.get_model("orders", "Regimen")
    Drug = apps.get_model("orders", "Drug")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabPatternRule = apps.get_model("orders", "LabPatternRule")
    LabPatternCondition = apps.get_model("orders", "LabPatternCondition")
    LabTest = apps.get_model("monitoring", "LabTest")
    tests = {t.name: t for t in LabTest.objects.filter(name__in=[CBC, IGG])}
    for regimen in Regimen.objects.filter(drug__cell_therapy=True):
        for name, day_from, day_to, interval in RULES:
            if name in tests:
                MonitoringRule.objects.get_or_create(
                    regimen=regimen, lab_test=tests[name], day_from=day_from, day_to=day_to, interval_days=interval,
                    defaults=FOLLOW_UP,
                )  # fmt: skip
    cell_drugs = list(Drug.objects.filter(cell_therapy=True))
    Drug.objects.filter(pk__in=[d.pk for d in cell_drugs], proximity_days__isnull=True).update(
        proximity_days=PROXIMITY_DAYS,
        no_driving_days=NO_DRIVING_DAYS,
        periods_source=PERIODS_SOURCE,
        periods_effective_from=PERIODS_EFFECTIVE,
    )
    if IGG not in tests or LabPatternRule.objects.filter(key=IGG_RULE["key"]).exists():
        return
    threshold = Decimal(str(getattr(settings, "IGG_IVIG_THRESHOLD_MG_DL", 400)))
    rule = LabPatternRule.objects.create(
        **IGG_RULE, version=1, severity=2, audience="oncologists", days_after_infusion_from=0,
        days_after_infusion_to=None, created_at=timezone.now(),
    )  # fmt: skip
    rule.drugs.add(*cell_drugs)
    LabPatternCondition.objects.create(
        rule=rule, lab_test=tests[IGG], change="below", threshold=threshold, unit="mg/dL", within_hours=IGG_WINDOW_HOURS
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_cell_therapy_follow_up_fields"),
        ("monitoring", "0013_seed_igg"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
