"""The bedside page (identity large, one answer per step, the end of the infusion), pages that the back button
cannot replay (Cache-Control: no-store) next to the inbox poll that keeps its ETag and 304, and the dose worksheet
on the prepare page."""

from __future__ import annotations

import re

import pgtrigger
import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from orders.choices import PreparationStatus
from tests.orders.cell_helpers import COI, H, M, base_time, car_t_released
from tests.orders.helpers import first_dose, live_preparation, start_course, started_preparation

pytestmark = pytest.mark.django_db
POLL = {"X-LabFlow-Poll": "1", "HX-Request": "true"}
PREMED = "Acetaminophen 650 mg PO, diphenhydramine 12.5 mg IV"


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(html: str, testid: str) -> str:
    """The text of the element with this data-testid, tags removed and spaces collapsed."""
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:td|dd|h2|div|span)>', html, re.S)
    assert match, f"no {testid} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


# --- the bedside page ------------------------------------------------------------------------------------------


def test_bedside_page_shows_who_and_which_product_first(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    patient = prep.dose.course.patient
    with time_machine.travel(thawed + H, tick=False):
        page = _logged_in(nurse_a).get(f"/orders/preparations/{prep.pk}/administer/").content.decode()
    block = page[page.index('data-testid="bedside-identity"') : page.index('data-testid="administer-form"')]
    assert _text(block, "bedside-name") == f"{patient.family_name.upper()}, {patient.given_name}"
    assert _text(block, "bedside-mrn") == patient.mrn
    assert _text(block, "bedside-dob") == patient.birth_date.isoformat()
    assert _text(block, "bedside-code") == prep.code
    assert _text(block, "bedside-coi") == COI
    assert _text(block, "bedside-dose") == "1.4 × 10⁸ viable cells"  # noqa: RUF001 - as the certificate says
    assert page.index('data-testid="bedside-identity"') < page.index('data-testid="administer-form"')


def test_a_matched_scan_redirects_and_the_end_is_recorded_once_never_before_the_start(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    url = f"/orders/preparations/{prep.pk}/administer/"
    given = timezone.localtime(thawed + 5 * M).strftime("%Y-%m-%dT%H:%M")
    scan = {"wristband": prep.dose.course.patient.mrn, "label": prep.code, "coi_label": COI,
            "premedication_given_at": given, "premedication_note": PREMED}  # fmt: skip
    with time_machine.travel(thawed + H, tick=False):
        client = _logged_in(nurse_a)
        response = client.post(url, scan)
        assert response.status_code == 302  # post-redirect-get: a reload or back never posts the scan again
        assert response["Location"] == url
        page = client.get(url).content.decode()
    assert f"Match: administration of {prep.code} started" in page
    assert 'data-testid="end-infusion"' in page
    assert 'data-testid="administer-form"' not in page

    with time_machine.travel(thawed + H - 10 * M, tick=False):  # a clock behind the recorded start
        response = _logged_in(nurse_a).post(url, {"step": "end"})
    assert response.status_code == 409
    assert "cannot come before its start" in response.content.decode()
    prep.refresh_from_db()
    assert prep.administration_ended_at is None

    with time_machine.travel(thawed + 2 * H, tick=False):
        client = _logged_in(nurse_a)
        response = client.post(url, {"step": "end"})
        assert response.status_code == 302
        again = client.post(url, {"step": "end"})
    assert again.status_code == 409
    assert "The infusion end is already recorded." in again.content.decode()
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.ADMINISTERED
    assert prep.administration_ended_at == thawed + 2 * H


# --- no back-button replay -------------------------------------------------------------------------------------


def test_pages_after_a_step_are_not_stored_but_the_inbox_poll_keeps_etag_and_304(technicians, nurse_a, car_t):
    thawed = base_time()
    prep = car_t_released(car_t, technicians, thawed)
    with time_machine.travel(thawed + H, tick=False):
        client = _logged_in(nurse_a)
        for url in (f"/orders/preparations/{prep.pk}/administer/", "/orders/ward/", "/alerts/"):
            response = client.get(url)
            assert response.status_code == 200
            assert "no-store" in response["Cache-Control"], url
        step = client.post(f"/orders/preparations/{prep.pk}/administer/", {"step": "end"})  # refused: not started
        assert step.status_code == 409
        assert "no-store" in step["Cache-Control"]

        first = client.get("/alerts/inbox/", headers=POLL)
        assert first.status_code == 200
        assert "no-store" not in first["Cache-Control"]
        assert "no-cache" in first["Cache-Control"]
        unchanged = client.get("/alerts/inbox/", headers=POLL | {"If-None-Match": first["ETag"]})
        assert unchanged.status_code == 304
        assert unchanged["ETag"] == first["ETag"]
        assert "no-store" not in unchanged["Cache-Control"]
        badge = client.get("/alerts/badge/", headers=POLL)
        assert client.get("/alerts/badge/", headers=POLL | {"If-None-Match": badge["ETag"]}).status_code == 304


def test_release_answers_a_redirect_and_the_verify_page_is_not_stored(client, oncologist_a, nurse_a, patient_a):
    from accounts.choices import Role
    from tests import factories
    from tests.orders.helpers import preparation_form

    tech, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"rel{i}") for i in range(2))
    prep = started_preparation(client, oncologist_a, nurse_a, patient_a, tech, checker)
    assert (
        client.post(f"/orders/preparations/{prep.pk}/prepare/", preparation_form(["A1", "A2", "S1"])).status_code == 302
    )
    verifier = _logged_in(checker)
    measured = {"method": "volumetric", "measured": "58", "password": "a-long-test-password"}
    response = verifier.post(f"/orders/preparations/{prep.pk}/verify/", measured)
    assert response.status_code == 302
    released = client.post(f"/orders/preparations/{prep.pk}/release/")
    assert released.status_code == 302
    assert "no-store" in released["Cache-Control"]
    page = client.get(released["Location"])
    assert "no-store" in page["Cache-Control"]
    assert _text(page.content.decode(), "prep-status") == "Released"


# --- the dose worksheet ----------------------------------------------------------------------------------------


def test_worksheet_of_a_flat_dose(client, oncologist_a, nurse_a, patient_a):
    from accounts.choices import Role
    from tests import factories

    tech, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"ws{i}") for i in range(2))
    prep = started_preparation(client, oncologist_a, nurse_a, patient_a, tech, checker)
    page = client.get(f"/orders/preparations/{prep.pk}/prepare/").content.decode()
    assert "rounding_tolerance_percent" not in page  # no key dump
    assert _text(page, "ws-weight").startswith("70.0 kg (on the patient's record since ")
    assert _text(page, "ws-height") == "170.0 cm"
    assert 'data-testid="ws-bsa"' not in page  # a flat dose uses no BSA
    assert _text(page, "ws-basis") == "flat dose of 200 mg"
    assert _text(page, "ws-ordered") == "200 mg"
    assert _text(page, "ws-rounding").startswith("flat doses are not rounded; doses to 0.1 mg")
    assert _text(page, "ws-rounding-result") == "flat dose: not rounded"
    assert _text(page, "ws-dose") == "200.0 mg"
    assert _text(page, "ws-vials") == "2 x 100 mg (2 vials, 200 mg in all; drug at 25 mg/mL)"
    assert _text(page, "ws-draw") == "8.0 mL (200.0 mg ÷ 25 mg/mL, to 0.1 mL)"
    assert _text(page, "ws-diluent") == "50 mL bag of 0.9% sodium chloride or 5% dextrose"
    assert _text(page, "ws-final") == "58.0 mL at 3.45 mg/mL (label range 1 to 10 mg/mL)"


def test_worksheet_of_a_mg_per_kg_dose(client, oncologist_a, nurse_a, patient_a):
    from accounts.choices import Role
    from tests import factories

    tech = factories.make_user(Role.LAB_TECHNICIAN, None, "wsk")
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, "Ipilimumab 3 mg/kg q3w x4")))
    client.force_login(tech)
    page = client.get(f"/orders/preparations/{prep.pk}/prepare/").content.decode()
    assert _text(page, "ws-weight").startswith("70.0 kg")
    assert _text(page, "ws-basis") == "3 mg/kg (by weight)"
    assert _text(page, "ws-ordered") == "3 mg/kg × 70.0 kg = 210 mg"  # noqa: RUF001 - the multiplication sign
    assert _text(page, "ws-rounding").startswith("to the nearest vial total within 10 %; doses to 0.1 mg")
    assert "rounded down from 210.0 mg to 200 mg = 1 x 200 mg" in _text(page, "ws-rounding-result")
    assert _text(page, "ws-dose") == "200.0 mg"
    assert _text(page, "ws-vials") == "1 x 200 mg (1 vial, 200 mg in all; drug at 5 mg/mL)"
    assert _text(page, "ws-draw") == "40.0 mL (200.0 mg ÷ 5 mg/mL, to 0.1 mL)"
    assert _text(page, "ws-diluent").startswith("100 mL bag")
    assert _text(page, "ws-final") == "140.0 mL at 1.43 mg/mL (label range 1 to 2 mg/mL)"


def test_the_worksheet_weight_is_dated_from_when_the_record_took_it(patient_a):
    from datetime import timedelta
    from decimal import Decimal

    from django.apps import apps

    from orders.selectors import weight_recorded_at
    from patients.models import Patient

    events = apps.get_model("patients", "PatientEvent").objects.filter(pgh_obj=patient_a)
    created = timezone.now() - timedelta(days=30)
    measured = created + timedelta(days=20)
    # One test transaction gives every history row its clock: date them as separate days would.
    with pgtrigger.ignore("patients.PatientEvent:append_only"):
        events.update(pgh_created_at=created)
        Patient.objects.filter(pk=patient_a.pk).update(weight_kg=Decimal("75.5"))  # a new measurement
        events.filter(weight_kg=Decimal("75.5")).update(pgh_created_at=measured)
        Patient.objects.filter(pk=patient_a.pk).update(height_cm=Decimal("171"))  # weight unchanged: no new date
        events.filter(height_cm=Decimal("171")).update(pgh_created_at=measured + timedelta(days=2))
    assert weight_recorded_at(patient_a, Decimal("75.50")) == measured
    assert weight_recorded_at(patient_a, Decimal("70")) == created
    assert weight_recorded_at(patient_a, Decimal("90")) is None


def test_worksheet_of_a_cell_dose(client, technicians, car_t):
    client.force_login(technicians[0])
    page = client.get(f"/orders/preparations/{car_t.pk}/prepare/").content.decode()
    assert _text(page, "ws-weight").startswith("70.0 kg")
    assert _text(page, "ws-basis") == "viable cells per kg of weight"
    assert _text(page, "ws-ordered").startswith("2 × 10⁶ cells/kg × 70.0 kg = 1.4 × 10⁸ cells")  # noqa: RUF001
    assert _text(page, "ws-dose") == "1.4 × 10⁸ viable cells"  # noqa: RUF001 - the multiplication sign
    assert 'data-testid="ws-vials"' not in page  # no vials or mg for a cell product
