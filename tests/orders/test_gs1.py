"""Vial barcodes (GS1 DataMatrix / GS1-128) read into a preparation row: the parser, the form, the page."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.choices import Role
from orders.forms import PreparationForm
from tests import factories
from tests.orders.helpers import preparation_form, started_preparation

GS = "\x1d"
GTIN = "09506000134352"  # GS1's example GTIN (valid check digit)


def _yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


# --- the form ----------------------------------------------------------------------------------------------------


def test_a_scan_fills_the_row_and_the_product_is_never_guessed():
    expiry = timezone.localdate() + timedelta(days=300)
    form = PreparationForm({"scan-0": f"01{GTIN}17{_yymmdd(expiry)}10LOT-9", "volume-0": "4"})
    assert not form.is_valid()
    assert form["lot-0"].value() == "LOT-9"
    assert form["expiry-0"].value() == expiry.isoformat()
    assert form.errors["product-0"] == [f"Choose the product of GTIN {GTIN}: no product in the catalogue carries "
                                        "this GTIN."]  # fmt: skip
    assert "scan-0" not in form.errors

    form = PreparationForm({"scan-0": f"01{GTIN}17{_yymmdd(expiry)}10LOT-9", "product-0": "Pembrolizumab 100 mg",
                            "volume-0": "4", "category": "category_1", "storage": "refrigerated"})  # fmt: skip
    assert form.is_valid(), form.errors
    (component,) = form.cleaned_data["components"]
    assert (component.product, component.lot, component.expiry) == ("Pembrolizumab 100 mg", "LOT-9", expiry)


def test_an_expired_vial_a_malformed_scan_and_a_contradicting_lot_are_errors_on_the_scan_field():
    yesterday = timezone.localdate() - timedelta(days=1)
    later = timezone.localdate() + timedelta(days=300)
    form = PreparationForm({
        "scan-0": f"(01){GTIN}(17){_yymmdd(yesterday)}(10)OLD1", "product-0": "Pembrolizumab 100 mg",
        "scan-1": "not a barcode", "product-1": "Pembrolizumab 100 mg", "lot-1": "B", "expiry-1": later.isoformat(),
        "scan-2": f"(01){GTIN}(17){_yymmdd(later)}(10)NEW2", "product-2": "Pembrolizumab 100 mg", "lot-2": "OTHER",
        "category": "category_1", "storage": "refrigerated",
    })  # fmt: skip
    assert not form.is_valid()
    assert form.errors["scan-0"] == [f"Vial lot OLD1 expired on {yesterday:%Y-%m-%d}: do not use it."]
    assert str(form.errors["scan-1"][0]).startswith("Not a GS1 vial barcode")
    assert form.errors["scan-2"] == ["The barcode says NEW2 but OTHER was typed: check the vial."]
    assert form["lot-2"].value() == "OTHER"  # what was typed stays


# --- the page ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_prepare_page_records_scanned_vials_and_shows_a_refused_scan(client, oncologist_a, nurse_a, patient_a):
    tech, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"gs{i}") for i in range(2))
    prep = started_preparation(client, oncologist_a, nurse_a, patient_a, tech, checker)
    url = f"/orders/preparations/{prep.pk}/prepare/"
    expiry = timezone.localdate() + timedelta(days=300)
    posted = preparation_form(["A1", "A2", "S1"])
    for i, lot in ((0, "GS-LOT-1"), (1, "GS-LOT-2")):
        posted |= {f"scan-{i}": f"]d201{GTIN}17{_yymmdd(expiry)}10{lot}{GS}", f"lot-{i}": "", f"expiry-{i}": ""}
    refused = dict(posted, **{"product-1": ""})
    response = client.post(url, refused)
    assert response.status_code == 400
    page = response.content.decode()
    assert f'data-testid="gtin-1">GTIN {GTIN}<' in page
    assert 'data-field="product-1"' in page
    assert 'value="GS-LOT-2"' in page  # filled from the barcode, shown again
    assert f'value="{expiry.isoformat()}"' in page

    assert client.post(url, posted).status_code == 302
    prep.refresh_from_db()
    lots = sorted(prep.components.values_list("lot", "expiry"))
    assert lots == [("GS-LOT-1", expiry), ("GS-LOT-2", expiry), ("S1", expiry)]


@pytest.mark.django_db
def test_the_scan_lookup_answers_the_row_or_says_why_not(client, nurse_a):
    tech = factories.make_user(Role.LAB_TECHNICIAN, None, "gs-lookup")
    expiry = timezone.localdate() + timedelta(days=300)
    code = f"01{GTIN}17{_yymmdd(expiry)}10LOT-5{GS}"
    assert client.get("/orders/vial-scan/", {"code": code}).status_code == 302  # signed in first
    client.force_login(nurse_a)
    assert client.get("/orders/vial-scan/", {"code": code}).status_code == 403
    client.force_login(tech)
    answer = client.get("/orders/vial-scan/", {"code": code})
    assert answer.status_code == 200
    assert answer.json() == {"gtin": GTIN, "lot": "LOT-5", "expiry": expiry.isoformat(), "expired": ""}
    old = client.get("/orders/vial-scan/", {"code": f"(01){GTIN}(17)200100(10)OLD"}).json()
    assert old["expired"] == "Vial lot OLD expired on 2020-01-31: do not use it."
    refused = client.get("/orders/vial-scan/", {"code": "nonsense"})
    assert refused.status_code == 400
    assert refused.json()["code"][0].startswith("Not a GS1 vial barcode")


@pytest.mark.django_db
def test_the_tvec_thaw_reads_the_vial_barcode(client, oncologist_a, technicians, patient_a):
    from tests.orders.helpers import first_dose, live_preparation, start_course

    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, "Talimogene laherparepvec intralesional",
                                                    in_hours=5)))  # fmt: skip
    client.force_login(technicians[0])
    started = client.post(f"/orders/preparations/{prep.pk}/start/", {"not_pregnant": "on",
                                                                     "not_immunocompromised": "on"})  # fmt: skip
    assert started.status_code == 302
    url = f"/orders/preparations/{prep.pk}/prepare/"
    expired = client.post(url, {"step": "thaw", "lesions_cm": "3, 2", "vial_scan": f"(01){GTIN}(17)200100(10)TV-OLD"})
    assert expired.status_code == 400
    assert expired.context["form"].errors["vial_scan"] == ["Vial lot TV-OLD expired on 2020-01-31: do not use it."]
    assert 'value="TV-OLD"' in expired.content.decode()  # what the barcode said stays on the page
    expiry = timezone.localdate() + timedelta(days=30)
    done = client.post(url, {"step": "thaw", "lesions_cm": "3, 2", "vial_scan": f"01{GTIN}17{_yymmdd(expiry)}10TV-9"})
    assert done.status_code == 302
    assert list(prep.components.values_list("lot", "expiry")) == [("TV-9", expiry)]
