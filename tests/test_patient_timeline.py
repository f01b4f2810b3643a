"""The patient timeline (issue 15): its selector (entries, window edges, scoping) and its page (care-team 404, the
test filter, bad filters, links from the chart and the search). The constant query count is in
tests/test_page_query_counts.py."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from alerts.models import Alert
from alerts.services import alert_resolve
from assessments.services import assessment_record
from labflow.timeline import AHEAD_DAYS, ALERTS, ASSESSMENTS, DOSES, LABS, Entry, Timeline, patient_timeline
from monitoring.models import LabTest
from monitoring.services import monitoring_tests_flag_overdue
from results.services import ResultEntry, results_enter, results_verify
from tests import factories
from tests.orders.helpers import start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


def entries(timeline: Timeline, kind: str | None = None) -> list[Entry]:
    found = [e for day in timeline.days for lane in day.lanes for e in lane.entries]
    return [e for e in found if kind is None or e.kind == kind]


def verified(patient, nurse, technicians, name: str, value: str, unit: str):
    specimen = collected_specimen(patient, nurse, name)
    rows = results_enter(
        entries=[ResultEntry(specimen, analyte(name), value, unit)], user=technicians[0], now=timezone.now()
    )
    results_verify(results=rows, user=technicians[1], now=timezone.now())
    return rows[0]


@pytest.fixture
def clinical(patient_a, nurse_a, oncologist_a, technicians):
    """Patient A with a dose tomorrow (pending its labs), a critical potassium (CTCAE-graded, with its alert), an
    open CRP due in two days and a CRS assessment with fever (grade 1) today."""
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=20)
    potassium = verified(patient_a, nurse_a, technicians, "Potassium", "6.9", "mmol/L")
    crp = factories.make_test(patient_a, due_at=timezone.now() + timedelta(days=2), name="CRP")
    now = timezone.now()
    assessment = assessment_record(
        patient=patient_a, assessed_at=now, user=nurse_a, now=now, temperature_c=Decimal("38.5")
    )
    return course, potassium, crp, assessment


def test_every_lane_has_its_entries_with_states_and_links(clinical, patient_a, oncologist_a):
    course, potassium, crp, assessment = clinical
    timeline = patient_timeline(user=oncologist_a, patient=patient_a, now=timezone.now())
    assert timeline.lanes == [DOSES, LABS, ASSESSMENTS, ALERTS]
    (dose,) = entries(timeline, "dose")
    first = course.doses.get(number=1)
    assert dose.url == f"/orders/courses/{course.pk}/#dose-{first.pk}"
    assert [t.text for t in dose.tags] == ["Planned", "Gate: Pending", "Preparation: Ordered"]
    assert dose.title == "Pembrolizumab 200 mg q3w · dose 1 of 35"
    (result,) = entries(timeline, "result")
    assert result.url == f"/results/{potassium.pk}/"
    assert result.title == "Potassium 6.9 mmol/L"
    texts = [t.text for t in result.tags]
    assert "Critically high (HH)" in texts
    assert any(t.startswith("CTCAE grade ") for t in texts)
    # The course's pre-dose tests and the CRP are open tests, at their due time.
    tests = {e.title: e for e in entries(timeline, "test")}
    assert tests["CRP due"].at == crp.due_at
    assert tests["CRP due"].url == f"/patients/{patient_a.pk}/#monitoring-tests"
    assert len(tests) > 1
    (shown,) = entries(timeline, "assessment")
    assert shown.url == f"/assessments/{assessment.pk}/"
    assert [t.text for t in shown.tags] == ["CRS pending (grade 1 to 4)", "ICANS pending (grade 0 to 4)"]
    alerts = entries(timeline, "alert")
    critical = [a for a in alerts if a.url == f"/results/{potassium.pk}/"]
    assert critical
    assert critical[0].tags[0].text == "Critical"
    # Each entry sits on its local day; today is marked, two weeks ahead are the last days.
    today = [day for day in timeline.days if day.is_today]
    assert len(today) == 1
    assert result in [e for lane in today[0].lanes for e in lane.entries]
    assert timeline.days[-1].day == timezone.localdate() + timedelta(days=AHEAD_DAYS)
    assert timeline.days[0].day == timezone.localdate() - timedelta(days=14)


def test_window_edges_are_the_start_of_the_first_day_and_the_end_of_the_last(patient_a, oncologist_a):
    now = timezone.now()
    first = patient_timeline(user=oncologist_a, patient=patient_a, now=now, past_days=30)
    start, end = first.start, first.end
    assert start == timezone.make_aware(datetime.combine(timezone.localdate(now) - timedelta(days=30), time.min))
    inside = [start, end - timedelta(seconds=1)]
    outside = [start - timedelta(seconds=1), end]
    for due in inside + outside:
        factories.make_test(patient_a, due_at=due, name="CRP")
    timeline = patient_timeline(user=oncologist_a, patient=patient_a, now=now, past_days=30)
    assert sorted(e.at for e in entries(timeline, "test")) == inside
    assert timeline.days[0].day == timezone.localdate(start)
    shorter = patient_timeline(user=oncologist_a, patient=patient_a, now=now, past_days=14)
    assert [e.at for e in entries(shorter, "test")] == [end - timedelta(seconds=1)]


def test_another_care_teams_entries_are_absent(clinical, patient_a, patient_b, nurse_a, nurse_b, technicians):
    verified(patient_b, nurse_b, technicians, "Potassium", "4.1", "mmol/L")
    mine = patient_timeline(user=nurse_a, patient=patient_a, now=timezone.now())
    assert {e.kind for e in entries(mine)} == {"dose", "result", "test", "assessment", "alert"}
    assert all(f"/results/{r.pk}/" != e.url for r in patient_b.results.all() for e in entries(mine))
    # The page scopes the patient; each lane scopes again, so a patient of another team yields nothing.
    assert entries(patient_timeline(user=nurse_b, patient=patient_a, now=timezone.now())) == []


def test_lab_staff_see_no_assessments(clinical, patient_a, technician):
    timeline = patient_timeline(user=technician, patient=patient_a, now=timezone.now())
    assert ASSESSMENTS not in timeline.lanes
    assert entries(timeline, "assessment") == []
    assert entries(timeline, "result")


def test_filter_by_test_narrows_the_labs_only(clinical, patient_a, oncologist_a):
    crp = LabTest.objects.get(name="CRP")
    timeline = patient_timeline(user=oncologist_a, patient=patient_a, now=timezone.now(), lab_test_id=crp.pk)
    assert [e.title for e in entries(timeline, "test")] == ["CRP due"]
    assert entries(timeline, "result") == []
    assert entries(timeline, "dose")
    assert entries(timeline, "assessment")
    # The choices are the tests present in the window (the course's pre-dose tests too), whatever the filter.
    names = [t.name for t in timeline.tests]
    assert {"CRP", "Potassium"} <= set(names)
    assert names == sorted(names)
    assert len(names) > 2


def test_page_is_a_404_for_another_care_teams_patient(client, nurse_b, patient_a):
    client.force_login(nurse_b)
    assert client.get(f"/patients/{patient_a.pk}/timeline/").status_code == 404


def test_page_needs_a_login(client, patient_a):
    response = client.get(f"/patients/{patient_a.pk}/timeline/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_page_filters_by_test_without_script(client, clinical, patient_a, nurse_a):
    client.force_login(nurse_a)
    crp = LabTest.objects.get(name="CRP")
    page = client.get(f"/patients/{patient_a.pk}/timeline/", {"test": crp.pk, "days": 30}).content.decode()
    assert 'data-testid="tl-test"' in page
    assert 'data-testid="tl-result"' not in page
    assert f'<option value="{crp.pk}" selected>CRP</option>' in page
    assert '<option value="30" selected>30 days</option>' in page
    everything = client.get(f"/patients/{patient_a.pk}/timeline/").content.decode()
    assert 'data-testid="tl-result"' in everything
    assert 'aria-current="date"' in everything


@pytest.mark.parametrize(("query", "field"), [({"days": "7"}, "days"), ({"test": "CRP"}, "test")])
def test_bad_filters_are_a_400_naming_the_field(client, patient_a, nurse_a, query, field):
    client.force_login(nurse_a)
    response = client.get(f"/patients/{patient_a.pk}/timeline/", query)
    assert response.status_code == 400
    assert f"{field}: " in response.content.decode()


def test_chart_and_search_link_to_the_timeline(client, patient_a, nurse_a):
    factories.make_patient(patient_a.care_team, family_name=patient_a.family_name)  # two matches: a list
    client.force_login(nurse_a)
    url = f"/patients/{patient_a.pk}/timeline/"
    assert f'href="{url}"' in client.get(f"/patients/{patient_a.pk}/").content.decode()
    assert f'href="{url}"' in client.post("/patients/search/", {"q": patient_a.family_name}).content.decode()


def test_step_up_doses_say_so_with_their_premedication(patient_a, oncologist_a):
    tec = "Teclistamab step-up 0.06/0.3/1.5 mg/kg then 1.5 mg/kg weekly"
    start_course(patient_a, oncologist_a, tec, in_hours=20)
    doses = entries(patient_timeline(user=oncologist_a, patient=patient_a, now=timezone.now()), "dose")
    assert len(doses) > 1
    first = doses[0]
    assert first.title.startswith(f"{tec} · dose 1 of ")
    assert "Step-up dose" in [t.text for t in first.tags]
    assert any(n.startswith("Premedication: ") for n in first.notes)


def test_a_chosen_test_absent_from_the_window_stays_selected(client, clinical, patient_a, nurse_a):
    client.force_login(nurse_a)
    ferritin = LabTest.objects.get(name="Ferritin")
    page = client.get(f"/patients/{patient_a.pk}/timeline/", {"test": ferritin.pk}).content.decode()
    assert f'<option value="{ferritin.pk}" selected>Ferritin</option>' in page
    assert 'data-testid="tl-result"' not in page
    assert 'data-testid="tl-dose"' in page


def test_a_dose_entry_opens_its_row_on_the_course_page(client, patient_a, oncologist_a):
    start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=20)
    (dose,) = entries(patient_timeline(user=oncologist_a, patient=patient_a, now=timezone.now()), "dose")
    path, anchor = dose.url.split("#")
    client.force_login(oncologist_a)
    assert f'id="{anchor}"' in client.get(path).content.decode()


def test_alerts_still_open_from_before_the_window_are_listed_apart(client, patient_a, nurse_a):
    now = timezone.now()
    factories.make_test(patient_a, due_at=now - timedelta(hours=5), grace=timedelta(0), name="CRP")
    factories.make_test(patient_a, due_at=now - timedelta(hours=2), grace=timedelta(0), name="TSH")  # another draw
    monitoring_tests_flag_overdue()
    alerts = Alert.objects.filter(patient=patient_a)
    assert alerts.count() == 2
    # Both were raised 20 days ago (before a 14-day window); one has since been resolved.
    ago = timedelta(days=20)
    alerts.update(raised_at=F("raised_at") - ago, notify_at=F("notify_at") - ago, updated_at=F("updated_at") - ago)
    resolved, still_open = alerts.order_by("pk")
    alert_resolve(alert=resolved, user=nurse_a, now=now, comment="Drawn elsewhere")
    timeline = patient_timeline(user=nurse_a, patient=patient_a, now=now)
    assert [e.title for e in timeline.open_before] == [still_open.summary]
    assert entries(timeline, "alert") == []
    client.force_login(nurse_a)
    page = client.get(f"/patients/{patient_a.pk}/timeline/").content.decode()
    assert 'data-testid="timeline-open-before"' in page
