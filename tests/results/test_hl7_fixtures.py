"""Real public ORU^R01 sample messages (tests/results/fixtures/hl7/README.md), adapted to demo identifiers,
imported one file after another as a laboratory would send them: how many are stored correctly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from monitoring.models import MonitoringTest
from patients.models import Patient
from results.hl7.batch import split_batch
from results.importing import import_oru_messages, interface_user
from results.models import InboundMessage, Result
from results.services import results_verify
from tests.results.helpers import collected_specimen

FIXTURES = Path(__file__).parent / "fixtures" / "hl7"

# token in the fixtures -> (MRN, tests the specimen is collected for)
SPECIMENS = {
    "ACC-A-CHEM": ("LF100001", ["ALT", "AST", "CRP"]),
    "ACC-B-SER": ("LF100002", ["CRP", "Sodium"]),
    "ACC-B-CBC": ("LF100002", ["CBC with differential"]),
    "ACC-B-GLU": ("LF100002", ["Glucose"]),
    "ACC-C-LAV": ("LF100003", ["CMV DNA (viral load)", "CMV DNA (qualitative)"]),
    "ACC-D-SER": ("LF100004", ["Hepatitis B surface antigen", "Hepatitis B core antibody", "HCV antibody",
                               "HIV-1/2 Ag/Ab"]),
    "ACC-E-COAG": ("LF100005", ["INR", "aPTT"]),
    "ACC-F-LAV": ("LF100006", ["CMV DNA (viral load)"]),
    "ACC-F-SER": ("LF100006", ["Hepatitis B surface antigen", "HIV-1/2 Ag/Ab"]),
}  # fmt: skip


def versions(accession: str, test: str) -> list[Result]:
    """The versions of one specimen's result for one test, oldest first."""
    return list(
        Result.objects.filter(specimen__accession=accession, lab_test__name=test)
        .select_related("inbound_message")
        .order_by("version")
    )


@pytest.fixture
def demo(team_a, nurse_a):
    accessions = {}
    patients: dict[str, Patient] = {}
    for token, (mrn, tests) in SPECIMENS.items():
        if mrn not in patients:
            patients[mrn] = Patient.objects.create(
                mrn=mrn, family_name="Demo", given_name=mrn, birth_date=date(1960, 5, 17), sex="M",
                weight_kg=Decimal("70.0"), height_cm=Decimal("175.0"), care_team=team_a,
            )  # fmt: skip
        accessions[token] = collected_specimen(patients[mrn], nurse_a, *tests).accession
    return accessions


def read(name: str, accessions: dict[str, str]) -> list[str]:
    text = (FIXTURES / name).read_text()
    for token, accession in sorted(accessions.items(), key=lambda item: -len(item[0])):
        text = text.replace(token, accession)
    return split_batch(text)


def expectations(acc: dict[str, str]) -> dict[str, Callable[[], bool]]:
    """What each message must have stored (one entry per message; the batch file holds two)."""

    def alt() -> list[Result]:
        return versions(acc["ACC-A-CHEM"], "ALT")

    def one(accession: str, test: str) -> Result:
        (row,) = [r for r in versions(acc[accession], test) if r.is_current]
        return row

    return {
        "01 NM final": lambda: (
            (r := alt()[0]).value_numeric == 50
            and r.lab_status == "F"
            and r.lab_flags == "H"
            and r.lab_reference_range.startswith("10-49")
            and r.flag == "N"
            and r.status == "final"
            and r.inbound_message is not None
            and r.inbound_message.control_id == "NIST-100929110701660"
        ),
        "02 NM final (later retracted by 14)": lambda: versions(acc["ACC-A-CHEM"], "AST")[0].value_numeric == 48,
        "03 C correction = amendment awaiting verification": lambda: (
            len(rows := alt()) == 2
            and rows[1].value_numeric == 25
            and rows[1].lab_status == "C"
            and rows[1].supersedes_id == rows[0].pk
            and not rows[1].is_current
            and rows[0].is_current
            and rows[1].status == "preliminary"
            and "Corrected result" in rows[1].lab_comment
        ),
        "04 ST text, escapes decoded": lambda: (
            (r := one("ACC-B-CBC", "Blood culture")).value_text
            == "Coagulase-negative staphylococci isolated & identified"
            and r.value_numeric is None
            and r.flag == ""
        ),
        "05 NM viral load": lambda: (
            (r := one("ACC-C-LAV", "CMV DNA (viral load)")).value_numeric == 850000
            and r.unit == "[IU]/mL"
            and r.lab_flags == "H"
        ),
        "06 ST answers of coded tests": lambda: (
            one("ACC-D-SER", "Hepatitis B surface antigen").flag == "N"
            and (h := one("ACC-D-SER", "HCV antibody")).flag == "A"
            and h.value_code == "11214006"
            and one("ACC-D-SER", "HIV-1/2 Ag/Ab").flag == "N"
        ),
        "07 SN censored >11.0 and NM": lambda: (
            (r := one("ACC-E-COAG", "INR")).value_comparator == ">"
            and r.value_numeric == Decimal("11.0")
            and r.flag == "HH"
            and r.display_value.startswith(">")
            and one("ACC-E-COAG", "aPTT").value_numeric == 29
        ),
        "08 CWE preliminary": lambda: (
            (r := versions(acc["ACC-C-LAV"], "CMV DNA (qualitative)")[0]).lab_status == "P"
            and r.value_code == "260373001"
            and r.value_code_system == "SCT"
            and r.flag == "A"
        ),
        "09 CWE final replaces the preliminary": lambda: (
            len(rows := versions(acc["ACC-C-LAV"], "CMV DNA (qualitative)")) == 2
            and rows[1].is_current
            and not rows[0].is_current
            and rows[1].lab_status == "F"
            and rows[1].supersedes_id == rows[0].pk
        ),
        "10 CE text-only answer": lambda: (
            (r := one("ACC-D-SER", "Hepatitis B core antibody")).flag == "A"
            and r.value_code == "11214006"
            and r.value_text == "Reactive"
            and r.lab_flags == "A"
        ),
        "11 NM with structured OBX-7": lambda: (
            (r := one("ACC-B-SER", "CRP")).value_numeric == 50
            and r.lab_reference_range == "^^10.000000"
            and r.flag == "H"
        ),
        "12 SN ^182 (v2.4)": lambda: (
            (r := one("ACC-B-GLU", "Glucose")).value_numeric == 182 and r.value_comparator == "" and r.flag == "H"
        ),
        "13 SN censored <5": lambda: (
            (r := one("ACC-A-CHEM", "CRP")).value_comparator == "<"
            and r.value_numeric == 5
            and r.flag == "N"
            and r.lab_comment == "Below the limit of quantitation & reported as ^5."
        ),
        "14 W retracts": lambda: (
            len(rows := versions(acc["ACC-A-CHEM"], "AST")) == 2
            and all(r.status == "retracted" for r in rows)
            and rows[1].is_current
            and rows[1].lab_status == "W"
        ),
        "15 X not obtained, monitoring test open": lambda: (
            (r := one("ACC-F-LAV", "CMV DNA (viral load)")).status == "not_obtained"
            and r.value_numeric is None
            and "recollect" in r.lab_comment
            and MonitoringTest.objects.get(specimens__accession=acc["ACC-F-LAV"]).status == "collected"
        ),
        "16a batch: CWE SNOMED": lambda: (
            (r := one("ACC-F-SER", "Hepatitis B surface antigen")).value_code == "131194007" and r.flag == "N"
        ),
        "16b batch: CWE local code, SNOMED alternate": lambda: (
            (r := one("ACC-F-SER", "HIV-1/2 Ag/Ab")).value_code == "131194007" and r.flag == "N"
        ),
        "17 another sender reusing a control id": lambda: (
            one("ACC-B-SER", "Sodium").value_numeric == 128
            and InboundMessage.objects.filter(control_id="NIST-100929110701660").count() == 2
        ),
    }


@pytest.mark.django_db
def test_public_sample_messages_are_stored_correctly(demo, technician, capsys):
    user = interface_user()
    acks = []
    for path in sorted(FIXTURES.glob("*.hl7")):
        outcomes = import_oru_messages(read(path.name, demo), user=user, now=timezone.now())
        acks += [(path.name, o) for o in outcomes]
        if path.name.startswith("01-"):  # a technician verifies the ALT before the lab corrects it
            results_verify(results=list(Result.objects.filter(lab_test__name="ALT")), user=technician,
                           now=timezone.now())  # fmt: skip

    refused = [(name, o.error) for name, o in acks if o.error]
    checks = expectations(demo)
    correct = [name for name, check in checks.items() if check()]
    with capsys.disabled():
        print(f"\nHL7 public samples stored correctly: {len(correct)} of {len(checks)} messages")
    assert refused == []
    assert len(acks) == len(checks) == 18  # 17 files, the batch file holds two messages
    assert [name for name in checks if name not in correct] == []


@pytest.mark.django_db
def test_resending_a_sample_is_acknowledged_and_stored_once(demo):
    user = interface_user()
    (text,) = read("05-nist-tc5-nm-viral-load.hl7", demo)
    first = import_oru_messages([text], user=user, now=timezone.now())[0]
    again = import_oru_messages([text, text], user=user, now=timezone.now())
    assert (first.stored, first.error) == (1, "")
    assert [(o.stored, o.duplicate, "|AA|" in o.ack) for o in again] == [(0, True, True), (0, True, True)]
    assert Result.objects.filter(lab_test__name="CMV DNA (viral load)").count() == 1
    assert InboundMessage.objects.get(control_id="NIST-100929110939497").results_stored == 1
