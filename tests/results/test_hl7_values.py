"""Values beyond numbers: censored numbers, ranges and ratios, text, coded answers; the lab's status (OBX-11)
and what verification may do with it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.choices import AlertKind, ResolutionReason
from alerts.models import Alert
from alerts.services import alert_acknowledge
from results.importing import import_oru_message, interface_user
from results.models import Result, ResultSpec
from results.services import LabReport, ResultConflict, ResultEntry, results_enter, results_verify
from tests.results.helpers import analyte, collected_specimen


def enter(specimen, name, value, unit="", user=None, **kwargs):
    (row,) = results_enter(
        entries=[ResultEntry(specimen, analyte(name), value, unit, **kwargs)], user=user, now=timezone.now()
    )
    return row


@pytest.fixture
def lab(db):
    return interface_user()


@pytest.mark.parametrize(
    ("name", "value", "unit", "flag", "grade"),
    [
        ("CRP", "<5", "mg/L", "N", None),  # [0, 5): normal all the way (CRP range 0-5)
        ("Platelets", "<5", "10*9/L", "LL", 4),  # [0, 5) x10^9/L: critically low, grade 4 whatever it is
        ("Platelets", "<100", "10*9/L", "L", None),  # L or LL, grade 1 to 4: at least low, not graded
        ("Potassium", ">11.0", "mmol/L", "HH", 4),
        ("ALT", ">40", "U/L", "", None),  # 7-56: could be normal or high, cannot be said normal
        ("ALT", ">=56", "U/L", "", None),  # 56 is normal, anything above high
        ("ALT", ">56", "U/L", "H", None),  # high, grade 0 to 4
    ],
)
def test_censored_values_are_flagged_and_graded_only_where_unambiguous(
    name, value, unit, flag, grade, team_a, nurse_a, patient_a, lab
):
    panel = "CBC with differential" if name == "Platelets" else "Comprehensive metabolic panel"
    specimen = collected_specimen(patient_a, nurse_a, panel if name != "ALT" else "ALT")
    row = enter(specimen, name, value, unit, user=lab)
    assert row.value_comparator == value.rstrip("0123456789.")
    assert row.value_numeric == Decimal(value.lstrip("<>="))
    assert (row.flag, row.ctcae_grade) == (flag, grade)
    assert row.display_value.startswith(value.rstrip("0123456789.") + value.lstrip("<>=")[:1])
    assert row.delta_flag is False


def test_censored_bound_is_never_rounded_away(team_a, nurse_a, patient_a, lab):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    row = enter(specimen, "Total bilirubin", "<0.05", "mg/dL", user=lab)
    assert row.value_numeric == Decimal("0.05")
    assert row.display_value.startswith("<0.05")


def test_ranges_and_ratios_are_text_for_sn_specs_and_refused_for_numbers(team_a, nurse_a, patient_a, lab):
    ResultSpec.objects.filter(lab_test__name="CMV DNA (viral load)").update(value_type="SN")
    specimen = collected_specimen(patient_a, nurse_a, "CMV DNA (viral load)")
    row = enter(specimen, "CMV DNA (viral load)", "1:128", "", user=lab)
    assert (row.value_text, row.value_numeric, row.flag) == ("1:128", None, "")

    crp = collected_specimen(patient_a, nurse_a, "CRP")
    with pytest.raises(ValidationError) as caught:
        enter(crp, "CRP", "1-3", "mg/L", user=lab)
    assert caught.value.error_dict["value"][0].code == "range_or_ratio"


def test_coded_answers_match_by_code_alternate_or_text_and_never_grade(team_a, nurse_a, patient_a, lab):
    specimen = collected_specimen(patient_a, nurse_a, "Hepatitis B surface antigen", "HCV antibody", "HIV-1/2 Ag/Ab")
    rows = results_enter(
        entries=[
            ResultEntry(specimen, analyte("Hepatitis B surface antigen"), "Reactive", "", value_type="CWE",
                        code="11214006", code_system="SNOMEDCT"),
            ResultEntry(specimen, analyte("HCV antibody"), "Non-reactive", "", value_type="CWE", code="NR",
                        code_system="L", alt_code="131194007", alt_system="SCT"),
            ResultEntry(specimen, analyte("HIV-1/2 Ag/Ab"), "NON REACTIVE", ""),
        ],
        user=lab,
        now=timezone.now(),
    )  # fmt: skip
    assert [(r.flag, r.value_code, r.value_code_system, r.ctcae_grade) for r in rows] == [
        ("A", "11214006", "SCT", None),
        ("N", "131194007", "SCT", None),
        ("N", "131194007", "SCT", None),
    ]


@pytest.mark.parametrize(
    ("value", "code", "error"),
    [
        ("Weakly positive", "", "unknown_answer"),
        ("Negative", "11214006", "answer_disagrees"),
        ("5", "", "unknown_answer"),
    ],
)
def test_unknown_or_contradictory_answers_are_refused(value, code, error, team_a, nurse_a, patient_a, lab):
    specimen = collected_specimen(patient_a, nurse_a, "Hepatitis B surface antigen")
    with pytest.raises(ValidationError) as caught:
        enter(specimen, "Hepatitis B surface antigen", value, user=lab, value_type="CWE", code=code,
              code_system="SCT")  # fmt: skip
    assert caught.value.error_dict["value"][0].code == error
    assert not Result.objects.exists()


def test_long_text_is_kept_whole(team_a, nurse_a, patient_a, lab):
    specimen = collected_specimen(patient_a, nurse_a, "CBC with differential")
    text = "Gram-positive cocci in clusters. " * 10
    row = enter(specimen, "Blood culture", text, user=lab)
    assert len(row.value_text) == 200
    assert row.lab_comment.startswith(text.strip())


def test_lab_preliminary_retracted_and_superseded_results_cannot_be_verified(team_a, nurse_a, patient_a, lab,
                                                                             technician):  # fmt: skip
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    row = enter(specimen, "Sodium", "140", "mmol/L", user=lab, lab=LabReport(status="P"))
    with pytest.raises(ResultConflict, match="preliminary"):
        results_verify(results=[row], user=technician, now=timezone.now())
    retracted = enter(specimen, "Potassium", "4.0", "mmol/L", user=lab, lab=LabReport(status="W"))
    assert (retracted.status, retracted.value_numeric) == ("retracted", None)
    with pytest.raises(ResultConflict, match="retracted"):
        results_verify(results=[retracted], user=technician, now=timezone.now())


def _oru(patient, specimen, obx: str, control_id: str, version: str = "2.5.1") -> str:
    return (
        f"MSH|^~\\&|ANALYZER|CORE LAB|LABFLOW|ONC|20261122102000||ORU^R01^ORU_R01|{control_id}|P|{version}\r"
        f"PID|1||{patient.mrn}^^^HOSP^MR||{patient.family_name}^{patient.given_name}\r"
        f"OBR|1||{specimen.accession}|24323-8^CMP^LN\r{obx}\r"
    )


def test_correction_of_a_verified_result_is_an_amendment_and_retraction_ends_it(team_a, nurse_a, patient_a, lab,
                                                                                technician):  # fmt: skip
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    obx = "OBX|1|NM|2823-3^Potassium^LN||{value}|mmol/L|3.5-5.1|{flag}|||{status}"
    first = import_oru_message(_oru(patient_a, specimen, obx.format(value="6.9", flag="HH", status="F"), "K1"),
                               user=lab, now=timezone.now())  # fmt: skip
    assert first.stored == 1
    (original,) = Result.objects.all()
    results_verify(results=[original], user=technician, now=timezone.now())

    corrected = import_oru_message(_oru(patient_a, specimen, obx.format(value="4.2", flag="N", status="C"), "K2"),
                                   user=lab, now=timezone.now())  # fmt: skip
    assert corrected.stored == 1
    amendment = Result.objects.get(version=2)
    assert (amendment.status, amendment.is_current, amendment.supersedes_id) == ("preliminary", False, original.pk)
    results_verify(results=[amendment], user=technician, now=timezone.now())
    amendment.refresh_from_db()
    original.refresh_from_db()
    assert (amendment.status, amendment.is_current, original.is_current) == ("amended", True, False)

    import_oru_message(_oru(patient_a, specimen, obx.format(value="", flag="", status="W"), "K3"), user=lab,
                       now=timezone.now())  # fmt: skip
    assert set(Result.objects.values_list("status", flat=True)) == {"retracted"}
    assert Result.objects.get(is_current=True).version == 3
    assert not Result.objects.filter(status__in=["final", "amended"]).exists()  # what the dose gate reads


def test_ack_text_never_carries_values_or_names(team_a, nurse_a, patient_a, lab):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    bad = _oru(patient_a, specimen, "OBX|1|ST|2823-3^Potassium^LN||seven point three|mmol/L|||||F", "V1")
    outcome = import_oru_message(bad, user=lab, now=timezone.now())
    assert "|AE|V1|" in outcome.ack
    assert "seven" not in outcome.ack
    assert patient_a.family_name not in outcome.ack
    assert "ERR||OBX^1^5|102^Data type error^HL70357|E" in outcome.ack
    old = import_oru_message(bad.replace("|2.5.1", "|2.3").replace("|V1|", "|V2|"), user=lab, now=timezone.now())
    assert "ERR|OBX^1^5^102&Data type error&HL70357\r" in old.ack
    assert "seven" not in old.ack


def _send(patient, specimen, control_id: str, *reports: tuple[str, str, str, str], lab) -> None:
    """One ORU^R01 with an OBX per (LOINC, value, unit, OBX-11 status); "<5" is sent as structured numeric."""

    def typed(loinc: str, value: str) -> str:
        bound = value.lstrip("<>=")
        if bound != value:
            return f"SN|{loinc}^^LN||{value[: -len(bound)]}^{bound}"
        return f"NM|{loinc}^^LN||{value}"

    obx = "\r".join(
        f"OBX|{n}|{typed(loinc, value)}|{unit}|||||{status}"
        for n, (loinc, value, unit, status) in enumerate(reports, start=1)
    )
    outcome = import_oru_message(_oru(patient, specimen, obx, control_id), user=lab, now=timezone.now())
    assert outcome.error == ""
    assert outcome.stored == len(reports)


SODIUM, POTASSIUM, CHLORIDE, GLUCOSE, ALT = "2951-2", "2823-3", "2075-0", "2345-7", "1742-6"


def test_verify_queue_lists_only_what_can_be_verified_and_lab_preliminary_apart(
    team_a, nurse_a, patient_a, lab, technician, client, api_as
):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel", "ALT")
    _send(patient_a, specimen, "Q1", (SODIUM, "140", "mmol/L", "P"), (POTASSIUM, "4.0", "mmol/L", "F"),
          (CHLORIDE, "", "", "X"), (GLUCOSE, "90", "mg/dL", "P"), (ALT, "40", "U/L", "F"), lab=lab)  # fmt: skip
    results_verify(results=[Result.objects.get(lab_test__name="ALT")], user=technician, now=timezone.now())
    _send(patient_a, specimen, "Q2", (POTASSIUM, "", "", "W"), (GLUCOSE, "92", "mg/dL", "F"),
          (ALT, "45", "U/L", "C"), lab=lab)  # fmt: skip
    # Sodium: still preliminary at the lab. Potassium: retracted. Chloride: not obtained. Glucose: the P report is
    # superseded by the F one. ALT: verified, then corrected by the lab (an amendment, not current until verified).
    glucose = Result.objects.get(lab_test__name="Glucose", lab_status="F")
    alt_amendment = Result.objects.get(lab_test__name="ALT", version=2)
    sodium = Result.objects.get(lab_test__name="Sodium")
    assert Result.objects.filter(status="preliminary").count() == 4  # + the superseded glucose P

    client.force_login(technician)
    page = client.get("/results/verify/")
    assert [r.pk for r in page.context["results"]] == [glucose.pk, alt_amendment.pk]
    assert [r.pk for r in page.context["waiting"]] == [sodium.pk]
    html = page.content.decode()
    assert html.count('data-testid="verify-row"') == 2
    assert html.count('data-testid="awaiting-final-row"') == 1
    assert "Waiting for the lab's final report" in html
    api = api_as(technician).get("/api/results/to-verify/").json()
    assert [r["id"] for r in api["results"]] == [glucose.pk, alt_amendment.pk]

    # Everything listed is accepted by verification: "Verify selected" with all rows ticked verifies all of them.
    client.post("/results/verify/", {"results": [glucose.pk, alt_amendment.pk]})
    assert set(Result.objects.filter(pk__in=[glucose.pk, alt_amendment.pk]).values_list("status", flat=True)) == {
        "final",
        "amended",
    }
    assert list(client.get("/results/verify/").context["results"]) == []

    # The lab's final report supersedes the preliminary one: it moves up into the queue.
    _send(patient_a, specimen, "Q3", (SODIUM, "141", "mmol/L", "F"), lab=lab)
    page = client.get("/results/verify/")
    assert [r.lab_status for r in page.context["results"]] == ["F"]
    assert list(page.context["waiting"]) == []
    assert 'data-testid="awaiting-final-table"' not in page.content.decode()


def test_retraction_by_the_lab_resolves_the_result_alerts(team_a, nurse_a, patient_a, lab, technician):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    _send(patient_a, specimen, "R1", (POTASSIUM, "6.9", "mmol/L", "F"), (SODIUM, "118", "mmol/L", "F"), lab=lab)
    results_verify(results=list(Result.objects.all()), user=technician, now=timezone.now())
    potassium = Result.objects.get(lab_test__name="Potassium")
    # One alert for the message's two critical values.
    critical = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT)
    assert [f["key"].split(":")[0] for f in critical.findings] == ["lab", "lab"]
    alert_acknowledge(alert=critical, user=nurse_a, now=timezone.now())  # acknowledged is not resolved
    _send(patient_a, specimen, "R2", (POTASSIUM, "7.1", "mmol/L", "C"), lab=lab)
    results_verify(results=[Result.objects.get(version=2)], user=technician, now=timezone.now())
    amended = Alert.objects.get(kind=AlertKind.RESULT_AMENDED)
    assert (amended.subject_id, amended.status) == (Result.objects.get(version=2).pk, "open")

    retracted_at = timezone.now()
    outcome = import_oru_message(
        _oru(patient_a, specimen, f"OBX|1|NM|{POTASSIUM}^^LN||||||||W", "R3"), user=lab, now=retracted_at
    )
    assert "|AA|" in outcome.ack
    amended.refresh_from_db()
    assert (amended.status, amended.resolution_reason) == ("resolved", ResolutionReason.RESULT_RETRACTED)
    assert (amended.resolved_by, amended.resolved_at) == (lab, retracted_at)
    assert amended.get_resolution_reason_display() == "Result retracted by the lab"
    # The potassium finding leaves the alert; the sodium's still stands and keeps it open.
    critical.refresh_from_db()
    assert critical.status != "resolved"
    assert "Potassium" not in critical.summary
    assert "Sodium 118" in critical.summary
    assert potassium.pk not in critical.outstanding
    assert not Alert.objects.filter(subject_id=Result.objects.get(version=3).pk).exists()  # nothing raised for W


def test_a_message_refused_after_a_retraction_leaves_the_alerts_open(team_a, nurse_a, patient_a, lab, technician):
    """The retraction and its resolutions are one transaction: a run that rolls back keeps both undone."""
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    _send(patient_a, specimen, "T1", (POTASSIUM, "6.9", "mmol/L", "F"), lab=lab)
    results_verify(results=list(Result.objects.all()), user=technician, now=timezone.now())
    critical = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT)

    @transaction.atomic
    def retract_then_fail() -> None:
        message = _oru(patient_a, specimen, f"OBX|1|NM|{POTASSIUM}^^LN||||||||W", "T2")
        import_oru_message(message, user=lab, now=timezone.now())
        raise RuntimeError("the caller's transaction fails after the import")

    with pytest.raises(RuntimeError):
        retract_then_fail()
    critical.refresh_from_db()
    assert critical.status == "open"
    assert Result.objects.get().status == "final"


def test_trends_mark_censored_values_and_leave_out_retracted_and_not_obtained(
    team_a, nurse_a, patient_a, lab, technician, oncologist_a, client
):
    crp = "1988-5"
    specimens = {}
    for control_id, value, status in (("C1", "12", "F"), ("C2", "<5", "F"), ("C3", "80", "F"), ("C4", "", "X")):
        specimens[control_id] = collected_specimen(patient_a, nurse_a, "CRP")
        _send(patient_a, specimens[control_id], control_id, (crp, value, "mg/L", status), lab=lab)
    verified = results_verify(results=list(Result.objects.all()), user=technician, now=timezone.now()).verified
    assert len(verified) == 3
    _send(patient_a, specimens["C3"], "C5", (crp, "", "", "W"), lab=lab)  # the lab takes the 80 back
    assert set(Result.objects.filter(specimen=specimens["C3"]).values_list("status", flat=True)) == {"retracted"}
    assert Result.objects.get(specimen=specimens["C4"]).status == "not_obtained"

    client.force_login(oncologist_a)
    response = client.get(f"/results/patient/{patient_a.pk}/")
    (chart,) = response.context["chart_data"]
    assert [(p["y"], p["comparator"]) for p in chart["points"]] == [(12.0, ""), (5.0, "<")]
    html = response.content.decode()
    assert html.count('data-testid="censored-note"') == 1
    assert "<strong>&lt;5 mg/L</strong>" in html
