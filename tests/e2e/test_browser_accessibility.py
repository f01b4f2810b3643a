"""axe-core on every main page of each role, at desktop (1280 px) and tablet (768 px) width: no critical and no
serious violation. The pages hold real rows (an overdue test and its alert, a critical result to review, a result
to verify, a dose on the worklist, a CAR-T patient with an assessment), so tables, forms and tags are checked with
content, not empty."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from accounts.choices import Role
from assessments.services import assessment_record
from monitoring.services import monitoring_tests_flag_overdue
from orders.models import Regimen
from orders.services.courses import course_start
from results.services import ResultEntry, results_enter, results_verify
from tests import factories
from tests.assessments.test_assessments import CALM_ICANS, FEVER
from tests.e2e.pages import login, serious_violations
from tests.orders.helpers import first_dose, live_preparation, start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 768)


@pytest.fixture
def ward(reference_db, team_a):
    now = timezone.now()
    nurse = factories.make_user(Role.NURSE, team_a, "nurse.a11y")
    oncologist = factories.make_user(Role.ONCOLOGIST, team_a, "dr.a11y")
    enterer = factories.make_user(Role.LAB_TECHNICIAN, None, "tech.a11y.one")
    verifier = factories.make_user(Role.LAB_TECHNICIAN, None, "tech.a11y.two")
    patient = factories.make_patient(team_a, family_name="Adler", given_name="Ruth")
    course = start_course(patient, oncologist, "Pembrolizumab 200 mg q3w", in_hours=5)
    factories.make_test(patient, due_at=now - timedelta(hours=2), grace=timedelta(0), name="CRP")
    monitoring_tests_flag_overdue()
    specimen = collected_specimen(patient, nurse, "Potassium", "Sodium")
    (potassium, sodium) = results_enter(
        entries=[
            ResultEntry(specimen=specimen, lab_test=analyte("Potassium"), value="6.9", unit="mmol/L"),
            ResultEntry(specimen=specimen, lab_test=analyte("Sodium"), value="139", unit="mmol/L"),
        ],
        user=enterer, now=now,
    )  # fmt: skip
    results_verify(results=[potassium, sodium], user=verifier, now=now)
    waiting = collected_specimen(patient, nurse, "ALT")
    results_enter(
        entries=[ResultEntry(specimen=waiting, lab_test=analyte("ALT"), value="320", unit="U/L")],
        user=enterer, now=now,
    )  # fmt: skip
    car_t = factories.make_patient(team_a, family_name="Brandt", given_name="Eva")
    course_start(
        patient=car_t, regimen=Regimen.objects.get(name="Axicabtagene ciloleucel single infusion"),
        starts_at=now + timedelta(days=1), user=oncologist, now=now, chain_of_identity="COI-A11Y-1",
    )  # fmt: skip
    assessment_record(patient=car_t, assessed_at=now, user=nurse, now=now, **FEVER, **CALM_ICANS)
    return {
        "nurse": nurse, "oncologist": oncologist, "technician": verifier, "patient": patient, "car_t": car_t,
        "course": course, "specimen": specimen, "result": potassium,
        "preparation": live_preparation(first_dose(course)),
    }  # fmt: skip


def _pages(ward) -> dict[str, list[str]]:
    patient, car_t = ward["patient"].pk, ward["car_t"].pk
    return {
        "nurse": [
            "/alerts/", "/patients/", f"/patients/{patient}/", "/specimens/collection/",
            f"/specimens/collect/{patient}/", "/orders/ward/", f"/results/patient/{patient}/",
            f"/assessments/patients/{car_t}/new/", f"/assessments/patients/{car_t}/", "/patients/search/",
            f"/patients/{patient}/timeline/",
        ],
        "oncologist": [
            "/alerts/", "/results/review/", f"/patients/{car_t}/", f"/orders/courses/{ward['course'].pk}/",
            f"/orders/patients/{patient}/new-course/", f"/results/{ward['result'].pk}/", "/alerts/burden/",
            f"/patients/{car_t}/timeline/?days=30",
        ],
        "technician": [
            "/orders/worklist/", "/orders/verification/", "/results/verify/", "/results/enter/",
            "/specimens/receive/", f"/specimens/{ward['specimen'].pk}/",
            f"/results/specimen/{ward['specimen'].pk}/enter/",
        ],
    }  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
def test_every_main_page_of_each_role_has_no_critical_or_serious_violation(live_server, browser: Browser, ward, width):
    found: dict[str, list[str]] = {}
    for role, urls in _pages(ward).items():
        context = browser.new_context(viewport={"width": width, "height": 1000})
        page = context.new_page()
        login(page, live_server.url, ward[role].username)
        for url in urls:
            response = page.goto(f"{live_server.url}{url}")
            assert response is not None
            assert response.status == 200, f"{role} {url}: {response.status}"
            violations = serious_violations(page)
            if violations:
                found[f"{role} {url}"] = violations
        context.close()
    assert found == {}
