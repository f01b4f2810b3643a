"""Results: units, flags, delta check, verification, amendment, critical values, toxicity, review, result stage."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.choices import Role
from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.models import Alert
from alerts.services import alerts_escalate_unacknowledged
from monitoring.choices import MonitoringTestStatus
from monitoring.services import monitoring_tests_flag_overdue
from patients.choices import CareTeamRole
from patients.models import CareTeamMembership
from results.models import Result
from results.units import UnitError, convert
from tests import factories
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


@pytest.fixture
def technician_2(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "tech2")


def _enter(client, specimen, *rows):
    payload = {
        "specimen": specimen.pk,
        "results": [{"lab_test": analyte(n).pk, "value": v, "unit": u} for n, v, u in rows],
    }
    return client.post("/api/results/", payload, format="json")


@pytest.mark.parametrize(
    ("value", "unit", "target", "loinc", "expected"),
    [
        ("88.42", "umol/L", "mg/dL", "2160-0", "1.00"),
        ("1", "mg/dL", "umol/L", "2160-0", "88.42"),
        ("5.55", "mmol/L", "mg/dL", "2345-7", "99.99"),
        ("100", "mg/dL", "mmol/L", "2345-7", "5.55"),
        ("120", "g/L", "g/dL", "718-7", "12.0"),
        ("12", "g/dL", "g/L", "718-7", "120"),
        ("4.5", "mEq/L", "mmol/L", "2823-3", "4.5"),
        ("250", "10^9/L", "10*3/uL", "777-3", "250"),
    ],
)
def test_unit_conversion(value, unit, target, loinc, expected):
    converted = convert(Decimal(value), unit, target, loinc=loinc)
    assert converted.quantize(Decimal(expected)) == Decimal(expected)


@pytest.mark.parametrize(
    ("unit", "loinc"), [("U/L", "2823-3"), ("mg/dL", "777-3"), ("furlongs", "718-7"), ("", "718-7")]
)
def test_unknown_or_incompatible_unit_is_refused(unit, loinc):
    with pytest.raises(UnitError):
        convert(Decimal(1), unit, "g/dL", loinc=loinc)


def test_entry_converts_flags_and_grades(api_as, nurse_a, technician, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    response = _enter(
        api_as(technician), specimen,
        ("Creatinine", "176.8", "umol/L"), ("Potassium", "3.2", "mmol/L"), ("ALT", "240", "U/L"),
    )  # fmt: skip
    assert response.status_code == 201, response.content
    by_name = {r["lab_test_name"]: r for r in response.json()}
    creatinine = by_name["Creatinine"]
    assert creatinine["value_numeric"] == "2.0000"
    assert creatinine["unit"] == "mg/dL"
    assert creatinine["received_value"] == "176.8"
    assert creatinine["received_unit"] == "umol/L"
    assert creatinine["flag"] == "H"
    assert by_name["Potassium"]["flag"] == "L"
    assert by_name["Potassium"]["ctcae_term"] == "Hypokalemia"
    alt = by_name["ALT"]
    assert alt["ctcae_term"] == "Alanine aminotransferase increased"
    assert alt["ctcae_grade"] == 2  # 240 / 56 = 4.3 x ULN: ">3.0 - 5.0 x ULN"
    assert alt["ctcae_version"] == "5.0"
    assert all(r["status"] == "preliminary" for r in response.json())


@pytest.mark.parametrize(
    ("value", "flag"),
    [("2.6", "LL"), ("2.7", "LL"), ("2.8", "L"), ("3.4", "L"), ("3.5", "N"), ("5.1", "N"), ("5.2", "H"),
     ("6.1", "H"), ("6.2", "HH"), ("7.0", "HH")],
)  # fmt: skip
def test_potassium_flags_at_each_limit(value, flag):
    from results.interpretation import flag_for
    from results.models import ReferenceRange

    rng = ReferenceRange.objects.get(lab_test=analyte("Potassium"))
    assert flag_for(Decimal(value), rng) == flag


def test_reference_range_by_sex(api_as, nurse_a, technician, team_a):
    from patients.choices import Sex

    woman = factories.make_patient(team_a)
    man = factories.make_patient(team_a)
    man.sex = Sex.MALE
    man.save()
    lab = api_as(technician)
    for patient, flag in ((woman, "H"), (man, "N")):
        specimen = collected_specimen(patient, nurse_a, "Creatinine")
        body = _enter(lab, specimen, ("Creatinine", "1.2", "mg/dL")).json()[0]
        assert body["flag"] == flag
        assert body["reference_high"] == ("1.040" if patient is woman else "1.350")


def test_bad_value_or_unit_is_400_naming_the_field_and_writes_nothing(api_as, nurse_a, technician, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    lab = api_as(technician)
    response = _enter(lab, specimen, ("Sodium", "140", "mmol/L"), ("Potassium", "4.0", "U/L"))
    assert response.status_code == 400
    assert "results[1].unit" in response.json()
    assert "Cannot convert" in response.json()["results[1].unit"][0]
    response = _enter(lab, specimen, ("Sodium", "abc", "mmol/L"))
    assert response.status_code == 400
    assert "not a number" in response.json()["value"][0]
    assert not Result.objects.exists()


def test_delta_check_flags_an_implausible_change(api_as, nurse_a, technician, technician_2, patient_a):
    first = collected_specimen(patient_a, nurse_a, "Potassium")
    (r1,) = _enter(api_as(technician), first, ("Potassium", "4.0", "mmol/L")).json()
    assert api_as(technician_2).post(f"/api/results/{r1['id']}/verify/").status_code == 200
    second = collected_specimen(patient_a, nurse_a, "Potassium")
    (r2,) = _enter(api_as(technician), second, ("Potassium", "5.4", "mmol/L")).json()
    assert r2["delta_flag"] is True  # +1.4 mmol/L within a week
    third = collected_specimen(patient_a, nurse_a, "Sodium")
    (r3,) = _enter(api_as(technician), third, ("Sodium", "141", "mmol/L")).json()
    assert r3["delta_flag"] is False  # no previous sodium


def test_self_verification_is_refused(api_as, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    (result,) = _enter(api_as(technician), specimen, ("TSH", "2.1", "mIU/L")).json()
    response = api_as(technician).post(f"/api/results/{result['id']}/verify/")
    assert response.status_code == 403
    assert Result.objects.get(pk=result["id"]).status == "preliminary"
    assert api_as(technician_2).post(f"/api/results/{result['id']}/verify/").status_code == 200
    assert api_as(technician_2).post(f"/api/results/{result['id']}/verify/").status_code == 409


def test_bulk_verify_skips_own_results(api_as, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    mine = _enter(api_as(technician), specimen, ("Sodium", "140", "mmol/L")).json()
    theirs = _enter(api_as(technician_2), specimen, ("Potassium", "4.2", "mmol/L")).json()
    response = api_as(technician).post("/api/results/verify/", {"results": [mine[0]["id"], theirs[0]["id"]]})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["verified"]] == [theirs[0]["id"]]
    assert response.json()["skipped_own"] == [mine[0]["id"]]
    queue = api_as(technician).get("/results/verify/")
    assert queue.status_code == 200


def test_amendment_keeps_the_original_and_tells_the_team(api_as, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Haemoglobin")
    (original,) = _enter(api_as(technician), specimen, ("Haemoglobin", "11.0", "g/dL")).json()
    api_as(technician_2).post(f"/api/results/{original['id']}/verify/")
    lab = api_as(technician)
    assert lab.post(f"/api/results/{original['id']}/amend/", {"value": "10.1", "unit": "g/dL"}).status_code == 400
    response = lab.post(
        f"/api/results/{original['id']}/amend/", {"value": "101", "unit": "g/L", "reason": "Transcription error"}
    )
    assert response.status_code == 201, response.content
    amended = response.json()
    assert amended["version"] == 2
    assert amended["status"] == "preliminary"
    assert Result.objects.get(pk=original["id"]).is_current  # still current until the amendment is verified
    assert api_as(technician).post(f"/api/results/{amended['id']}/verify/").status_code == 403
    assert api_as(technician_2).post(f"/api/results/{amended['id']}/verify/").status_code == 200
    history = lab.get(f"/api/results/{original['id']}/history/").json()
    assert [(h["version"], h["value_numeric"], h["is_current"], h["status"]) for h in history] == [
        (1, "11.0000", False, "final"),
        (2, "10.1000", True, "amended"),
    ]
    alert = Alert.objects.get(kind=AlertKind.RESULT_AMENDED)
    assert alert.patient == patient_a
    assert "Transcription error" in alert.summary
    assert lab.post(f"/api/results/{original['id']}/amend/", {"value": "9", "reason": "again"}).status_code == 409


def test_critical_potassium_raises_one_alert_in_the_same_request_and_escalates(
    api_as, team_a, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    (result,) = _enter(api_as(technician), specimen, ("Potassium", "6.8", "mmol/L")).json()
    assert result["flag"] == "HH"
    assert not Alert.objects.filter(kind=AlertKind.CRITICAL_RESULT).exists()  # not before verification
    response = api_as(technician_2).post("/api/results/verify/", {"results": [result["id"]]})
    (alert_id,) = response.json()["alerts"]  # critical and CTCAE grade 3: one alert naming both
    alert = Alert.objects.get(pk=alert_id)
    assert alert.kind == AlertKind.CRITICAL_RESULT
    assert "(HH)" in alert.summary
    assert "CTCAE grade 3 Hyperkalemia" in alert.summary
    assert alert.severity == AlertSeverity.CRITICAL
    assert alert.status == AlertStatus.OPEN
    assert "Potassium 6.8" in alert.summary
    assert alert in Alert.objects.filter(patient=patient_a)
    # the nurse sees it at once
    assert "Potassium 6.8" in api_as(nurse_a).get("/alerts/inbox/").content.decode()

    # Unanswered, it climbs the default ladder: the charge nurse after 15 minutes, not the nurse who had it.
    charge = factories.make_user(Role.NURSE, username="charge")
    CareTeamMembership.objects.create(care_team=team_a, user=charge, role=CareTeamRole.CHARGE_NURSE)
    assert alert_id not in alerts_escalate_unacknowledged(now=alert.raised_at + timedelta(minutes=14))
    assert alert_id in alerts_escalate_unacknowledged(now=alert.raised_at + timedelta(minutes=15))
    alert.refresh_from_db()
    assert list(alert.escalated_to.all()) == [charge]
    assert alert.severity == AlertSeverity.CRITICAL
    assert Alert.objects.filter(patient=patient_a).count() == 1


def test_critical_call_log_needs_read_back(api_as, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    (result,) = _enter(api_as(technician), specimen, ("Potassium", "2.5", "mmol/L")).json()
    api_as(technician_2).post(f"/api/results/{result['id']}/verify/")
    alert = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT)
    lab = api_as(technician_2)
    payload = {"alert": alert.pk, "recipient": "RN Eva Rossi", "read_back_confirmed": False}
    response = lab.post("/api/critical-calls/", payload, format="json")
    assert response.status_code == 400
    assert "read_back_confirmed" in response.json()
    response = lab.post(
        "/api/critical-calls/", {**payload, "read_back_confirmed": True, "note": "K 2.5"}, format="json"
    )
    assert response.status_code == 201
    call = response.json()
    assert call["caller"] == technician_2.pk
    assert call["recipient"] == "RN Eva Rossi"
    assert api_as(nurse_a).get("/api/critical-calls/", {"alert": alert.pk}).json()["count"] == 1


def test_grade_3_toxicity_alerts_the_oncologist_not_the_nurse(
    api_as, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "ALT")
    (result,) = _enter(api_as(technician), specimen, ("ALT", "336", "U/L")).json()  # 6 x ULN
    assert result["ctcae_grade"] == 3
    api_as(technician_2).post(f"/api/results/{result['id']}/verify/")
    alert = Alert.objects.get(kind=AlertKind.TOXICITY)
    assert alert.audience == AlertAudience.ONCOLOGISTS
    assert alert.severity == AlertSeverity.HIGH
    assert api_as(oncologist_a).get(f"/api/alerts/{alert.pk}/").status_code == 200
    assert api_as(nurse_a).get(f"/api/alerts/{alert.pk}/").status_code == 404


def test_review_inbox_orders_critical_then_grade_and_signs_off(
    api_as, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel")
    rows = _enter(
        api_as(technician), specimen,
        ("Sodium", "139", "mmol/L"), ("ALT", "336", "U/L"), ("Potassium", "6.5", "mmol/L"),
    ).json()  # fmt: skip
    api_as(technician_2).post("/api/results/verify/", {"results": [r["id"] for r in rows]})
    onc = api_as(oncologist_a)
    inbox = onc.get("/api/results/review-inbox/").json()["results"]
    assert [r["lab_test_name"] for r in inbox] == ["Potassium", "ALT", "Sodium"]
    response = onc.post("/api/results/review/", {"results": [r["id"] for r in inbox], "comment": "Hold dose"})
    assert response.status_code == 200
    assert {r["reviewed_by"] for r in response.json()} == {oncologist_a.pk}
    assert onc.get("/api/results/review-inbox/").json()["count"] == 0
    assert api_as(technician).post("/api/results/review/", {"results": [rows[0]["id"]]}).status_code == 403


def test_review_inbox_puts_ungraded_results_after_graded_ones(
    api_as, client, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    """TSH has no CTCAE term (grade None): PostgreSQL sorts NULL first in a descending order, which would put it
    above a grade 3 ALT."""
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel", "TSH")
    rows = _enter(api_as(technician), specimen, ("TSH", "1.9", "m[IU]/L"), ("ALT", "336", "U/L")).json()
    api_as(technician_2).post("/api/results/verify/", {"results": [r["id"] for r in rows]})
    inbox = api_as(oncologist_a).get("/api/results/review-inbox/").json()["results"]
    assert [(r["lab_test_name"], r["ctcae_grade"]) for r in inbox] == [("ALT", 3), ("TSH", None)]
    client.force_login(oncologist_a)
    page = client.get("/results/review/").content.decode()
    assert page.index(">ALT<") < page.index(">TSH<")


def test_verified_results_satisfy_the_result_stage_and_resolve_result_overdue(
    api_as, nurse_a, technician, technician_2, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "Comprehensive metabolic panel", "TSH")  # one gold tube
    test_cmp, test_tsh = sorted(specimen.monitoring_tests.all(), key=lambda t: t.lab_test.name)
    # Both results overdue: one alert for the draw, in the lab's queue.
    (alert_id,) = monitoring_tests_flag_overdue(now=timezone.now() + timedelta(days=2))
    assert sorted(Alert.objects.get(pk=alert_id).members) == sorted([test_cmp.pk, test_tsh.pk])
    lab, verifier = api_as(technician), api_as(technician_2)
    tsh = _enter(lab, specimen, ("TSH", "1.9", "m[IU]/L")).json()
    some = _enter(lab, specimen, ("Sodium", "139", "mmol/L"), ("Potassium", "4.2", "mmol/L")).json()
    verifier.post("/api/results/verify/", {"results": [r["id"] for r in tsh + some]})
    test_tsh.refresh_from_db()
    test_cmp.refresh_from_db()
    assert test_tsh.status == MonitoringTestStatus.SATISFIED
    assert test_cmp.status == MonitoringTestStatus.RESULT_OVERDUE  # 12 of its 14 analytes still missing
    waiting = Alert.objects.get(pk=alert_id)
    assert (waiting.status, waiting.outstanding) == (AlertStatus.OPEN, [test_cmp.pk])  # still waits on the CMP
    rest = _enter(
        lab, specimen,
        ("ALT", "30", "U/L"), ("AST", "25", "U/L"), ("ALP", "80", "U/L"), ("Total bilirubin", "0.6", "mg/dL"),
        ("Creatinine", "0.8", "mg/dL"), ("Glucose", "92", "mg/dL"), ("Calcium", "9.4", "mg/dL"),
        ("Albumin", "4.2", "g/dL"), ("Total protein", "7.0", "g/dL"), ("Bicarbonate (CO2)", "25", "mmol/L"),
        ("Chloride", "102", "mmol/L"), ("BUN", "14", "mg/dL"),
    ).json()  # fmt: skip
    verifier.post("/api/results/verify/", {"results": [r["id"] for r in rest]})
    test_cmp.refresh_from_db()
    assert test_cmp.status == MonitoringTestStatus.SATISFIED
    resolved = Alert.objects.get(kind=AlertKind.RESULT_OVERDUE)
    assert (resolved.pk, resolved.status) == (alert_id, AlertStatus.RESOLVED)
    assert resolved.resolution_reason == ResolutionReason.RESULT_VERIFIED


def test_other_team_cannot_see_results(api_as, nurse_a, nurse_b, technician, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    (result,) = _enter(api_as(technician), specimen, ("TSH", "2.0", "m[IU]/L")).json()
    assert api_as(nurse_b).get(f"/api/results/{result['id']}/").status_code == 404
    assert api_as(nurse_a).get(f"/api/results/{result['id']}/").status_code == 200
    assert api_as(nurse_a).post("/api/results/", {}, format="json").status_code == 403
