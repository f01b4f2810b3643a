"""Bedside CRS and ICANS assessments: recorded and graded by the service, amended without overwriting, alerted,
scoped to the care team, and refused with the field named (docs/architecture.md §4a, §3, §7)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.models import Alert
from alerts.selectors import alert_list
from alerts.services import alert_resolve
from assessments import choices, grading
from assessments.models import Assessment
from assessments.services import assessment_amend, assessment_record
from core.errors import Conflict

pytestmark = pytest.mark.django_db

CALM_ICANS: dict[str, Any] = {
    **dict.fromkeys(grading.ICE_ITEMS, True),
    "level_of_consciousness": "alert",
    "seizure": "none",
    "motor_weakness": "none",
    "raised_icp": "none",
}
NO_CRS: dict[str, Any] = {
    "temperature_c": Decimal("37.0"),
    "systolic_bp_mmhg": 120,
    "vasopressors": "none",
    "oxygen": "none",
}
FEVER: dict[str, Any] = {**NO_CRS, "temperature_c": Decimal("38.4")}  # grade 1
SEIZURE = "rapidly_resolving_or_nonconvulsive_eeg"
FEVER_LOW_BP: dict[str, Any] = {**FEVER, "systolic_bp_mmhg": 85}  # grade 2


def record(patient, user, minutes_ago: int = 0, **findings):
    now = timezone.now()
    return assessment_record(
        patient=patient, assessed_at=now - timedelta(minutes=minutes_ago), user=user, now=now, **findings
    )


def alerts_of(assessment: Assessment):
    return list(Alert.objects.filter(subject_id=assessment.pk, kind__in=[AlertKind.CRS, AlertKind.ICANS]))


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_stored_choices_are_the_grading_values():
    pairs: list[tuple[Any, Any]] = [
        (choices.Vasopressors, grading.Vasopressors),
        (choices.OxygenSupport, grading.OxygenSupport),
        (choices.Consciousness, grading.Consciousness),
        (choices.Seizure, grading.Seizure),
        (choices.MotorWeakness, grading.MotorWeakness),
        (choices.RaisedIcp, grading.RaisedIcp),
    ]
    for stored, graded in pairs:
        assert [c.value for c in stored] == [c.value for c in graded]
    assert tuple(name for name, _ in choices.ICE_QUESTIONS) == grading.ICE_ITEMS


# --- recording and grading ---------------------------------------------------------------------------------------


def test_record_stores_both_grades_with_the_rules_that_decided_them(patient_a, nurse_a):
    assessment = record(patient_a, nurse_a, **FEVER_LOW_BP, **CALM_ICANS)
    assessment.refresh_from_db()
    assert (assessment.crs_grade, assessment.icans_grade, assessment.ice_score) == (2, 0, 10)
    assert assessment.crs_decisive == [
        "fever: 38.4 °C ≥ 38 °C",
        "hypotension not requiring vasopressors (systolic 85 < 90 mmHg) → grade 2",
    ]
    assert assessment.icans_decisive[0].endswith("→ grade 0")
    assert assessment.crs_missing == []
    assert assessment.icans_missing == []
    assert assessment.hypotension_below_systolic_mmhg == 90
    assert assessment.is_current
    assert assessment.recorded_by == nurse_a


def test_the_site_hypotension_threshold_is_used_and_kept(patient_a, nurse_a, settings):
    settings.ASSESSMENT_HYPOTENSION_SYSTOLIC_MMHG = 100
    assessment = record(patient_a, nurse_a, **{**FEVER, "systolic_bp_mmhg": 95}, **CALM_ICANS)
    assert assessment.crs_grade == 2
    assert assessment.hypotension_below_systolic_mmhg == 100
    assert "systolic 95 < 100 mmHg" in assessment.crs_decisive[1]


def test_an_unrecorded_finding_that_could_change_the_grade_leaves_it_pending(patient_a, nurse_a):
    assessment = record(
        patient_a, nurse_a, temperature_c=Decimal("38.6"), seizure="rapidly_resolving_or_nonconvulsive_eeg"
    )
    assert assessment.crs_grade is None
    assert assessment.crs_at_least == 1
    assert assessment.crs_at_most == 4
    assert assessment.crs_missing == ["systolic_bp_mmhg", "vasopressors", "oxygen"]
    assert assessment.icans_grade is None
    assert assessment.icans_at_least == 3
    assert assessment.ice_score is None


def test_the_database_keeps_assessments_append_only(patient_a, nurse_a):
    assessment = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    with pytest.raises(DatabaseError), transaction.atomic():
        Assessment.objects.filter(pk=assessment.pk).update(crs_grade=0)
    with pytest.raises(DatabaseError), transaction.atomic():
        Assessment.objects.filter(pk=assessment.pk).delete()
    Assessment.objects.filter(pk=assessment.pk).update(is_current=False)
    with pytest.raises(DatabaseError), transaction.atomic():
        Assessment.objects.filter(pk=assessment.pk).update(is_current=True)


# --- amendments --------------------------------------------------------------------------------------------------


def test_an_amendment_is_a_new_row_and_the_original_stays(patient_a, nurse_a, oncologist_a):
    original = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    amended = assessment_amend(
        assessment=original, reason="Systolic misread", user=oncologist_a, now=timezone.now(),
        **FEVER_LOW_BP, **CALM_ICANS,
    )  # fmt: skip
    original.refresh_from_db()
    assert (original.crs_grade, original.systolic_bp_mmhg, original.is_current) == (1, 120, False)
    assert (amended.crs_grade, amended.supersedes, amended.is_current) == (2, original, True)
    assert amended.assessed_at == original.assessed_at
    assert amended.amendment_reason == "Systolic misread"
    with pytest.raises(Conflict):
        assessment_amend(assessment=original, reason="again", user=nurse_a, now=timezone.now(), **FEVER)
    assert Assessment.objects.count() == 2


def test_an_amendment_needs_a_reason(patient_a, nurse_a):
    original = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    with pytest.raises(Exception, match="reason"):
        assessment_amend(assessment=original, reason="  ", user=nurse_a, now=timezone.now(), **FEVER)
    original.refresh_from_db()
    assert original.is_current


# --- alerts ------------------------------------------------------------------------------------------------------


def test_grade_0_raises_no_alert(patient_a, nurse_a):
    assert alerts_of(record(patient_a, nurse_a, **NO_CRS, **CALM_ICANS)) == []


def test_onset_of_grade_1_alerts_nurses_and_oncologists_high(patient_a, nurse_a, oncologist_a):
    """The first fever of a patient is CRS onset: a rise from none, not a moderate alert quiet hours may hold."""
    assessment = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    (alert,) = alerts_of(assessment)
    assert (alert.kind, alert.audience, alert.severity) == (
        AlertKind.CRS,
        AlertAudience.CARE_TEAM,
        AlertSeverity.HIGH,
    )
    assert alert.summary == "CRS grade 1: fever: 38.4 °C ≥ 38 °C, without hypotension or hypoxia → grade 1"
    assert alert in alert_list(user=oncologist_a)
    assert alert in alert_list(user=nurse_a)


def test_grade_1_again_alerts_the_care_team_moderate(patient_a, nurse_a, oncologist_a):
    (onset,) = alerts_of(record(patient_a, nurse_a, minutes_ago=480, **FEVER, **CALM_ICANS))
    alert_resolve(alert=onset, user=oncologist_a, now=timezone.now())
    (alert,) = alerts_of(record(patient_a, nurse_a, **FEVER, **CALM_ICANS))
    assert (alert.audience, alert.severity) == (AlertAudience.CARE_TEAM, AlertSeverity.MODERATE)
    assert alert in alert_list(user=nurse_a)
    assert alert in alert_list(user=oncologist_a)


def test_grade_2_alerts_nurses_and_oncologists_high_with_the_decisive_findings(patient_a, nurse_a, oncologist_a):
    assessment = record(patient_a, nurse_a, **FEVER_LOW_BP, **CALM_ICANS)
    (alert,) = alerts_of(assessment)
    assert (alert.audience, alert.severity) == (AlertAudience.CARE_TEAM, AlertSeverity.HIGH)
    assert alert.summary.startswith("CRS grade 2: fever: 38.4 °C ≥ 38 °C; hypotension not requiring vasopressors")
    assert alert in alert_list(user=oncologist_a)


def test_an_icans_grade_alerts_on_its_own(patient_a, nurse_a, oncologist_a):
    icans = {
        **CALM_ICANS,
        "oriented_year": False,
        "oriented_month": False,
        "writes_sentence": False,
        "counts_backwards": False,
    }
    (alert,) = alerts_of(record(patient_a, nurse_a, **NO_CRS, **icans))  # ICE 6/10
    assert (alert.kind, alert.severity, alert.audience) == (
        AlertKind.ICANS,
        AlertSeverity.HIGH,
        AlertAudience.CARE_TEAM,
    )
    assert alert.summary == "ICANS grade 2: ICE score 6/10 → grade 2"


def test_a_rise_from_1_to_2_alerts_nurses_and_oncologists_naming_the_rise(patient_a, nurse_a, oncologist_a):
    record(patient_a, nurse_a, minutes_ago=480, **FEVER, **CALM_ICANS)
    (alert,) = alerts_of(record(patient_a, nurse_a, **FEVER_LOW_BP, **CALM_ICANS))
    assert (alert.audience, alert.severity) == (AlertAudience.CARE_TEAM, AlertSeverity.HIGH)
    assert alert.summary.startswith("CRS rose from grade 1. CRS grade 2: ")


def test_any_rise_alerts_nurses_and_oncologists_even_to_grade_1(patient_a, nurse_a):
    record(patient_a, nurse_a, minutes_ago=480, **NO_CRS, **CALM_ICANS)
    (alert,) = alerts_of(record(patient_a, nurse_a, **FEVER, **CALM_ICANS))
    assert (alert.audience, alert.severity) == (AlertAudience.CARE_TEAM, AlertSeverity.HIGH)
    assert alert.summary.startswith("CRS rose from grade 0. CRS grade 1")


def test_the_rise_is_judged_against_the_assessment_before_by_bedside_time(patient_a, nurse_a):
    record(patient_a, nurse_a, minutes_ago=60, **FEVER_LOW_BP, **CALM_ICANS)  # grade 2
    record(patient_a, nurse_a, minutes_ago=600, **NO_CRS, **CALM_ICANS)  # recorded later, assessed earlier
    (alert,) = alerts_of(record(patient_a, nurse_a, **FEVER, **CALM_ICANS))
    # grade 1 after the grade 2 of 60 minutes ago: no rise (by recording order it would rise from the grade 0)
    assert (alert.severity, alert.audience) == (AlertSeverity.MODERATE, AlertAudience.CARE_TEAM)


def test_a_repeat_at_the_same_grade_folds_into_the_unresolved_alert(patient_a, nurse_a):
    first = record(patient_a, nurse_a, minutes_ago=480, **FEVER, **CALM_ICANS)
    second = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    (alert,) = Alert.objects.filter(kind=AlertKind.CRS)
    assert alert.occurrences == 2
    assert alert.members == [first.pk, second.pk]
    assert "; again " in alert.summary


def test_a_pending_grade_that_is_at_least_1_alerts(patient_a, nurse_a, oncologist_a):
    assessment = record(
        patient_a, nurse_a, temperature_c=Decimal("38.6"), seizure="rapidly_resolving_or_nonconvulsive_eeg"
    )
    by_kind = {alert.kind: alert for alert in alerts_of(assessment)}
    crs, icans = by_kind[AlertKind.CRS], by_kind[AlertKind.ICANS]
    assert crs.summary == (
        "CRS grade pending, at least 1: systolic blood pressure, vasopressors, oxygen need not recorded"
    )
    assert (crs.severity, crs.audience) == (AlertSeverity.HIGH, AlertAudience.CARE_TEAM)  # onset
    assert icans.summary.startswith("ICANS grade pending, at least 3: ")
    assert "seizures" not in icans.summary
    assert "ICE" not in icans.summary
    assert (icans.severity, icans.audience) == (AlertSeverity.HIGH, AlertAudience.CARE_TEAM)


def test_a_pending_grade_that_may_be_0_does_not_alert(patient_a, nurse_a):
    assert alerts_of(record(patient_a, nurse_a, temperature_c=Decimal("37.0"), **CALM_ICANS)) == []


def test_an_amendment_that_raises_the_grade_alerts_nurses_and_oncologists(patient_a, nurse_a):
    original = record(patient_a, nurse_a, **NO_CRS, **CALM_ICANS)
    amended = assessment_amend(
        assessment=original, reason="Temperature was 38.4", user=nurse_a, now=timezone.now(), **FEVER, **CALM_ICANS
    )
    (alert,) = alerts_of(amended)
    assert (alert.severity, alert.audience) == (AlertSeverity.HIGH, AlertAudience.CARE_TEAM)  # onset


# --- API ---------------------------------------------------------------------------------------------------------


def _body(patient, **findings):
    return {"patient": patient.pk, "assessed_at": timezone.now().isoformat(), **findings}


def test_api_records_and_computes_the_grades_never_taking_them_from_input(api_as, nurse_a, patient_a):
    body = _body(patient_a, **{**FEVER_LOW_BP, "temperature_c": "38.4"}, **CALM_ICANS, crs_grade=0, icans_grade=4)
    response = api_as(nurse_a).post("/api/assessments/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["crs_grade"], data["icans_grade"], data["ice_score"]) == (2, 0, 10)
    assert data["crs_decisive"][1].startswith("hypotension not requiring vasopressors")
    assert data["recorded_by_username"] == "nurse.a"
    assert data["superseded_by"] is None


@pytest.mark.parametrize(
    ("findings", "field", "reason"),
    [
        ({"temperature_c": "100.4"}, "temperature_c", "100.4 is outside 25-45 °C"),
        ({"temperature_c": "38.45"}, "temperature_c", "decimal place"),
        ({"vasopressors": "lots"}, "vasopressors", "not a valid choice"),
        ({"systolic_bp_mmhg": 400}, "systolic_bp_mmhg", "outside 0-300"),
        ({"unable_to_perform_ice": True, "oriented_year": True}, "oriented_year", "unable to perform ICE"),
        ({"assessed_at": "2999-01-01T00:00:00Z"}, "assessed_at", "future"),
        ({"assessed_at": "0001-01-01T00:00:00Z"}, "assessed_at", "more than 7 days ago"),
        ({"assessed_at": "0001-01-01T00:00:00+01:00"}, "assessed_at", "out of range"),
        ({"patient": 999999}, "patient", "does not exist"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(api_as, nurse_a, patient_a, findings, field, reason):
    response = api_as(nurse_a).post("/api/assessments/", {**_body(patient_a), **findings}, format="json")
    assert response.status_code == 400, response.content
    assert reason in " ".join(response.json()[field])
    assert not Assessment.objects.exists()
    assert not Alert.objects.exists()


def test_api_amend_keeps_the_original_and_changes_only_what_is_sent(api_as, nurse_a, patient_a):
    original = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    client = api_as(nurse_a)
    refused = client.post(f"/api/assessments/{original.pk}/amend/", {"systolic_bp_mmhg": 85}, format="json")
    assert refused.status_code == 400
    assert "reason" in refused.json()
    response = client.post(
        f"/api/assessments/{original.pk}/amend/", {"systolic_bp_mmhg": 85, "reason": "misread"}, format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["crs_grade"], data["supersedes"], data["temperature_c"]) == (2, original.pk, "38.4")
    old = client.get(f"/api/assessments/{original.pk}/").json()
    assert (old["is_current"], old["superseded_by"], old["crs_grade"]) == (False, data["id"], 1)
    again = client.post(f"/api/assessments/{original.pk}/amend/", {"reason": "again"}, format="json")
    assert again.status_code == 409


def test_api_list_filters_by_patient_and_is_scoped_to_the_care_team(api_as, nurse_a, nurse_b, patient_a, patient_b):
    mine = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    theirs = record(patient_b, nurse_b, **FEVER, **CALM_ICANS)
    record(patient_a, nurse_a, minutes_ago=30, **NO_CRS)
    client = api_as(nurse_a)
    listed = client.get("/api/assessments/").json()
    assert theirs.pk not in [row["id"] for row in listed["results"]]
    assert next(row["id"] for row in listed["results"]) == mine.pk  # newest first
    assert client.get(f"/api/assessments/?patient={patient_a.pk}").json()["count"] == 2
    assert client.get(f"/api/assessments/?patient={patient_b.pk}").json()["count"] == 0
    assert client.get(f"/api/assessments/{theirs.pk}/").status_code == 404
    assert client.post(f"/api/assessments/{theirs.pk}/amend/", {"reason": "x"}, format="json").status_code == 404
    refused = client.post("/api/assessments/", _body(patient_b, **FEVER_LOW_BP), format="json")
    assert refused.status_code == 400
    assert "patient" in refused.json()


def test_technicians_may_neither_see_nor_record_assessments(api_as, technician, patient_a, nurse_a):
    assessment = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    client = api_as(technician)
    assert client.get("/api/assessments/").status_code == 403
    assert client.get(f"/api/assessments/{assessment.pk}/").status_code == 403
    assert client.post("/api/assessments/", _body(patient_a), format="json").status_code == 403
    assert _as(technician).get(f"/assessments/patients/{patient_a.pk}/new/").status_code == 403


# --- HTML --------------------------------------------------------------------------------------------------------


def test_the_form_spells_out_the_ice_items_and_labels_every_input(nurse_a, patient_a):
    page = _as(nurse_a).get(f"/assessments/patients/{patient_a.pk}/new/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("states the year", "states the month", "states the city", "states the hospital",
                 "names the first of three objects", "show me 2 fingers", "writes a standard sentence",
                 "counts backwards from 100 by 10"):  # fmt: skip
        assert text in html
    form = page.context["form"]
    for field in form:
        assert field.label
    assert html.count('type="radio"') == 10 * 3 + 4 + 5 + 6 + 4 + 3 + 4  # every answer a radio button
    assert html.count("<legend>") == 10 + 6


def test_the_form_rerenders_with_the_values_and_the_refused_field(nurse_a, patient_a):
    post = {"assessed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "temperature_c": "100.4",
            "systolic_bp_mmhg": "85", "vasopressors": "none", "oriented_year": "1"}  # fmt: skip
    page = _as(nurse_a).post(f"/assessments/patients/{patient_a.pk}/new/", post)
    assert page.status_code == 400
    assert page.context["form"].errors["temperature_c"] == ["100.4 is outside 25-45 °C."]
    html = page.content.decode()
    assert 'value="100.4"' in html
    assert 'value="85"' in html
    assert 'value="none" id="id_vasopressors_1" checked' in html
    assert not Assessment.objects.exists()


def test_the_form_records_and_shows_both_grades(nurse_a, patient_a):
    post = {"assessed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "temperature_c": "38.4",
            "systolic_bp_mmhg": "85", "vasopressors": "none", "oxygen": "none",
            **dict.fromkeys(grading.ICE_ITEMS, "1")}  # fmt: skip
    client = _as(nurse_a)
    response = client.post(f"/assessments/patients/{patient_a.pk}/new/", post)
    assessment = Assessment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/assessments/{assessment.pk}/"
    html = client.get(response["Location"]).content.decode()
    assert "grade 2" in html
    assert "hypotension not requiring vasopressors (systolic 85 &lt; 90 mmHg)" in html
    assert "PENDING" in html
    assert "level of consciousness, seizures, motor weakness, raised intracranial pressure" in html
    assert assessment.ice_score == 10
    assert assessment.icans_grade is None


def test_history_lists_the_grades_newest_first_and_other_teams_get_404(nurse_a, nurse_b, patient_a):
    record(patient_a, nurse_a, minutes_ago=480, **FEVER, **CALM_ICANS)
    record(patient_a, nurse_a, **FEVER_LOW_BP, **CALM_ICANS)
    page = _as(nurse_a).get(f"/assessments/patients/{patient_a.pk}/")
    assert [p.assessment.crs_grade for p in page.context["trend"]] == [2, 1]
    assert [p.crs_change for p in page.context["trend"]] == [1, None]
    assert "↑ rose" in page.content.decode()
    chart = _as(nurse_a).get(f"/patients/{patient_a.pk}/").content.decode()
    assert f'href="/assessments/patients/{patient_a.pk}/"' in chart
    other = _as(nurse_b)
    assert other.get(f"/assessments/patients/{patient_a.pk}/").status_code == 404
    assert other.get(f"/assessments/patients/{patient_a.pk}/new/").status_code == 404
    assert other.get(f"/assessments/{Assessment.objects.get(crs_grade=2).pk}/").status_code == 404


def test_the_amend_page_shows_the_original_findings_and_keeps_the_original(nurse_a, patient_a):
    original = record(patient_a, nurse_a, **FEVER, **CALM_ICANS)
    client = _as(nurse_a)
    page = client.get(f"/assessments/{original.pk}/amend/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="38.4"' in html
    assert 'value="120"' in html
    assert 'name="oriented_year" value="1" id="id_oriented_year_1" checked' in html
    post = {field: value for field, value in page.context["form"].initial.items() if value not in (None, False)}
    post.update(systolic_bp_mmhg="85", assessed_at=timezone.localtime(original.assessed_at).strftime("%Y-%m-%dT%H:%M"))
    refused = client.post(f"/assessments/{original.pk}/amend/", post)
    assert refused.status_code == 400
    assert "reason" in refused.context["form"].errors
    response = client.post(f"/assessments/{original.pk}/amend/", {**post, "reason": "BP misread"})
    amended = Assessment.objects.get(supersedes=original)
    assert response["Location"] == f"/assessments/{amended.pk}/"
    assert (amended.crs_grade, amended.temperature_c, amended.oriented_year) == (2, Decimal("38.4"), True)
    assert amended.assessed_at == original.assessed_at
    original.refresh_from_db()
    assert (original.is_current, original.crs_grade, original.systolic_bp_mmhg) == (False, 1, 120)
    again = client.post(f"/assessments/{original.pk}/amend/", {**post, "reason": "again"})
    assert again.status_code == 409
    assert "already amended" in again.content.decode()


def test_the_patient_page_shows_the_latest_five_grades_with_their_changes(nurse_a, technician, patient_a):
    for minutes_ago, findings in (
        (600, NO_CRS), (500, NO_CRS), (400, FEVER), (300, FEVER), (200, FEVER_LOW_BP), (100, FEVER),
    ):  # fmt: skip
        record(patient_a, nurse_a, minutes_ago=minutes_ago, **findings, **CALM_ICANS)
    chart = _as(nurse_a).get(f"/patients/{patient_a.pk}/").content.decode()
    start = chart.index('data-testid="assessment-history"')
    table = chart[start : chart.index("</table>", start)]  # the grades beside CRP and ferritin follow it
    assert table.count('data-testid="assessment-row"') == 5  # the oldest of six is on the history page
    crs = [cell.split("</strong>")[0] for cell in table.split("<td><strong>")[1::2]]
    assert crs == ["1", "2", "1", "1", "0"]  # newest first
    assert "fell" in table  # 2 → 1; the oldest shown (grade 0) is compared with the one before it, also 0
    technician_chart = _as(technician).get(f"/patients/{patient_a.pk}/")
    assert technician_chart.status_code == 200
    assert 'data-testid="assessment-history"' not in technician_chart.content.decode()
