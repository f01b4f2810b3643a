"""The orders web UI: start a course, course page with gate verdicts and override, worklist, verify page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.choices import Role
from orders.models import TreatmentCourse
from tests import factories
from tests.orders.helpers import (
    clear_pre_dose,
    first_dose,
    live_preparation,
    preparation_form,
    start_course,
    started_preparation,
)

pytestmark = pytest.mark.django_db


def test_oncologist_starts_a_course_and_overrides_a_blocked_dose(client, oncologist_a, patient_a):
    from orders.models import Regimen

    client.force_login(oncologist_a)
    assert client.get(f"/orders/patients/{patient_a.pk}/new-course/").status_code == 200
    starts = (timezone.localtime() + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    regimen = Regimen.objects.get(name="Nivolumab 240 mg q2w")
    response = client.post(f"/orders/patients/{patient_a.pk}/new-course/", {"regimen": regimen.pk, "starts_at": starts})
    assert response.status_code == 302
    course = TreatmentCourse.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert page.count('data-testid="course-dose"') == 26
    assert "not collected yet" in page
    dose = first_dose(course)
    client.post(f"/orders/courses/{course.pk}/", {"dose": dose.pk, "reason": "Labs drawn at the referring site"})
    assert dose.decisions.get().by == oncologist_a
    assert (
        "Overridden by onc.a: Labs drawn at the referring site"
        in client.get(f"/orders/courses/{course.pk}/").content.decode()
    )


def test_nurse_cannot_start_courses_or_override(client, nurse_a, oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Nivolumab 240 mg q2w")
    client.force_login(nurse_a)
    assert client.get(f"/orders/patients/{patient_a.pk}/new-course/").status_code == 403
    response = client.post(f"/orders/courses/{course.pk}/", {"dose": first_dose(course).pk, "reason": "x"})
    assert response.status_code == 403


def test_worklist_shows_verdicts_and_disables_start_when_blocked(client, oncologist_a, nurse_a, team_a):
    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"t{i}") for i in range(2))
    blocked_patient, cleared_patient = factories.make_patient(team_a), factories.make_patient(team_a)
    start_course(blocked_patient, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=4)
    cleared = first_dose(start_course(cleared_patient, oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=6))
    clear_pre_dose(cleared, nurse_a, technician, checker)
    client.force_login(technician)
    page = client.get("/orders/worklist/").content.decode()
    blocked_row = page[page.index(blocked_patient.mrn) : page.index(cleared_patient.mrn)]
    assert "Pending" in blocked_row
    assert "disabled" in blocked_row
    assert "Cleared" in page[page.index(cleared_patient.mrn) :]
    prep = live_preparation(cleared)
    assert client.post(f"/orders/preparations/{prep.pk}/start/").status_code == 302
    prep.refresh_from_db()
    assert prep.status == "in_preparation"


def test_worklist_forms_share_one_csrf_token_that_starts_a_preparation(oncologist_a, nurse_a, team_a):
    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"c{i}") for i in range(2))
    start_course(factories.make_patient(team_a), oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=4)
    cleared = first_dose(start_course(factories.make_patient(team_a), oncologist_a, "Nivolumab 240 mg q2w", in_hours=6))
    clear_pre_dose(cleared, nurse_a, technician, checker)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(technician)
    page = browser.get("/orders/worklist/").content.decode()
    rows = page[page.index('data-testid="worklist"') : page.index("</table>")]
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', rows)
    assert len(tokens) == 2
    assert len(set(tokens)) == 1  # one masked token for every row's form
    start = f"/orders/preparations/{live_preparation(cleared).pk}/start/"
    assert browser.post(start).status_code == 403
    assert browser.post(start, {"csrfmiddlewaretoken": tokens[0]}).status_code == 302
    assert live_preparation(cleared).status == "in_preparation"


def test_verify_page_refuses_the_preparer_and_a_wrong_password(client, oncologist_a, nurse_a, patient_a):
    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"v{i}") for i in range(2))
    prep = started_preparation(client, oncologist_a, nurse_a, patient_a, technician, checker)
    form = preparation_form(lots=["L0", "L1", "L2"])
    assert client.post(f"/orders/preparations/{prep.pk}/prepare/", form).status_code == 302
    verify = {"method": "gravimetric", "measured": "8.0", "password": "a-long-test-password"}
    assert client.post(f"/orders/preparations/{prep.pk}/verify/", verify).status_code == 403
    client.force_login(checker)
    assert client.post(f"/orders/preparations/{prep.pk}/verify/", {**verify, "password": "wrong"}).status_code == 403
    assert client.post(f"/orders/preparations/{prep.pk}/verify/", verify).status_code == 302
    prep.refresh_from_db()
    assert prep.verified_by == checker


def test_worklist_query_count_does_not_grow_with_doses(client, oncologist_a, team_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    technician = factories.make_user(Role.LAB_TECHNICIAN, None, "wl")
    client.force_login(technician)
    client.get("/orders/worklist/")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/orders/worklist/").status_code == 200
        return len(captured)

    start_course(factories.make_patient(team_a), oncologist_a, "Pembrolizumab 200 mg q3w", in_hours=5)
    few = queries()
    for hours in range(6, 16):
        start_course(factories.make_patient(team_a), oncologist_a, "Nivolumab 240 mg q2w", in_hours=hours)
    assert queries() == few


def test_doses_api_computes_gates_per_page_not_per_dose(api_as, oncologist_a, team_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    technician = factories.make_user(Role.LAB_TECHNICIAN, None, "api")
    client = api_as(technician)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/doses/", {"status": "planned"}).status_code == 200
        return len(captured)

    start_course(factories.make_patient(team_a), oncologist_a, "Ipilimumab 3 mg/kg q3w x4")
    queries()  # warm-up: the session's first activity is written, later ones within 30 s are not
    few = queries()
    for _ in range(5):
        start_course(factories.make_patient(team_a), oncologist_a, "Ipilimumab 3 mg/kg q3w x4")
    assert queries() == few
    body = client.get("/api/doses/", {"status": "planned"}).json()
    assert body["count"] == 24
    assert {d["gate"]["verdict"] for d in body["results"]} == {"pending"}


def test_two_oncologists_continue_a_discontinued_dose_on_the_course_page(
    client, oncologist_a, nurse_a, patient_a, team_a
):
    from orders.models import DoseDecision

    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"c{i}") for i in range(2))
    second = factories.make_user(Role.ONCOLOGIST, team_a, "onc.second")
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w")
    dose = first_dose(course)
    clear_pre_dose(dose, nurse_a, technician, checker, values={"ALT": ("454", "U/L")})
    client.force_login(oncologist_a)
    page = client.get(f"/orders/courses/{course.pk}/").content.decode()
    assert "Permanently discontinue" in page
    assert 'data-testid="cosign"' in page
    url = f"/orders/courses/{course.pk}/"
    single = client.post(url, {"dose": dose.pk, "decision": "override", "reason": "fine"})
    assert single.status_code == 409
    form = {"dose": dose.pk, "decision": "cosigned", "reason": "MDT decision", "cosigner": "onc.second"}
    assert client.post(url, {**form, "cosigner_password": "wrong"}).status_code == 403
    assert not DoseDecision.objects.exists()
    response = client.post(url, {**form, "cosigner_password": "a-long-test-password"})
    assert response.status_code == 302
    assert DoseDecision.objects.get().cosigned_by == second
    assert "Continued by onc.a and onc.second: MDT decision" in client.get(url).content.decode()


def test_editing_a_hold_rule_in_the_admin_makes_a_new_version(client):
    from django.contrib.auth.models import User

    from orders.models import HoldRule

    admin = User.objects.create_superuser("root", password="a-long-test-password")
    client.force_login(admin)
    rule = HoldRule.objects.get(key="glucose-withhold", active=True)
    page = client.get(f"/admin/orders/holdrule/{rule.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(
        lab_test=rule.lab_test_id, threshold="300", drugs=[d.pk for d in rule.drugs.all()], regimens=[],
        effective_from=rule.effective_from.isoformat() if rule.effective_from else "",
    )  # fmt: skip
    response = client.post(f"/admin/orders/holdrule/{rule.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    new = HoldRule.objects.get(key="glucose-withhold", active=True)
    assert (rule.active, rule.superseded_by_id, rule.threshold) == (False, new.pk, Decimal(250))
    assert (new.version, new.threshold, new.created_by_id) == (rule.version + 1, Decimal(300), admin.pk)
    assert new.drugs.count() == rule.drugs.count() > 0
