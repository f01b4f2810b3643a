"""Critical values and review close the loop (issue 9): one finding raises one alert; the verifying technician opens
the call log from the result and from the alert; the read-back call acknowledges the alert; the oncologist's sign-off
resolves the result's critical and toxicity alerts (who, when, why) and they no longer escalate; grades that rest on
CTCAE's worst-case clinical assumption say "assumed" on the result, the review inbox and the alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.choices import Role
from alerts.choices import AlertAudience, AlertKind, AlertSeverity, AlertStatus, ResolutionReason
from alerts.models import Alert
from alerts.services import alerts_escalate_unacknowledged
from results.choices import ResultFlag
from results.models import CriticalCall, Result
from tests import factories
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


@pytest.fixture
def technician_2(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "tech2")


def _api_enter(client, specimen, name: str, value: str, unit: str) -> dict:
    payload = {"specimen": specimen.pk, "results": [{"lab_test": analyte(name).pk, "value": value, "unit": unit}]}
    response = client.post("/api/results/", payload, format="json")
    assert response.status_code == 201, response.content.decode()
    (row,) = response.json()
    return row


def _entered_and_verified(client, patient, nurse, entered_by, verified_by, name, value, unit) -> Result:
    """Enter one value on the entry grid as one technician and verify it on the queue as another."""
    specimen = collected_specimen(patient, nurse, name)
    test = analyte(name).pk
    client.force_login(entered_by)
    response = client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{test}": value, f"unit-{test}": unit})
    assert response.status_code == 302, response.content.decode()
    result = Result.objects.get(specimen=specimen)
    client.force_login(verified_by)
    client.post("/results/verify/", {"results": [result.pk]})
    result.refresh_from_db()
    assert result.verified_by == verified_by
    return result


def test_critical_value_loop_one_alert_call_log_acknowledges_sign_off_resolves_and_stops_escalation(
    client, nurse_a, oncologist_a, technician, technician_2, patient_a, settings
):
    # Potassium 6.8 mmol/L: critically high (>= 6.2) and CTCAE grade 3 hyperkalaemia (> 6.0-7.0).
    result = _entered_and_verified(client, patient_a, nurse_a, technician, technician_2, "Potassium", "6.8", "mmol/L")
    assert result.flag == ResultFlag.CRITICAL_HIGH
    assert result.ctcae_grade == 3

    # One critical value, one alert: it names the critical flag and the grade, goes to the care team.
    (alert,) = Alert.objects.filter(patient=patient_a)
    assert alert.kind == AlertKind.CRITICAL_RESULT
    assert alert.subject_id == result.pk
    assert alert.severity == AlertSeverity.CRITICAL
    assert alert.audience == AlertAudience.CARE_TEAM
    assert alert.summary == "Critical: Potassium 6.8 mmol/L (HH) · CTCAE grade 3 Hyperkalemia"
    call_log = f"/results/alerts/{alert.pk}/call/"

    # The verifying technician opens the call log from the result...
    page = client.get(f"/results/{result.pk}/").content.decode()
    assert f'href="{call_log}"' in page
    assert client.get(call_log).status_code == 200
    # ... and from the alert (the inbox row), without being able to acknowledge or resolve alerts by hand.
    inbox = client.get("/alerts/").content.decode()
    assert f'href="{call_log}"' in inbox
    assert 'data-testid="acknowledge"' not in inbox
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    # ... and the call log leads back to the result.
    assert f'href="/results/{result.pk}/"' in client.get(call_log).content.decode()

    # Logging the read-back call acknowledges the alert: by the caller, at the call's time.
    assert client.post(call_log, {"recipient": "RN Eva Rossi", "read_back_confirmed": "on"}).status_code == 302
    call = CriticalCall.objects.get(alert=alert)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by == technician_2
    assert alert.acknowledged_at == call.called_at
    assert "RN Eva Rossi" in alert.acknowledge_comment
    # A second call is logged too; the acknowledgement stays the first one's.
    assert client.post(call_log, {"recipient": "Dr Day", "read_back_confirmed": "on"}).status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at == call.called_at
    assert CriticalCall.objects.filter(alert=alert).count() == 2

    # The nurse reads the call log (from the inbox) but does not log calls.
    client.force_login(nurse_a)
    assert f'href="{call_log}"' in client.get("/alerts/").content.decode()
    nurse_view = client.get(call_log)
    assert nurse_view.status_code == 200
    assert "RN Eva Rossi" in nurse_view.content.decode()
    assert 'name="recipient"' not in nurse_view.content.decode()
    assert client.post(call_log, {"recipient": "x", "read_back_confirmed": "on"}).status_code == 403

    # The oncologist's sign-off resolves it: who, when, why.
    client.force_login(oncologist_a)
    client.post("/results/review/", {"results": [result.pk], "comment": "Repeat K, ECG"})
    result.refresh_from_db()
    alert.refresh_from_db()
    assert result.reviewed_by == oncologist_a
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolved_by == oncologist_a
    assert alert.resolved_at == result.reviewed_at
    assert alert.resolution_reason == ResolutionReason.RESULT_REVIEWED
    assert alert.resolve_comment == "Repeat K, ECG"
    assert "Result reviewed" in client.get(f"/results/{result.pk}/").content.decode()
    # ... and it never escalates.
    assert alert.pk not in alerts_escalate_unacknowledged(now=alert.raised_at + timedelta(hours=1))
    alert.refresh_from_db()
    assert alert.escalated_at is None
    assert not alert.escalated_to.exists()


def test_sign_off_resolves_the_alert_once_every_result_it_names_is_reviewed(
    api_as, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    """Two ALT results of one patient verified together: one alert naming the repeat; signing off one result
    leaves it open (it still escalates), signing off the other resolves it and it never escalates again."""
    lab, verifier, onc = api_as(technician), api_as(technician_2), api_as(oncologist_a)
    ids = []
    for _ in range(2):
        specimen = collected_specimen(patient_a, nurse_a, "ALT")
        row = _api_enter(lab, specimen, "ALT", "336", "U/L")  # 6 x ULN: grade 3, not critical
        ids.append(row["id"])
    verifier.post("/api/results/verify/", {"results": ids})
    alert = Alert.objects.get(kind=AlertKind.TOXICITY)
    assert (alert.occurrences, sorted(alert.members)) == (1, sorted(ids))
    assert [f["count"] for f in alert.findings] == [2]

    assert onc.post(f"/api/results/{ids[0]}/review/", {}, format="json").status_code == 200
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert alert.outstanding == [ids[1]]
    assert alerts_escalate_unacknowledged(now=alert.notify_at + timedelta(minutes=15)) == [alert.pk]

    response = onc.post(f"/api/results/{ids[1]}/review/", {"comment": "Hold the next dose"}, format="json")
    reviewed_at = response.json()["reviewed_at"]
    body = onc.get(f"/api/alerts/{alert.pk}/").json()
    assert body["status"] == "resolved"
    assert body["resolved_by"] == oncologist_a.pk
    assert body["resolved_at"] == reviewed_at
    assert body["resolution_reason"] == ResolutionReason.RESULT_REVIEWED
    assert alerts_escalate_unacknowledged(now=alert.notify_at + timedelta(hours=3)) == []


def test_critical_call_over_the_api_acknowledges_the_alert(api_as, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    row = _api_enter(api_as(technician), specimen, "Potassium", "2.5", "mmol/L")
    (alert_id,) = api_as(technician_2).post("/api/results/verify/", {"results": [row["id"]]}).json()["alerts"]
    lab = api_as(technician_2)
    refused = lab.post("/api/critical-calls/", {"alert": alert_id, "recipient": "RN Rossi"}, format="json")
    assert refused.status_code == 400
    assert Alert.objects.get(pk=alert_id).status == AlertStatus.OPEN  # a call without read-back changes nothing
    call = {"alert": alert_id, "recipient": "RN Rossi", "read_back_confirmed": True}
    created = lab.post("/api/critical-calls/", call, format="json")
    assert created.status_code == 201
    alert = api_as(nurse_a).get(f"/api/alerts/{alert_id}/").json()
    assert alert["status"] == "acknowledged"
    assert alert["acknowledged_by"] == technician_2.pk
    assert alert["acknowledged_at"] == created.json()["called_at"]


@pytest.mark.parametrize(
    ("name", "value", "unit", "kind", "severity", "audience", "summary"),
    [
        # Critical and grade 4: one critical-result alert for the care team naming both.
        (
            "Sodium", "118", "mmol/L", AlertKind.CRITICAL_RESULT, AlertSeverity.CRITICAL, AlertAudience.CARE_TEAM,
            "Critical: Sodium 118 mmol/L (LL) · CTCAE grade 4 Hyponatremia",
        ),
        # Critical and grade 4, a cell count.
        (
            "Platelets", "15", "10*3/uL", AlertKind.CRITICAL_RESULT, AlertSeverity.CRITICAL, AlertAudience.CARE_TEAM,
            "Critical: Platelets 15 10*3/uL (LL) · CTCAE grade 4 Platelet count decreased",
        ),
        # Grade 4 toxicity, not critical: the oncologists, critical severity.
        (
            "ALT", "1200", "U/L", AlertKind.TOXICITY, AlertSeverity.CRITICAL, AlertAudience.ONCOLOGISTS,
            "CTCAE grade 4 Alanine aminotransferase increased: ALT 1200 U/L",
        ),
        # Grade 3 toxicity, not critical: the oncologists, high severity.
        (
            "ALT", "336", "U/L", AlertKind.TOXICITY, AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS,
            "CTCAE grade 3 Alanine aminotransferase increased: ALT 336 U/L",
        ),
    ],
)  # fmt: skip
def test_one_finding_one_alert(
    api_as, nurse_a, technician, technician_2, patient_a, name, value, unit, kind, severity, audience, summary
):
    specimen = collected_specimen(patient_a, nurse_a, name)
    row = _api_enter(api_as(technician), specimen, name, value, unit)
    alerts = api_as(technician_2).post("/api/results/verify/", {"results": [row["id"]]}).json()["alerts"]
    assert len(alerts) == 1
    (alert,) = Alert.objects.filter(patient=patient_a)
    assert (alert.kind, alert.severity, alert.audience) == (kind, severity, audience)
    assert alert.summary == summary


def test_a_normal_or_low_grade_result_raises_no_alert(api_as, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "ALT")
    row = _api_enter(api_as(technician), specimen, "ALT", "120", "U/L")  # grade 1
    assert api_as(technician_2).post("/api/results/verify/", {"results": [row["id"]]}).json()["alerts"] == []


@pytest.mark.parametrize(
    ("name", "value", "unit", "grade", "term"),
    [
        ("Sodium", "127", "mmol/L", 3, "Hyponatremia"),  # 125-129 mmol/L is grade 3 only "assuming symptomatic"
        ("Lipase", "900", "U/L", 4, "Lipase increased"),  # > 5 x ULN (160 U/L): grade 4 "with signs or symptoms"
    ],
)
def test_assumed_grade_is_shown_on_the_result_the_review_inbox_and_the_alert(
    client, api_as, nurse_a, oncologist_a, technician, technician_2, patient_a, name, value, unit, grade, term
):
    result = _entered_and_verified(client, patient_a, nurse_a, technician, technician_2, name, value, unit)
    assert (result.ctcae_grade, result.ctcae_term, result.ctcae_assumed) == (grade, term, True)
    # the result: page and API
    client.force_login(oncologist_a)
    page = client.get(f"/results/{result.pk}/").content.decode()
    assert f"{term}: grade {grade}" in page
    assert 'data-testid="ctcae-assumed"' in page
    assert api_as(oncologist_a).get(f"/api/results/{result.pk}/").json()["ctcae_assumed"] is True
    # the review inbox: page and API
    review = client.get("/results/review/").content.decode()
    (row,) = [r for r in review.split('data-testid="review-row"')[1:]]
    assert "assumed" in row
    inbox = api_as(oncologist_a).get("/api/results/review-inbox/").json()["results"]
    assert [(r["id"], r["ctcae_assumed"]) for r in inbox] == [(result.pk, True)]
    # the alert text
    (alert,) = Alert.objects.filter(patient=patient_a)
    assert alert.kind == AlertKind.TOXICITY
    assert alert.summary.startswith(f"CTCAE grade {grade} (assumed) {term}: {name} {value}")
    assert alert.summary in client.get("/alerts/").content.decode()


def test_a_grade_on_a_plain_lab_criterion_is_not_assumed(client, nurse_a, technician, technician_2, patient_a):
    result = _entered_and_verified(client, patient_a, nurse_a, technician, technician_2, "Sodium", "122", "mmol/L")
    assert (result.ctcae_grade, result.ctcae_assumed) == (3, False)  # 120-124 mmol/L: grade 3 by the value alone
    assert 'data-testid="ctcae-assumed"' not in client.get(f"/results/{result.pk}/").content.decode()
    assert "(assumed)" not in Alert.objects.get(patient=patient_a).summary


def test_sign_off_of_an_amended_result_resolves_the_alert_about_its_first_version(
    api_as, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    original = _api_enter(api_as(technician), specimen, "Potassium", "2.4", "mmol/L")
    (alert_id,) = api_as(technician_2).post("/api/results/verify/", {"results": [original["id"]]}).json()["alerts"]
    correction = {"value": "2.5", "unit": "mmol/L", "reason": "Re-run"}
    amended = api_as(technician).post(f"/api/results/{original['id']}/amend/", correction).json()
    api_as(technician_2).post(f"/api/results/{amended['id']}/verify/")
    critical = Alert.objects.filter(patient=patient_a, kind=AlertKind.CRITICAL_RESULT)
    assert list(critical.values_list("pk", flat=True)) == [alert_id]  # the amendment raises no second one
    assert api_as(oncologist_a).post(f"/api/results/{amended['id']}/review/").status_code == 200
    alert = Alert.objects.get(pk=alert_id)
    assert (alert.status, alert.resolved_by, alert.resolution_reason) == (
        AlertStatus.RESOLVED, oncologist_a, ResolutionReason.RESULT_REVIEWED
    )  # fmt: skip
    amendment = Alert.objects.get(kind=AlertKind.RESULT_AMENDED)
    assert amendment.status == AlertStatus.OPEN  # the care team still sees that a value changed
