"""HTML forms: a refused submission shows the page again with what the user typed and why, with the status of
the shared mapping (core.errors.error_status): 400 invalid, 403, 404, 409 conflict."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.choices import Role
from core.errors import Conflict, error_status
from results.models import Result
from specimens.models import Specimen
from tests import factories
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


def test_one_mapping_from_error_to_status():
    assert error_status(ValidationError({"reason": "Say why."})) == 400
    assert error_status(PermissionDenied()) == 403
    assert error_status(Http404()) == 404
    assert error_status(ObjectDoesNotExist()) == 404
    assert error_status(Conflict("already done")) == 409


def _started_preparation(client, oncologist, nurse, patient):
    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"p{i}") for i in range(2))
    dose = first_dose(start_course(patient, oncologist, "Pembrolizumab 200 mg q3w"))
    clear_pre_dose(dose, nurse, technician, checker)
    prep = live_preparation(dose)
    client.force_login(technician)
    assert client.post(f"/orders/preparations/{prep.pk}/start/").status_code == 302
    return prep


def test_preparation_record_keeps_the_typed_rows_on_a_bad_expiry_and_a_repeat_is_a_conflict(
    client, oncologist_a, nurse_a, patient_a
):
    prep = _started_preparation(client, oncologist_a, nurse_a, patient_a)
    url = f"/orders/preparations/{prep.pk}/prepare/"
    expiry = (timezone.localdate() + timedelta(days=300)).isoformat()
    form = {"category": "category_1", "storage": "refrigerated"}
    for i, (product, volume) in enumerate([("Pembrolizumab 100 mg", "4"), ("Pembrolizumab 100 mg", "4"),
                                           ("0.9% sodium chloride 50 mL", "50")]):  # fmt: skip
        form |= {f"product-{i}": product, f"lot-{i}": f"LOT-{i}7", f"expiry-{i}": expiry, f"volume-{i}": volume}
    form["kind-2"] = "diluent"

    bad = client.post(url, {**form, "expiry-1": "2031-13-45"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Scan or type the expiry date (YYYY-MM-DD)." in page
    assert 'value="2031-13-45"' in page
    assert 'value="LOT-07"' in page
    assert 'value="LOT-27"' in page
    assert 'value="0.9% sodium chloride 50 mL"' in page

    assert client.post(url, form).status_code == 302
    again = client.post(url, form)
    assert again.status_code == 409
    assert 'value="LOT-07"' in again.content.decode()


def test_result_entry_keeps_the_typed_value_and_unit_on_a_refused_unit(client, nurse_a, technician, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    client.force_login(technician)
    k = analyte("Potassium").pk
    bad = client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{k}": "4.4", f"unit-{k}": "U/L"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Cannot convert" in page
    assert 'value="4.4"' in page
    assert 'value="U/L"' in page
    empty = client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{k}": " ", f"unit-{k}": "mmol/L"})
    assert empty.status_code == 400
    assert "Enter at least one value." in empty.content.decode()


def test_amending_keeps_what_was_typed_and_a_second_amendment_is_a_conflict(client, nurse_a, technician, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    client.force_login(technician)
    k = analyte("Potassium").pk
    entered = client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{k}": "4.1", f"unit-{k}": "mmol/L"})
    assert entered.status_code == 302
    result = Result.objects.get(specimen=specimen)
    client.force_login(factories.make_user(Role.LAB_TECHNICIAN, None, "checker"))
    client.post("/results/verify/", {"results": [result.pk]})
    client.force_login(technician)
    url = f"/results/{result.pk}/amend/"
    bad = client.post(url, {"value": "4.7", "unit": "mmol/L", "reason": " "})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "An amendment needs a reason." in page
    assert 'value="4.7"' in page
    assert client.post(url, {"value": "4.7", "unit": "mmol/L", "reason": "re-run"}).status_code == 302
    conflict = client.post(url, {"value": "4.8", "unit": "mmol/L", "reason": "re-run twice"})
    assert conflict.status_code == 409
    page = conflict.content.decode()
    assert "already awaiting verification" in page
    assert 'value="re-run twice"' in page


def test_specimen_reject_keeps_the_comment_on_a_missing_reason_and_a_second_reject_is_a_conflict(
    client, nurse_a, technician, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    client.force_login(technician)
    url = f"/specimens/{specimen.pk}/reject/"
    bad = client.post(url, {"reason": "", "comment": "tube cracked <b>"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "tube cracked &lt;b&gt;" in page
    assert 'data-testid="form-errors"' in page
    assert "This field is required." in page
    assert Specimen.objects.get(pk=specimen.pk).status != "rejected"
    assert client.post(url, {"reason": "QS", "comment": "half-filled"}).status_code == 302
    again = client.post(url, {"reason": "QS", "comment": "second try"})
    assert again.status_code in (404, 409)  # a rejected specimen may leave the technician's list
    if again.status_code == 409:
        assert "already" in again.content.decode()


def test_dose_override_without_a_reason_is_400_and_a_discontinued_dose_409_keeping_the_reason(
    client, oncologist_a, nurse_a, patient_a
):
    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"o{i}") for i in range(2))
    course = start_course(patient_a, oncologist_a, "Pembrolizumab 200 mg q3w")
    dose = first_dose(course)
    client.force_login(oncologist_a)
    url = f"/orders/courses/{course.pk}/"
    bad = client.post(url, {"dose": dose.pk, "decision": "override", "reason": "  "})
    assert bad.status_code == 400
    assert "An override needs a reason." in bad.content.decode()
    clear_pre_dose(dose, nurse_a, technician, checker, values={"ALT": ("454", "U/L")})
    client.force_login(oncologist_a)
    conflict = client.post(url, {"dose": dose.pk, "decision": "override", "reason": "tumour board agreed"})
    assert conflict.status_code == 409
    assert 'value="tumour board agreed"' in conflict.content.decode()
    assert 'data-testid="form-errors"' in conflict.content.decode()
