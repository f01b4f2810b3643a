"""More cell products, sipuleucel-T, talimogene laherparepvec and the lymphodepleting chemotherapy, from their
current US labels (docs/clinical-sources.md §11; every row admin-editable, each with its source and date).

- Five CAR-T products, each seeded for its main adult indication (named in the regimen): cell dose, the label's
  lymphodepleting regimen (as text on the regimen; the chemotherapy is ordered as its own course), premedication,
  tocilizumab on hand, thaw-to-infusion limit where the retrieved label gives one (else none: the product cannot
  be thawed until the admin enters it, fail closed), proximity and no-driving periods (2 weeks, labels of 6/2025),
  and the monitoring rules of the axicabtagene ciloleucel regimen, copied.
- Sipuleucel-T: three doses about 2 weeks apart, each bag fresh (not frozen) with its own chain-of-identity ID and
  expiry time; at least 50 million CD54+ cells a dose; 60 min infusion; oral acetaminophen and an antihistamine
  about 30 min before.
- Talimogene laherparepvec: 10^6 PFU/mL for dose 1, 10^8 PFU/mL from 3 weeks later then every 2 weeks, at most
  4 mL a visit by lesion size (orders.lesions); stored frozen -90 to -70 °C; staff who are pregnant or
  immunocompromised do not prepare it.
- Fludarabine and cyclophosphamide (NIOSH hazardous drugs, USP <800>): the lymphodepleting doses of the labels
  above, daily for 3 days.
"""

from datetime import date, timedelta
from decimal import Decimal as D

from django.db import migrations

H = timedelta(hours=1)
NS_D5W = ["0.9% sodium chloride", "5% dextrose"]
BSL = "BSL-2"
PERIODS = {"proximity_days": 14, "no_driving_days": 14, "periods_effective_from": date(2025, 6, 26)}
CAR_T = {"strength_mg_per_ml": D(1), "vial_contents_mg": [D(1)], "allowed_diluents": [], "cell_therapy": True,
         "filter_note": "No leukodepleting filter", "rescue_drug": "Tocilizumab", "rescue_doses_required": 2,
         "biosafety_level": BSL}  # fmt: skip
AXI_CEL_REGIMEN = "Axicabtagene ciloleucel single infusion"

DRUGS = {
    "Tisagenlecleucel": {
        **CAR_T, "target": "CD19 CAR T", "thaw_to_infusion_limit": timedelta(minutes=30),
        "premedication": "Acetaminophen and diphenhydramine (or another H1-antihistamine), 30-60 min before",
        "source": "KYMRIAH US PI §2 (D&A 2.3 rev. 6/2025; openFDA 2026-06-09); thaw: infuse within 30 min of thaw "
                  "(EJHP 2022 5PSQ-107, secondary); BSL site policy (GK)",
        "effective_from": date(2025, 6, 1),
        "periods_source": "KYMRIAH USPI: REMS (5.3) removed 6/2025; 2 weeks proximity, 2 weeks no driving",
        **PERIODS,
    },
    "Lisocabtagene maraleucel": {
        **CAR_T, "target": "CD19 CAR T", "thaw_to_infusion_limit": 2 * H,
        "premedication": "Acetaminophen 650 mg PO and diphenhydramine 25-50 mg IV or PO, 30-60 min before",
        "source": "BREYANZI US PI §2.1-2.2 (D&A 2.1 rev. 12/2025, 2.2-2.3 rev. 6/2025): removal from frozen "
                  "storage to administration at most 2 h; BSL site policy (GK)",
        "effective_from": date(2025, 12, 1),
        "periods_source": "BREYANZI USPI: REMS (5.3) removed 6/2025; 2 weeks proximity, 2 weeks no driving",
        **PERIODS,
    },
    "Brexucabtagene autoleucel": {
        **CAR_T, "target": "CD19 CAR T", "thaw_to_infusion_limit": None,
        "premedication": "Acetaminophen 650 mg PO and diphenhydramine 12.5 mg IV or PO, about 1 h before",
        "source": "TECARTUS US PI §2.1-2.2 (openFDA 2026-08-11); thaw-to-infusion limit NOT VERIFIED: none "
                  "seeded (cannot be thawed until entered); BSL site policy (GK)",
        "effective_from": date(2025, 6, 1),
        "periods_source": "FDA safety communication 26 Jun 2025 (REMS removed, all autologous CD19/BCMA CAR T): "
                          "2 weeks proximity, 2 weeks no driving",
        **PERIODS,
    },
    "Idecabtagene vicleucel": {
        **CAR_T, "target": "BCMA CAR T", "thaw_to_infusion_limit": None,
        "premedication": "Acetaminophen 650 mg PO and diphenhydramine 12.5 mg IV or 25-50 mg PO, 30-60 min before",
        "source": "ABECMA US PI §2.1-2.2 (D&A 2.2 rev. 11/2025; drugs.com copy 4 Apr 2024); thaw-to-infusion "
                  "limit NOT VERIFIED: none seeded (cannot be thawed until entered); BSL site policy (GK)",
        "effective_from": date(2025, 11, 1),
        "periods_source": "ABECMA USPI: REMS (5.5) and driving (5.11) sections removed 6/2025; 2 weeks proximity, "
                          "2 weeks no driving",
        **PERIODS,
    },
    "Ciltacabtagene autoleucel": {
        **CAR_T, "target": "BCMA CAR T", "thaw_to_infusion_limit": timedelta(hours=2, minutes=30),
        "premedication": "Acetaminophen 650-1000 mg PO or IV and diphenhydramine 25-50 mg PO or IV, 30-60 min before",
        "source": "CARVYKTI US PI §2.1-2.2 (J&J medical information; openFDA 2026-07-21): infusion complete "
                  "within 2.5 h of thaw at 20-25 °C, at least 2 doses of tocilizumab; BSL site policy (GK)",
        "effective_from": date(2025, 6, 1),
        "periods_source": "FDA safety communication 26 Jun 2025 (REMS removed, all autologous CD19/BCMA CAR T): "
                          "2 weeks proximity, 2 weeks no driving",
        **PERIODS,
    },
    "Sipuleucel-T": {
        "target": "PAP-GM-CSF activated APCs", "strength_mg_per_ml": D(1), "vial_contents_mg": [D(1)],
        "allowed_diluents": [], "cell_therapy": True, "fresh_product": True,
        "filter_note": "Do not use a cell filter",
        "premedication": "Acetaminophen and an antihistamine (e.g. diphenhydramine) orally, about 30 min before",
        "storage_note": "Keep the bag in its insulated container until infusion; never frozen, never thawed",
        "source": "PROVENGE US PI §2 (drugs.com copy 29 Apr 2019; themeditary copy of the current §2): 3 doses "
                  "about 2 weeks apart, infusion must begin before the expiry date and time on the product label",
        "effective_from": date(2019, 4, 29),
    },
    "Talimogene laherparepvec": {
        "target": "Oncolytic HSV-1 (GM-CSF)", "strength_mg_per_ml": D(1), "vial_contents_mg": [D(1)],
        "allowed_diluents": [], "intralesional": True, "biosafety_level": BSL, "protect_from_light": True,
        "preparer_exclusions": "staff who are pregnant or immunocompromised must not prepare or administer it",
        "storage_note": "Frozen -90 °C to -70 °C in the carton, protected from light; do not refreeze once thawed",
        "thaw_to_infusion_limit": 12 * H, "filter_note": "Intralesional only: never intravenous",
        "source": "IMLYGIC US PI §2.1-2.2, §5.1, §16 (prescriberpoint/imlygic.com copies); thawed 10^6 PFU/mL vial "
                  "stable 12 h at 8-25 °C (SPS 19 Mar 2021): the shorter limit of both strengths",
        "effective_from": date(2023, 1, 1),
    },
    "Fludarabine": {
        "target": "Purine analogue (lymphodepletion)", "strength_mg_per_ml": D(25), "vial_contents_mg": [D(50)],
        "allowed_diluents": NS_D5W, "hazardous": True, "bag_sizes_ml": [D(100)],
        "source": "Fludarabine phosphate injection USP label (25 mg/mL, 50 mg/2 mL; IV over about 30 min); NIOSH "
                  "hazardous drug (USP <800>); in-use stability NOT VERIFIED: USP <797> limits only",
        "effective_from": date(2023, 7, 24),
    },
    "Cyclophosphamide": {
        "target": "Alkylating agent (lymphodepletion)", "strength_mg_per_ml": D(20),
        "vial_contents_mg": [D(500), D(1000), D(2000)], "allowed_diluents": NS_D5W, "hazardous": True,
        "source": "Cyclophosphamide for injection USP label (reconstituted 20 mg/mL); NIOSH hazardous drug "
                  "(USP <800>); in-use stability (24 h RT) from a secondary source only: USP <797> limits only",
        "effective_from": date(2023, 1, 1),
    },
}  # fmt: skip

LD_30_500 = "Fludarabine 30 mg/m² IV + cyclophosphamide 500 mg/m² IV on days -5, -4 and -3"
LD_30_300 = "Fludarabine 30 mg/m² IV + cyclophosphamide 300 mg/m² IV daily for 3 days"
REGIMENS = {
    "Tisagenlecleucel single infusion (adult LBCL)": {
        "drug": "Tisagenlecleucel", "dose_basis": "cells_flat", "dose_amount": D(1), "cells_min": 60_000_000,
        "cells_max": 600_000_000, "cycle_days": 1, "number_of_doses": 1, "infusion_minutes": 30,
        "lymphodepletion": "Fludarabine 25 mg/m² IV + cyclophosphamide 250 mg/m² IV daily for 3 days (or bendamustine "
                           "90 mg/m² daily for 2 days), 2-11 days before; omit if WBC ≤ 1 x 10^9/L",
        "source": "KYMRIAH US PI §2.1 adult LBCL: 0.6-6.0 x 10^8 CAR+ viable T cells (not weight-based)",
        "effective_from": date(2025, 6, 1),
    },
    "Lisocabtagene maraleucel single infusion (LBCL)": {
        "drug": "Lisocabtagene maraleucel", "dose_basis": "cells_flat", "dose_amount": D(1), "cells_min": 50_000_000,
        "cells_max": 110_000_000, "cycle_days": 1, "number_of_doses": 1, "infusion_minutes": 30,
        "lymphodepletion": LD_30_300 + ", 2-7 days before",
        "source": "BREYANZI US PI §2.1 LBCL: 50-110 x 10^6 CAR+ viable T cells (CD8:CD4 1:1)",
        "effective_from": date(2025, 12, 1),
    },
    "Brexucabtagene autoleucel single infusion (MCL)": {
        "drug": "Brexucabtagene autoleucel", "dose_basis": "cells_per_kg", "dose_amount": D(1),
        "cells_per_kg": 2_000_000, "cells_max": 200_000_000, "cycle_days": 1, "number_of_doses": 1,
        "infusion_minutes": 30, "lymphodepletion": LD_30_500,
        "source": "TECARTUS US PI §2.1 MCL: 2 x 10^6 CAR+ viable T cells/kg, max 2 x 10^8",
        "effective_from": date(2025, 6, 1),
    },
    "Idecabtagene vicleucel single infusion (MM)": {
        "drug": "Idecabtagene vicleucel", "dose_basis": "cells_flat", "dose_amount": D(1), "cells_min": 300_000_000,
        "cells_max": 510_000_000, "cycle_days": 1, "number_of_doses": 1, "infusion_minutes": 30,
        "lymphodepletion": "Cyclophosphamide 300 mg/m² IV + fludarabine 30 mg/m² IV daily for 3 days, 2 days before",
        "source": "ABECMA US PI §2.1: 300-510 x 10^6 CAR+ T cells (older copies: 300-460)",
        "effective_from": date(2024, 4, 4),
    },
    "Ciltacabtagene autoleucel single infusion (MM)": {
        "drug": "Ciltacabtagene autoleucel", "dose_basis": "cells_per_kg", "dose_amount": D(1),
        "cells_per_kg": 1_000_000, "cells_per_kg_min": 500_000, "cells_max": 100_000_000, "cycle_days": 1,
        "number_of_doses": 1, "infusion_minutes": 30,
        "lymphodepletion": "Cyclophosphamide 300 mg/m² IV + fludarabine 30 mg/m² IV daily for 3 days, 2-4 days "
                           "before",
        "source": "CARVYKTI US PI §2.1: 0.5-1.0 x 10^6 CAR+ viable T cells/kg, max 1 x 10^8 per infusion",
        "effective_from": date(2024, 7, 5),
    },
    "Sipuleucel-T 3 doses q2w": {
        "drug": "Sipuleucel-T", "dose_basis": "cells_flat", "dose_amount": D(1), "cells_min": 50_000_000,
        "cycle_days": 14, "number_of_doses": 3, "infusion_minutes": 60,
        "source": "PROVENGE US PI §2.1: 3 doses about 2 weeks apart, each at least 50 million autologous CD54+ "
                  "cells; infuse over about 60 min; each from a leukapheresis about 3 days before",
        "effective_from": date(2019, 4, 29),
    },
    "Talimogene laherparepvec intralesional": {
        "drug": "Talimogene laherparepvec", "dose_basis": "flat", "dose_amount": D(1), "cycle_days": 14,
        "first_interval_days": 21, "number_of_doses": 13, "infusion_minutes": 30,
        "pfu_per_ml_first_dose": 1_000_000, "pfu_per_ml": 100_000_000, "max_volume_ml_per_visit": D(4),
        "source": "IMLYGIC US PI §2.1 Table 1: up to 4 mL of 10^6 PFU/mL, then 10^8 PFU/mL 3 weeks later and every "
                  "2 weeks; at least 6 months (13 visits: site policy, GK)",
        "effective_from": date(2023, 1, 1),
    },
    "Fludarabine 30 mg/m² daily x3 (lymphodepletion)": {
        "drug": "Fludarabine", "dose_basis": "mg_per_m2", "dose_amount": D(30), "cycle_days": 1,
        "number_of_doses": 3, "infusion_minutes": 30,
        "source": "YESCARTA, TECARTUS, BREYANZI, ABECMA, CARVYKTI US PI §2 (lymphodepleting regimen)",
        "effective_from": date(2025, 6, 1),
    },
    "Fludarabine 25 mg/m² daily x3 (tisagenlecleucel lymphodepletion)": {
        "drug": "Fludarabine", "dose_basis": "mg_per_m2", "dose_amount": D(25), "cycle_days": 1,
        "number_of_doses": 3, "infusion_minutes": 30, "source": "KYMRIAH US PI §2 (LBCL/FL lymphodepletion)",
        "effective_from": date(2025, 6, 1),
    },
    "Cyclophosphamide 500 mg/m² daily x3 (lymphodepletion)": {
        "drug": "Cyclophosphamide", "dose_basis": "mg_per_m2", "dose_amount": D(500), "cycle_days": 1,
        "number_of_doses": 3, "infusion_minutes": 60,
        "source": "YESCARTA and TECARTUS US PI §2: days -5, -4, -3", "effective_from": date(2024, 4, 19),
    },
    "Cyclophosphamide 300 mg/m² daily x3 (lymphodepletion)": {
        "drug": "Cyclophosphamide", "dose_basis": "mg_per_m2", "dose_amount": D(300), "cycle_days": 1,
        "number_of_doses": 3, "infusion_minutes": 60,
        "source": "BREYANZI, ABECMA, CARVYKTI US PI §2", "effective_from": date(2025, 6, 1),
    },
    "Cyclophosphamide 250 mg/m² daily x3 (tisagenlecleucel lymphodepletion)": {
        "drug": "Cyclophosphamide", "dose_basis": "mg_per_m2", "dose_amount": D(250), "cycle_days": 1,
        "number_of_doses": 3, "infusion_minutes": 60, "source": "KYMRIAH US PI §2 (LBCL/FL lymphodepletion)",
        "effective_from": date(2025, 6, 1),
    },
}  # fmt: skip
CAR_T_REGIMENS = [name for name, r in REGIMENS.items() if DRUGS[r["drug"]].get("cell_therapy")
                  and not DRUGS[r["drug"]].get("fresh_product")]  # fmt: skip
LD_BASELINE = ["CBC with differential", "Comprehensive metabolic panel"]
IGG_RULE_KEY = "cell-therapy-igg-below-ivig-threshold"
RULE_FIELDS = ("lab_test_id", "kind", "window_hours", "lead_hours", "every_nth_dose", "interval_days", "interval_hours",
               "day_from", "day_to", "grace_hours", "gates_dose")  # fmt: skip


def seed(apps, schema_editor):
    Drug = apps.get_model("orders", "Drug")
    Regimen = apps.get_model("orders", "Regimen")
    MonitoringRule = apps.get_model("orders", "MonitoringRule")
    LabPatternRule = apps.get_model("orders", "LabPatternRule")
    LabTest = apps.get_model("monitoring", "LabTest")
    drugs = {}
    for name, values in DRUGS.items():
        drugs[name], _ = Drug.objects.get_or_create(name=name, defaults=values)
    for name, values in REGIMENS.items():
        values = {**values, "drug": drugs[values["drug"]]}
        Regimen.objects.get_or_create(name=name, defaults=values)
    axi_cel = Regimen.objects.filter(name=AXI_CEL_REGIMEN).first()
    template = list(MonitoringRule.objects.filter(regimen=axi_cel)) if axi_cel is not None else []
    for name in CAR_T_REGIMENS:
        regimen = Regimen.objects.get(name=name)
        if MonitoringRule.objects.filter(regimen=regimen).exists():
            continue
        MonitoringRule.objects.bulk_create(
            MonitoringRule(regimen=regimen, **{f: getattr(rule, f) for f in RULE_FIELDS}) for rule in template
        )
    tests = {t.name: t for t in LabTest.objects.filter(name__in=LD_BASELINE)}
    for regimen in Regimen.objects.filter(drug__hazardous=True, name__contains="lymphodepletion"):
        for test_name in LD_BASELINE:
            if test_name in tests:
                MonitoringRule.objects.get_or_create(
                    regimen=regimen, lab_test=tests[test_name], kind="baseline",
                    defaults={"lead_hours": 24, "window_hours": 72, "grace_hours": 12, "gates_dose": True},
                )  # fmt: skip
    igg = LabPatternRule.objects.filter(key=IGG_RULE_KEY, active=True, superseded_by__isnull=True).first()
    if igg is not None:
        igg.drugs.add(*[d for d in drugs.values() if d.cell_therapy and not d.fresh_product])


class Migration(migrations.Migration):
    dependencies = [("orders", "0012_products_hazardous_fields")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
