"""The web UI and API steps of the products added in docs/clinical-sources.md §11: sipuleucel-T's collection and
receipt, T-VEC's start with the preparer's confirmation and its thaw by lesion size, the hazardous flag and the
closed-system transfer device, through the pages (no 500 on any of them) and the API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.choices import PreparationStatus
from orders.models import Preparation, Regimen
from orders.services.preparations import preparation_start
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

pytestmark = pytest.mark.django_db

SIPULEUCEL = "Sipuleucel-T 3 doses q2w"
TVEC = "Talimogene laherparepvec intralesional"
FLUDARABINE = "Fludarabine 30 mg/m² daily x3 (lymphodepletion)"


def _local(delta: timedelta) -> str:
    return (timezone.localtime() + delta).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    "regimen",
    [
        "Tisagenlecleucel single infusion (adult LBCL)",
        "Lisocabtagene maraleucel single infusion (LBCL)",
        "Brexucabtagene autoleucel single infusion (MCL)",
        "Idecabtagene vicleucel single infusion (MM)",
        "Ciltacabtagene autoleucel single infusion (MM)",
        SIPULEUCEL,
        TVEC,
        FLUDARABINE,
    ],
)
def test_each_new_regimen_is_ordered_from_the_new_course_page_and_its_pages_render(
    client, oncologist_a, technicians, patient_a, regimen
):
    client.force_login(oncologist_a)
    chosen = Regimen.objects.get(name=regimen)
    response = client.post(
        f"/orders/patients/{patient_a.pk}/new-course/",
        {"regimen": chosen.pk, "starts_at": _local(timedelta(hours=5)), "chain_of_identity": "COI-NEW-1"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert client.get(response["Location"]).status_code == 200
    prep = Preparation.objects.get(dose__course__regimen=chosen, dose__number=1)
    client.force_login(technicians[0])
    assert client.get("/orders/worklist/").status_code == 200
    assert client.get(f"/orders/preparations/{prep.pk}/prepare/").status_code == 200
    client.force_login(technicians[1])
    assert client.get(f"/orders/preparations/{prep.pk}/verify/").status_code == 200


def test_worklist_flags_the_hazardous_drug_and_asks_the_tvec_preparer(client, oncologist_a, technicians, patient_a):
    start_course(patient_a, oncologist_a, FLUDARABINE, in_hours=5)
    start_course(patient_a, oncologist_a, TVEC, in_hours=6)
    client.force_login(technicians[0])
    page = client.get("/orders/worklist/").content.decode()
    rows = page.split('data-testid="worklist-row"')[1:]
    fludarabine = [row for row in rows if "Fludarabine" in row]
    tvec = [row for row in rows if "Talimogene" in row]
    # Daily fludarabine puts one or two doses in the two-day window, depending on the time of day: each is flagged.
    assert fludarabine
    assert all('data-testid="hazardous"' in row for row in fludarabine)
    assert len(tvec) == 1
    assert 'data-testid="hazardous"' not in tvec[0]
    assert 'data-testid="not-pregnant"' in tvec[0]


def test_tvec_start_from_the_worklist_needs_both_confirmations(client, oncologist_a, technicians, patient_a):
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC, in_hours=5)))
    client.force_login(technicians[0])
    refused = client.post(f"/orders/preparations/{prep.pk}/start/", {"not_pregnant": "on"}, follow=True)
    assert "immunocompromised" in refused.content.decode()
    assert Preparation.objects.get(pk=prep.pk).status == PreparationStatus.ORDERED
    started = client.post(
        f"/orders/preparations/{prep.pk}/start/", {"not_pregnant": "on", "not_immunocompromised": "on"}
    )
    assert started.status_code == 302
    prep.refresh_from_db()
    assert (prep.status, prep.exclusion_confirmed_by) == (PreparationStatus.IN_PREPARATION, technicians[0])
    expiry = (timezone.localdate() + timedelta(days=30)).isoformat()
    bad = client.post(f"/orders/preparations/{prep.pk}/prepare/",
                      {"step": "thaw", "lesions_cm": "6, 0", "vial_lot": "TV-1", "vial_expiry": expiry})  # fmt: skip
    assert bad.status_code == 400
    done = client.post(f"/orders/preparations/{prep.pk}/prepare/",
                       {"step": "thaw", "lesions_cm": "3, 2", "vial_lot": "TV-1", "vial_expiry": expiry})  # fmt: skip
    assert done.status_code == 302
    prep.refresh_from_db()
    assert prep.volume_ml_planned == Decimal(3)
    client.force_login(technicians[1])
    page = client.get(f"/orders/preparations/{prep.pk}/verify/").content.decode()
    assert "lesion 1 (3 cm) 2 mL" in page


def test_sipuleucel_collection_and_receipt_through_the_page(client, oncologist_a, technicians, patient_a):
    course = start_course(patient_a, oncologist_a, SIPULEUCEL, in_hours=5, chain_of_identity="SIP-PAT-9")
    prep = live_preparation(first_dose(course))
    client.force_login(technicians[0])
    collected = client.post(
        f"/orders/preparations/{prep.pk}/prepare/",
        {"step": "collect", "bag_identity": "SIP-D1-1", "collected_at": _local(-timedelta(days=3))},
    )
    assert collected.status_code == 302
    preparation_start(preparation=prep, user=technicians[0], now=timezone.now())
    form = {"step": "receive", "coi_scanned": "SIP-D1-1", "coa_cells": "55000000", "coa_bag_volume_ml": "250",
            "coa_lot": "PV-9"}  # fmt: skip
    no_expiry = client.post(f"/orders/preparations/{prep.pk}/prepare/", form)
    assert no_expiry.status_code == 400
    assert "expiry" in no_expiry.content.decode()
    received = client.post(
        f"/orders/preparations/{prep.pk}/prepare/", {**form, "expires_at": _local(timedelta(hours=8))}
    )
    assert received.status_code == 302
    prep.refresh_from_db()
    assert prep.status == PreparationStatus.AWAITING_VERIFICATION
    assert prep.product_expires_at is not None


def test_hazardous_record_page_needs_the_device(client, oncologist_a, nurse_a, technicians, patient_a):
    dose = first_dose(start_course(patient_a, oncologist_a, FLUDARABINE, in_hours=5))
    clear_pre_dose(dose, nurse_a, *technicians)
    prep = live_preparation(dose)
    preparation_start(preparation=prep, user=technicians[0], now=timezone.now())
    client.force_login(technicians[0])
    page = client.get(f"/orders/preparations/{prep.pk}/prepare/").content.decode()
    assert 'data-testid="hazardous-banner"' in page
    expiry = (timezone.localdate() + timedelta(days=300)).isoformat()
    form = {"category": "category_1", "storage": "room", "product-0": "Fludarabine 50 mg/2 mL", "lot-0": "F1",
            "expiry-0": expiry, "volume-0": str(prep.volume_to_draw_ml)}  # fmt: skip
    refused = client.post(f"/orders/preparations/{prep.pk}/prepare/", form)
    assert refused.status_code == 400
    assert "closed-system transfer device" in refused.content.decode()
    assert (
        client.post(f"/orders/preparations/{prep.pk}/prepare/", {**form, "closed_system_device": "PhaSeal"}).status_code
        == 302
    )
    assert Preparation.objects.get(pk=prep.pk).closed_system_device == "PhaSeal"


def test_api_steps_of_the_new_products(api_as, oncologist_a, technicians, patient_a):
    tvec = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC, in_hours=5)))
    client = api_as(technicians[0])
    assert client.post(f"/api/preparations/{tvec.pk}/start/").status_code == 409
    bad = client.post(f"/api/preparations/{tvec.pk}/confirm-exclusion/", {"not_pregnant": True}, format="json")
    assert bad.status_code == 400
    assert "not_immunocompromised" in bad.json()
    ok = client.post(f"/api/preparations/{tvec.pk}/confirm-exclusion/",
                     {"not_pregnant": True, "not_immunocompromised": True}, format="json")  # fmt: skip
    assert ok.status_code == 200
    assert client.post(f"/api/preparations/{tvec.pk}/start/").status_code == 200
    expiry = (timezone.localdate() + timedelta(days=20)).isoformat()
    thaw = {"lesions_cm": ["6", "1"], "vial_lot": "TV-2", "vial_expiry": expiry}
    thawed = client.post(f"/api/preparations/{tvec.pk}/thaw-virus/", thaw, format="json")
    assert thawed.status_code == 200, thawed.content
    body = thawed.json()
    assert (body["volume_ml_planned"], body["concentration_pfu_per_ml"]) == ("4.00", 1_000_000)

    sip = live_preparation(first_dose(start_course(patient_a, oncologist_a, SIPULEUCEL, chain_of_identity="SIP-P")))
    collect = {"bag_identity": "SIP-D1-77", "collected_at": (timezone.now() - timedelta(days=3)).isoformat()}
    assert client.post(f"/api/preparations/{sip.pk}/collect/", collect, format="json").status_code == 200
    assert client.post(f"/api/preparations/{sip.pk}/start/").status_code == 200
    receipt = {"coi_scanned": "SIP-OTHER", "coa_cells": 60_000_000, "coa_bag_volume_ml": "250", "coa_lot": "PV",
               "expires_at": (timezone.now() + timedelta(hours=6)).isoformat()}  # fmt: skip
    mismatch = client.post(f"/api/preparations/{sip.pk}/receive-fresh/", receipt, format="json")
    assert mismatch.status_code == 409
    assert mismatch.json()["matched"] is False
    received = client.post(f"/api/preparations/{sip.pk}/receive-fresh/", {**receipt, "coi_scanned": "SIP-D1-77"},
                           format="json")  # fmt: skip
    assert received.status_code == 200
    assert received.json()["product_expires_at"] is not None


def test_administer_page_shows_the_bag_expiry_and_the_lesion_plan(client, oncologist_a, nurse_a, technicians,
                                                                   patient_a):  # fmt: skip
    course = start_course(patient_a, oncologist_a, SIPULEUCEL, in_hours=5, chain_of_identity="SIP-PAT-9")
    sip = live_preparation(first_dose(course))
    Preparation.objects.filter(pk=sip.pk).update(status=PreparationStatus.RELEASED, bag_identity="SIP-D1-5",
                                                 beyond_use_at=timezone.now() + timedelta(hours=3))  # fmt: skip
    tvec = live_preparation(first_dose(start_course(patient_a, oncologist_a, TVEC, in_hours=5)))
    Preparation.objects.filter(pk=tvec.pk).update(
        status=PreparationStatus.RELEASED,
        volume_ml_planned=Decimal(2),
        beyond_use_at=timezone.now() + timedelta(hours=3),
        lesion_plan=[{"lesion": "1", "size_cm": "3", "volume_ml": "2"}],
    )
    client.force_login(nurse_a)
    page = client.get(f"/orders/preparations/{sip.pk}/administer/").content.decode()
    assert "not recorded: do not infuse" in page
    assert 'data-testid="scan-coi"' in page
    page = client.get(f"/orders/preparations/{tvec.pk}/administer/").content.decode()
    assert "lesion 1 (3 cm): 2 mL" in page
