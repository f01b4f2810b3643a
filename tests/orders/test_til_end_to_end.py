"""Lifileucel (TIL) and the high-dose aldesleukin after it, end to end through the public interfaces, once pharmacy
has entered the thaw-to-infusion limit on the Drug in the Django admin (docs/clinical-sources.md §12).

The catalogue holds no thaw limit for lifileucel (the label's could not be verified), so its thaw is refused until
an administrator enters one. Everything else goes through the REST API as the role that does it, each request at
an explicit time ("t0" is the next whole hour, wherever the day is): the chain-of-identity hand-offs, the receipt
with its certificate, the thaw, the second technician's verification, the release, the nurse's bedside check with
the premedication and the end of the infusion; then the aldesleukin course in its 3-24 h window, a tolerance check
and dose 1 prepared, verified, released and given.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from itertools import pairwise
from typing import Any

import pytest
import time_machine
from django import forms
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.choices import Role
from orders.choices import CoiStep, DoseStatus, PreparationStatus
from orders.models import Drug, IdentityCheck, Preparation, Regimen, ToleranceCheck, TreatmentCourse
from tests import factories
from tests.orders.cell_helpers import PASSWORD, H, M, base_time
from tests.orders.test_tolerance import IL2, LIFILEUCEL, WELL

pytestmark = pytest.mark.django_db

COI = "COI-TIL-2026-000042"
# NOT a label number: an artificial value standing for what pharmacy enters in the admin from the label. It only
# has to be long enough for this test's timeline (thaw, checks, a 100 min infusion); the test asserts that the
# value entered is the one enforced, never that it is the right one.
ADMIN_ENTERED_LIMIT = timedelta(hours=3, minutes=37)
ADMIN_SOURCE = "AMTAGVI (lifileucel) US PI: thaw-to-infusion limit entered by pharmacy (test entry, not the label's)"
# A certificate inside the seeded range (7.5-72 x 10^9 viable cells) and a bag inside the seeded 100-125 mL.
CERTIFICATE = {"coi_scanned": COI, "coa_cells": 20_000_000_000, "coa_bag_volume_ml": "110.0", "coa_lot": "TIL-LOT-7"}
PREMEDICATION = "Acetaminophen and diphenhydramine"  # what the seeded premedication names; no doses invented


@pytest.fixture
def at(api_as):
    """`at(moment, user).post(url, body)`: one request by `user` at `moment` (a fresh login each time, so the
    session's idle timeout never spans the hours between steps)."""

    class Request:
        def __init__(self, moment: datetime, user: User) -> None:
            self.moment, self.user = moment, user

        def post(self, url: str, body: dict[str, Any] | None = None) -> Any:
            with time_machine.travel(self.moment, tick=False):
                return api_as(self.user).post(url, body or {}, format="json")

        def get(self, url: str) -> Any:
            with time_machine.travel(self.moment, tick=False):
                return api_as(self.user).get(url)

    return Request


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def admin_change_form(page: Any) -> dict[str, Any]:
    """The change form as the admin page renders it: every field with its current value (an unticked box is left
    out, as a browser leaves it out)."""
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = field.prepare_value(form[name].value())
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    return data


def til_drug() -> Drug:
    return Regimen.objects.get(name=LIFILEUCEL).drug


def drug_events(drug: Drug) -> Any:
    return Drug.pgh_event_model.objects.filter(pgh_obj_id=drug.pk).order_by("pgh_id")  # type: ignore[attr-defined]


def admin_url(drug: Drug) -> str:
    return f"/admin/orders/drug/{drug.pk}/change/"


def limit_entry_form(client: Client, drug: Drug, today: date) -> dict[str, Any]:
    """The Drug's change form as an administrator opens it, with the limit, its source and its date entered."""
    page = client.get(admin_url(drug))
    assert page.status_code == 200
    return admin_change_form(page) | {
        "thaw_to_infusion_limit": str(ADMIN_ENTERED_LIMIT), "source": ADMIN_SOURCE, "effective_from": today.isoformat(),
        "_save": "Save",
    }  # fmt: skip


def test_lifileucel_then_aldesleukin_once_pharmacy_enters_the_thaw_limit(
    at, client, patient_a, oncologist_a, nurse_a, technicians
):
    prep_tech, checker = technicians
    t0 = base_time().astimezone(UTC)  # absolute time: the hours between steps are real hours across a DST change
    drug = til_drug()

    # --- The lifileucel course: ordered, the product collected, shipped and received with its certificate --------
    ordered = at(t0 - 3 * 24 * H, oncologist_a).post("/api/courses/", {
        "patient": patient_a.pk, "regimen": Regimen.objects.get(name=LIFILEUCEL).pk,
        "starts_at": (t0 + 20 * M).isoformat(), "chain_of_identity": COI,
    })  # fmt: skip
    assert ordered.status_code == 201, ordered.content
    course_id = ordered.json()["id"]
    (dose,) = rows(at(t0 - 3 * 24 * H, oncologist_a).get(f"/api/doses/?course={course_id}"))
    (prep,) = rows(at(t0 - 3 * 24 * H, prep_tech).get(f"/api/preparations/?dose={dose['id']}"))
    prep_url = f"/api/preparations/{prep['id']}"
    assert (prep["cells_min"], prep["cells_max"], prep["dose_mg"]) == (7_500_000_000, 72_000_000_000, None)

    handoff = f"/api/courses/{course_id}/handoff/"
    for moment, step in ((t0 - 3 * 24 * H + H, "collection"), (t0 - 2 * 24 * H, "shipment")):
        response = at(moment, prep_tech).post(handoff, {"step": step, "scanned": COI})
        assert response.status_code == 201, response.content
        assert response.json()["matched"] is True
    received = at(t0 - 24 * H, prep_tech).post(f"{prep_url}/receive/", CERTIFICATE)
    assert received.status_code == 200, received.content
    assert (received.json()["coa_cells"], received.json()["coa_lot"]) == (20_000_000_000, "TIL-LOT-7")
    assert at(t0 - 10 * M, prep_tech).post(f"{prep_url}/start/").status_code == 200

    # --- 1. Refused first: the catalogue gives no thaw-to-infusion limit ------------------------------------------
    refused = at(t0 - 5 * M, prep_tech).post(f"{prep_url}/thaw/", {"coi_scanned": COI})
    assert refused.status_code == 409
    assert "The catalogue gives no thaw-to-infusion limit for Lifileucel" in refused.json()["detail"]
    assert Preparation.objects.get(pk=prep["id"]).status == PreparationStatus.IN_PREPARATION
    assert not IdentityCheck.objects.filter(course_id=course_id, step=CoiStep.THAW).exists()

    # --- 2. Pharmacy's administrator enters the limit on the Drug in the Django admin -----------------------------
    admin = User.objects.create_superuser("pharmacy.admin", password=PASSWORD)
    staff_technician = factories.make_user(Role.LAB_TECHNICIAN, None, "tech.staff")
    User.objects.filter(pk=staff_technician.pk).update(is_staff=True)  # may open the admin, may not edit drugs
    before = Drug.objects.filter(pk=drug.pk).values().get()
    events_before = drug_events(drug).count()
    with time_machine.travel(t0 - 4 * M, tick=False):
        admin_client = Client()
        admin_client.force_login(admin)
        form = limit_entry_form(admin_client, drug, timezone.localdate(t0))
        for not_admin, refusal in ((prep_tech, 302), (oncologist_a, 302), (staff_technician, 403)):
            client.force_login(not_admin)
            response = client.post(admin_url(drug), form)
            assert response.status_code == refusal
            if refusal == 302:
                assert response["Location"].startswith("/admin/login/")
        assert Drug.objects.filter(pk=drug.pk).values().get() == before  # nothing changed
        assert drug_events(drug).count() == events_before
        saved = admin_client.post(admin_url(drug), form)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    after = Drug.objects.filter(pk=drug.pk).values().get()
    changed = {"thaw_to_infusion_limit", "source", "effective_from"}
    assert (after["thaw_to_infusion_limit"], after["source"], after["effective_from"]) == (
        ADMIN_ENTERED_LIMIT,
        ADMIN_SOURCE,
        timezone.localdate(t0),
    )
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }  # every other field kept
    entry = drug_events(drug).last()
    assert drug_events(drug).count() == events_before + 1
    assert (entry.thaw_to_infusion_limit, entry.source) == (ADMIN_ENTERED_LIMIT, ADMIN_SOURCE)
    assert entry.pgh_context.metadata["user"] == admin.pk
    assert entry.pgh_context.metadata["url"] == f"/admin/orders/drug/{drug.pk}/change/"

    # --- 3. Thaw, verification by the second technician, release ------------------------------------------------
    thawed = at(t0, prep_tech).post(f"{prep_url}/thaw/", {"coi_scanned": COI})
    assert thawed.status_code == 200, thawed.content
    assert thawed.json()["status"] == PreparationStatus.AWAITING_VERIFICATION
    prep_row = Preparation.objects.get(pk=prep["id"])
    assert prep_row.infusion_end_by == prep_row.beyond_use_at == t0 + ADMIN_ENTERED_LIMIT  # the admin's entry rules
    verify = {"password": PASSWORD, "method": "cell_product", "coi_label": COI, "bag_intact": True}
    assert at(t0 + 5 * M, prep_tech).post(f"{prep_url}/verify/", verify).status_code == 403  # never their own
    verified = at(t0 + 10 * M, checker).post(f"{prep_url}/verify/", verify)
    assert verified.status_code == 200, verified.content
    assert (verified.json()["verified_by"], verified.json()["rejection_reason"]) == (checker.pk, "")
    released = at(t0 + 15 * M, checker).post(f"{prep_url}/release/")
    assert released.status_code == 200, released.content
    assert released.json()["status"] == PreparationStatus.RELEASED

    # --- Bedside: the nurse scans wristband, bag and COI label; the premedication the drug needs is recorded ------
    bedside = {"wristband": patient_a.mrn, "bag_label": prep["code"], "coi_label": COI}
    stopped = at(t0 + 20 * M, nurse_a).post(f"{prep_url}/administer/", bedside)
    assert stopped.status_code == 409
    assert "premedication not recorded" in stopped.json()["note"]
    given = at(t0 + 20 * M, nurse_a).post(f"{prep_url}/administer/", {
        **bedside, "premedication_given_at": (t0 - 25 * M).isoformat(), "premedication_note": PREMEDICATION,
    })  # fmt: skip
    assert given.status_code == 200, given.content
    assert given.json()["status"] == PreparationStatus.ADMINISTERED
    assert given.json()["premedication_note"] == PREMEDICATION
    chain = IdentityCheck.objects.filter(course_id=course_id, matched=True).order_by("at", "id")
    assert [c.step for c in chain] == [CoiStep.COLLECTION, CoiStep.SHIPMENT, CoiStep.RECEIPT, CoiStep.THAW,
                                       CoiStep.BEDSIDE]  # fmt: skip

    # Before the infusion ends, aldesleukin cannot be ordered: no completed lifileucel infusion.
    il2 = Regimen.objects.get(name=IL2).pk
    course_body = {"patient": patient_a.pk, "regimen": il2}
    early = at(t0 + H, oncologist_a).post("/api/courses/", {**course_body, "starts_at": (t0 + 5 * H).isoformat()})
    assert early.status_code == 400
    assert "none is recorded" in early.json()["starts_at"][0]

    ended = t0 + 20 * M + 100 * M  # the seeded 100 min infusion
    end = at(ended, nurse_a).post(f"{prep_url}/end-administration/")
    assert end.status_code == 200, end.content
    assert end.json()["administration_ended_at"] is not None

    # --- The aldesleukin course: 3-24 h after the infusion ended, refused outside it naming starts_at ------------
    ordering = ended + H
    for outside in (ended + 3 * H - M, ended + 24 * H + M):
        refused = at(ordering, oncologist_a).post("/api/courses/", {**course_body, "starts_at": outside.isoformat()})
        assert refused.status_code == 400
        assert "3-24 h after" in refused.json()["starts_at"][0]
    assert not TreatmentCourse.objects.filter(regimen_id=il2).exists()
    first = ended + 6 * H
    ordered = at(ordering, oncologist_a).post("/api/courses/", {**course_body, "starts_at": first.isoformat()})
    assert ordered.status_code == 201, ordered.content
    il2_course = ordered.json()["id"]
    doses = rows(at(ordering, oncologist_a).get(f"/api/doses/?course={il2_course}"))
    assert [d["number"] for d in doses] == [1, 2, 3, 4, 5, 6]  # exactly 6 doses
    planned = [datetime.fromisoformat(d["planned_at"]) for d in doses]
    assert planned[0] == first
    assert [later - earlier for earlier, later in pairwise(planned)] == [8 * H] * 5
    dose1 = doses[0]["id"]

    # --- Dose 1 prepared (vials and D5W), verified by the other technician, released ----------------------------
    (il2_prep,) = rows(at(ordering, prep_tech).get(f"/api/preparations/?dose={dose1}"))
    il2_url = f"/api/preparations/{il2_prep['id']}"
    assert at(first - 2 * H, prep_tech).post(f"{il2_url}/start/").status_code == 200
    il2_row = Preparation.objects.get(pk=il2_prep["id"])
    regimen = Regimen.objects.select_related("drug").get(pk=il2)
    assert il2_row.dose_mg == (regimen.dose_amount * patient_a.weight_kg).quantize(regimen.drug.dose_step_mg)
    assert il2_row.volume_to_draw_ml is not None
    assert il2_row.diluent_bag_ml is not None
    vial_mg = regimen.drug.vial_contents_mg[0]
    vials = int((il2_row.dose_mg / vial_mg).to_integral_value(rounding=ROUND_CEILING))
    expiry = (timezone.localdate(first) + timedelta(days=60)).isoformat()
    recorded = at(first - 2 * H + 15 * M, prep_tech).post(f"{il2_url}/record/", {
        "components": [
            {"kind": "vial", "product": "Aldesleukin 22 MIU vial", "lot": "AL-1", "expiry": expiry,
             "volume_ml": str(il2_row.volume_to_draw_ml), "count": vials},
            {"kind": "diluent", "product": f"5% dextrose {il2_row.diluent_bag_ml} mL", "lot": "D5-1",
             "expiry": expiry, "volume_ml": str(il2_row.diluent_bag_ml)},
        ],
        "category": "category_1", "storage": "room",
    })  # fmt: skip
    assert recorded.status_code == 200, recorded.content
    measured = str(recorded.json()["final_volume_ml"])
    verify = {"password": PASSWORD, "method": "volumetric", "measured": measured}
    verified = at(first - 90 * M, checker).post(f"{il2_url}/verify/", verify)
    assert verified.status_code == 200, verified.content
    assert (verified.json()["verified_by"], verified.json()["rejection_reason"]) == (checker.pk, "")
    released = at(first - 85 * M, checker).post(f"{il2_url}/release/")
    assert released.status_code == 200, released.content

    # --- Dose 1 waits for the bedside tolerance check; given after a tolerated one, its 15 min infusion ended ----
    bedside = {"wristband": patient_a.mrn, "bag_label": il2_prep["code"]}
    unchecked = at(first - 45 * M, nurse_a).post(f"{il2_url}/administer/", bedside)
    assert unchecked.status_code == 409
    assert "no bedside tolerance check in the last 2 h" in unchecked.json()["note"]
    findings = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in WELL.items()}
    checked = at(first - 30 * M, nurse_a).post(f"/api/doses/{dose1}/tolerance-check/", findings)
    assert checked.status_code == 201, checked.content
    assert (checked.json()["verdict"], checked.json()["reasons"]) == ("tolerated", [])
    given = at(first, nurse_a).post(f"{il2_url}/administer/", bedside)
    assert given.status_code == 200, given.content
    assert given.json()["status"] == PreparationStatus.ADMINISTERED
    end = at(first + 15 * M, nurse_a).post(f"{il2_url}/end-administration/")
    assert end.status_code == 200, end.content

    doses = rows(at(first + 20 * M, oncologist_a).get(f"/api/doses/?course={il2_course}"))
    assert [d["status"] for d in doses] == [DoseStatus.GIVEN] + [DoseStatus.PLANNED] * 5  # still exactly 6
    assert ToleranceCheck.objects.filter(dose_id=dose1).count() == 1
    (til_dose,) = rows(at(first + 20 * M, oncologist_a).get(f"/api/doses/?course={course_id}"))
    assert til_dose["status"] == DoseStatus.GIVEN
