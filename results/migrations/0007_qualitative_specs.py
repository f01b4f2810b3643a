"""Qualitative and coded tests of the screening before immunotherapy and cell therapy, their answers, and the
HL7 0078 flag "A" (abnormal) for a coded answer the catalogue marks abnormal.

Hepatitis B reactivation under checkpoint inhibitors, CAR-T and the lymphodepletion before it is screened for
with HBsAg and anti-HBc, hepatitis C with the antibody, HIV with a 4th-generation Ag/Ab assay; CMV is
monitored by quantitative PCR after cell therapy (IU/mL, WHO standard), sometimes reported qualitatively.

LOINC: 5196-1 Hepatitis B virus surface Ag [Presence] in Serum; 16933-4 Hepatitis B virus core Ab [Presence] in
Serum; 16128-1 Hepatitis C virus Ab [Presence] in Serum; 56888-1 HIV 1+2 Ab + HIV1 p24 Ag [Presence] in Serum or
Plasma by Immunoassay; 72493-2 Cytomegalovirus DNA [Units/volume] (viral load) in Serum or Plasma by NAA with
probe detection; 4996-5 Cytomegalovirus DNA [Presence] in Blood by NAA with probe detection; 600-7 Bacteria
identified in Blood by Culture (free text: the organism or "no growth", as labs report it).

Answers carry SNOMED CT qualifier values as labs send them in OBX-5 (CWE, coding system "SCT", HL7 table 0396):
260385009 Negative, 131194007 Non-reactive, 260415000 Not detected (normal); 10828004 Positive, 11214006
Reactive, 260373001 Detected, 42425007 Equivocal, 82334004 Indeterminate, 419984006 Inconclusive (abnormal: an
equivocal or indeterminate screen needs follow-up before treatment, so it is never shown as normal). A lab's
local code is matched by the answer's text. Site-editable in admin.

Specimens: serology in gold SST (serum, 1 mL; HBsAg/HCV/HIV sera are stable for days refrigerated), CMV PCR in
lavender EDTA (plasma within 24 h). Blood culture bottles are not in the container catalogue, so the blood
culture has no specimen requirement (its results arrive by HL7 on the accession the lab gives).
"""

from datetime import timedelta
from decimal import Decimal

from django.db import migrations, models

SCT = "SCT"
NEGATIVE = [("260385009", "Negative"), ("131194007", "Non-reactive")]
POSITIVE = [
    ("10828004", "Positive"),
    ("11214006", "Reactive"),
    ("42425007", "Equivocal"),
    ("82334004", "Indeterminate"),
]
SEROLOGY = [(code, text, False) for code, text in NEGATIVE] + [(code, text, True) for code, text in POSITIVE]
PCR = [("260415000", "Not detected", False), ("260373001", "Detected", True), ("419984006", "Inconclusive", True)]

# name: (LOINC, value type, unit, decimals, answers)
TESTS = {
    "Hepatitis B surface antigen": ("5196-1", "CWE", "", 0, SEROLOGY),
    "Hepatitis B core antibody": ("16933-4", "CWE", "", 0, SEROLOGY),
    "HCV antibody": ("16128-1", "CWE", "", 0, SEROLOGY),
    "HIV-1/2 Ag/Ab": ("56888-1", "CWE", "", 0, SEROLOGY),
    "CMV DNA (viral load)": ("72493-2", "SN", "[IU]/mL", 0, []),
    "CMV DNA (qualitative)": ("4996-5", "CWE", "", 0, PCR),
    "Blood culture": ("600-7", "ST", "", 0, []),
}
H = timedelta(hours=1)
# name: (container code, minimum volume mL, stability at room temperature, refrigerated)
REQUIREMENTS = {
    "Hepatitis B surface antigen": ("GOLD_SST", "1.0", 24 * H, 168 * H),
    "Hepatitis B core antibody": ("GOLD_SST", "1.0", 24 * H, 168 * H),
    "HCV antibody": ("GOLD_SST", "1.0", 24 * H, 168 * H),
    "HIV-1/2 Ag/Ab": ("GOLD_SST", "1.0", 24 * H, 168 * H),
    "CMV DNA (viral load)": ("LAV_EDTA", "2.0", 24 * H, 72 * H),
    "CMV DNA (qualitative)": ("LAV_EDTA", "2.0", 24 * H, 72 * H),
}
# CMV viral load: below the usual lower limit of quantification is "not detected / < LLOQ"; no reference range is
# seeded (a result above the assay's LLOQ is reported as detected, and thresholds for pre-emptive therapy are
# programme-specific), so only the lab's OBX-8 flag is shown.


def seed(apps, schema_editor):
    LabTest = apps.get_model("monitoring", "LabTest")
    ResultSpec = apps.get_model("results", "ResultSpec")
    ResultAnswer = apps.get_model("results", "ResultAnswer")
    Container = apps.get_model("specimens", "Container")
    Requirement = apps.get_model("specimens", "TestSpecimenRequirement")
    containers = {c.code: c for c in Container.objects.all()}
    for name, (loinc, value_type, unit, decimals, answers) in TESTS.items():
        test, _ = LabTest.objects.get_or_create(loinc_code=loinc, defaults={"name": name, "turnaround": 24 * H})
        ResultSpec.objects.get_or_create(
            lab_test=test, defaults={"unit": unit, "value_type": value_type, "decimal_places": decimals}
        )
        for code, text, abnormal in answers:
            ResultAnswer.objects.get_or_create(
                lab_test=test, system=SCT, code=code, defaults={"text": text, "abnormal": abnormal}
            )
        if name in REQUIREMENTS:
            code, volume, room, fridge = REQUIREMENTS[name]
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
        ("results", "0006_values_messages_lab_fields"),
        ("monitoring", "0010_seed_new_turnaround"),
        ("specimens", "0002_accession_sequence_and_catalogue"),
    ]

    operations = [
        migrations.AlterField(
            model_name="result",
            name="flag",
            field=models.CharField(
                blank=True,
                choices=[
                    ("N", "Normal"), ("L", "Low"), ("H", "High"), ("LL", "Critically low"), ("HH", "Critically high"),
                    ("", "Not flagged"), ("A", "Abnormal"),
                ],
                max_length=2,
            ),
        ),
        migrations.AlterField(
            model_name="resultevent",
            name="flag",
            field=models.CharField(
                blank=True,
                choices=[
                    ("N", "Normal"), ("L", "Low"), ("H", "High"), ("LL", "Critically low"), ("HH", "Critically high"),
                    ("", "Not flagged"), ("A", "Abnormal"),
                ],
                max_length=2,
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]  # fmt: skip
