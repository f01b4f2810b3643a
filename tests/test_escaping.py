"""Text from outside (HL7 values and comments, patient names, CSV cells) is escaped wherever it is shown.

A patient whose name is markup and results whose values, units and comments are markup are stored the way
they arrive (CSV import, then what an HL7 NTE/OBX-7 carries), then every page, label and API response that
shows them is read back: HTML shows the text, never markup (no script, tag or attribute of the payload);
PDF labels print it literally (reportlab markup is not interpreted); ZPL carries it as ^FH hex escapes, so a
^ or ~ in a name can neither end the label nor send a printer command; JSON returns it verbatim.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.choices import Role
from alerts.choices import AlertKind, AlertSeverity
from alerts.models import Alert
from alerts.services import AlertCondition, alert_acknowledge, alerts_raise
from orders.labels import label_pdf as bag_label_pdf
from orders.labels import label_zpl as bag_label_zpl
from results.csv_import import import_csv
from results.importing import interface_user
from results.models import Result
from results.services import critical_call_record, results_verify
from specimens.labels import SpecimenLabel
from specimens.labels import label_zpl as specimen_label_zpl
from specimens.services import specimen_reject
from tests import factories
from tests.labelcheck import pdf_text, zpl_fields
from tests.orders.helpers import clear_pre_dose, first_dose, start_course
from tests.orders.test_labels import LABEL as BAG_LABEL
from tests.results.helpers import collected_specimen

SCRIPT = "<script>alert(1)</script>"
BOLD = "<b>x</b>"
IMG = '"><img src=x onerror=alert(1)>'
FONT = "<font color=red>R</font>"
ZPL = "^XA^FO0,0^FDpwn^FS~JR"

# What must never appear raw in HTML (compared in lower case: some pages print the family name in capitals).
RAW = ("<script>alert(1)", "<img src=x", "<b>x</b>", "<font color=red>", "onerror=alert(1)>")
FAMILY = "&lt;script&gt;alert(1)&lt;/script&gt;"  # the family name, escaped (lower case)


def no_markup(page: str) -> list[str]:
    lowered = page.lower()
    return [raw for raw in RAW if raw in lowered]


@pytest.fixture
def world(tmp_path: Path, team_a, oncologist_a, nurse_a, technician):
    """A patient, results, alerts, a rejected specimen, a call log and a preparation, all carrying payloads."""
    now = timezone.now()
    verifier = factories.make_user(Role.LAB_TECHNICIAN, None, "tech.verifier")
    patient = factories.make_patient(team_a)
    patient.family_name = SCRIPT
    patient.given_name = f"{ZPL}{FONT}"
    patient.save()

    cbc = collected_specimen(patient, nurse_a, "CBC with differential")
    cmp = collected_specimen(patient, nurse_a, "Comprehensive metabolic panel")
    rows = [
        ("accession", "mrn", "loinc", "value", "unit", "observed_at"),
        (cbc.accession, patient.mrn, "600-7", f"{BOLD}{IMG}", "", ""),  # Blood culture: a text result
        (cmp.accession, patient.mrn, "2823-3", "6.9", "mmol/L", ""),  # critical potassium
        (cbc.accession, patient.mrn, "777-3", "140", "10*9/L", ""),
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path = tmp_path / "payload.csv"
    path.write_text(buffer.getvalue())
    report = import_csv(path, user=interface_user(), now=now)
    assert report.refusals == []
    text = Result.objects.get(lab_test__loinc_code="600-7")
    potassium = Result.objects.get(lab_test__loinc_code="2823-3")
    # What HL7 brings beside the value (OBX-7 range, OBX-8 flags, NTE comment), and the sign-off comment.
    Result.objects.filter(pk__in=[text.pk, potassium.pk]).update(
        lab_comment=f"{SCRIPT} {FONT}", lab_reference_range=BOLD, lab_flags="<b>", received_unit="<i>u</i>"
    )
    results_verify(results=[text, potassium], user=verifier, now=now)
    potassium_alert = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT)
    critical_call_record(alert=potassium_alert, user=verifier, now=now, recipient=IMG, read_back_confirmed=True,
                         note=SCRIPT)  # fmt: skip
    (amended,) = alerts_raise(
        kind=AlertKind.RESULT_AMENDED, severity=AlertSeverity.HIGH, subject_model=Result,
        conditions=[AlertCondition(text.pk, patient.pk, f"Blood culture: {BOLD}{IMG}")], now=now,
    )  # fmt: skip
    alert_acknowledge(alert=Alert.objects.get(pk=amended), user=nurse_a, now=now, comment=SCRIPT)

    rejected = collected_specimen(patient, nurse_a, "TSH")
    specimen_reject(specimen=rejected, reason="RH", comment=f"{SCRIPT}{FONT}", user=nurse_a, now=now)

    checker = factories.make_user(Role.LAB_TECHNICIAN, None, "tech.checker")
    course = start_course(patient, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=6)
    clear_pre_dose(first_dose(course), nurse_a, technician, checker)
    return {
        "patient": patient, "text": text, "potassium": potassium, "cbc": cbc, "rejected": rejected,
        "alert": potassium_alert, "course": course,
    }  # fmt: skip


@pytest.mark.django_db
def test_every_page_escapes_outside_text(client, world, technician, oncologist_a, nurse_a):
    patient, text, potassium = world["patient"], world["text"], world["potassium"]
    pages = {
        technician: [
            ("/results/verify/", [FAMILY]),
            (f"/results/{text.pk}/", [FAMILY, "&lt;b&gt;x&lt;/b&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"]),
            (f"/results/{potassium.pk}/", [FAMILY]),  # the lab's comment, range and flags: raw check only
            ("/results/enter/", []),
            (f"/results/specimen/{world['cbc'].pk}/enter/", [FAMILY]),
            (f"/results/alerts/{world['alert'].pk}/call/", [FAMILY, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"]),
            (f"/specimens/{world['rejected'].pk}/", [FAMILY, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;font"]),
            ("/specimens/collection/", [FAMILY]),
            ("/specimens/receive/", []),
            ("/orders/worklist/", [FAMILY]),
            ("/orders/verification/", []),
            (f"/patients/{patient.pk}/", [FAMILY]),
        ],
        oncologist_a: [
            ("/results/review/", [FAMILY, "&lt;b&gt;x&lt;/b&gt;"]),
            (f"/results/patient/{patient.pk}/", [FAMILY]),
            (f"/patients/{patient.pk}/", [FAMILY]),
            ("/alerts/", [FAMILY]),
            ("/alerts/inbox/", [FAMILY, "blood culture: &lt;b&gt;x&lt;/b&gt;"]),
            (f"/orders/courses/{world['course'].pk}/", [FAMILY]),
        ],
        nurse_a: [
            ("/alerts/", [FAMILY]),
            ("/alerts/inbox/", [FAMILY]),
            ("/specimens/collection/", [FAMILY]),
            (f"/specimens/collect/{patient.pk}/", [FAMILY]),
            ("/orders/ward/", []),  # lists released preparations only
            (f"/patients/{patient.pk}/", [FAMILY]),
            ("/patients/", [FAMILY]),
        ],
    }
    problems = []
    for user, visits in pages.items():
        client.force_login(user)
        for url, shown in visits:
            response = client.get(url, follow=True)
            if response.status_code != 200:
                problems.append(f"{user.username} {url}: HTTP {response.status_code}")
                continue
            page = response.content.decode()
            problems += [f"{user.username} {url}: raw {raw!r}" for raw in no_markup(page)]
            problems += [f"{user.username} {url}: {s!r} not shown" for s in shown if s not in page.lower()]
    assert problems == [], "\n".join(problems)


@pytest.mark.django_db
def test_trend_data_in_the_page_is_json_that_cannot_close_its_script(client, world, oncologist_a):
    client.force_login(oncologist_a)
    page = client.get(f"/results/patient/{world['patient'].pk}/").content.decode()
    data = re.search(r'<script id="trend-data" type="application/json">(.*?)</script>', page, re.S)
    assert data is not None
    assert "<" not in data[1]  # json_script escapes <, > and & as \u003C …
    json.loads(data[1])


@pytest.mark.django_db
def test_specimen_labels_print_names_literally(api_as, world, technician):
    api = api_as(technician)
    specimen = world["cbc"]
    pdf = api.get(f"/api/specimens/{specimen.pk}/label/pdf/")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "<SCRIPT>ALERT(1)</SCRIPT>, ^" in text  # the name as text (cut to fit the 2 in label)
    zpl = api.get(f"/api/specimens/{specimen.pk}/label/zpl/").content.decode()
    assert_zpl_is_one_safe_label(zpl)
    assert any(field.startswith("<SCRIPT>ALERT(1)</SCR") for field in zpl_fields(zpl))  # cut to fit


def test_specimen_label_zpl_carries_printer_commands_as_text():
    label = SpecimenLabel(accession="123", family_name="^XA~JR", given_name=f"^FS_{FONT}", mrn="^XZ",
                          birth_date=date(1980, 1, 31), collected_at=datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
                          collector="~JA", container="^FS", tests=("^XZ",))  # fmt: skip
    zpl = specimen_label_zpl(label, tz=UTC)
    assert_zpl_is_one_safe_label(zpl)
    fields = zpl_fields(zpl)
    assert fields[:2] == ["^XA~JR, ^FS_<font col...", "MRN ^XZ"]
    assert "Coll 2026-01-05 08:30 ~JA" in fields
    assert "^FH_^FD_5EXA_7EJR, _5EFS_5F<font col...^FS" in zpl


def test_bag_labels_print_names_literally():
    """The bag label renderers (the API renders `preparation_label(prep)`, which passes names unchanged)."""
    label = dataclasses.replace(BAG_LABEL, family_name=SCRIPT, given_name=f"{ZPL}{FONT}", diluent=FONT)
    text = pdf_text(bag_label_pdf(label, tz=UTC))
    assert "<SCRIPT>ALERT(1)</SCRIPT>, ^XA^FO0,0^FDpwn^FS~J…" in text  # printed as it is, cut to fit
    assert FONT in text  # reportlab markup printed, not applied
    zpl = bag_label_zpl(label, tz=UTC)
    assert_zpl_is_one_safe_label(zpl)
    fields = zpl_fields(zpl)
    assert fields[0] == "<SCRIPT>ALERT(1)</SCRIPT>, ^XA^FO0,0^FDpwn^FS~..."
    assert any(FONT in field for field in fields), fields


def assert_zpl_is_one_safe_label(zpl: str) -> None:
    assert zpl.startswith("^XA\n")
    assert zpl.endswith("^XZ")
    assert zpl.count("^XA") == 1  # a name cannot start a second label ...
    assert zpl.count("^XZ") == 1  # ... nor end this one early
    assert "~" not in zpl  # nor send a control command
    assert "^FDpwn" not in zpl
    for match in re.finditer(r"\^FD", zpl):  # every text field is hex-escaped; barcodes carry digits only
        field = zpl[match.end() : zpl.index("^FS", match.end())]
        assert zpl[: match.start()].endswith("^FH_") or re.fullmatch(r"[A-Za-z0-9-]+", field), field


@pytest.mark.django_db
def test_api_returns_outside_text_verbatim_as_json(api_as, world, technician):
    api = api_as(technician)
    response = api.get(f"/api/results/{world['text'].pk}/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    body = json.loads(response.content)
    assert body["value_text"] == f"{BOLD}{IMG}", body  # verbatim, not HTML-escaped twice
    patient = json.loads(api.get(f"/api/patients/{world['patient'].pk}/").content)
    assert (patient["family_name"], patient["given_name"]) == (SCRIPT, f"{ZPL}{FONT}")
    browsable = api.get(f"/api/results/{world['text'].pk}/", HTTP_ACCEPT="text/html")
    if browsable["Content-Type"].startswith("text/html"):  # DRF's browsable API, where it is enabled
        assert no_markup(browsable.content.decode()) == []
