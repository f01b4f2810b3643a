"""HTML forms: a refused submission shows the page again with what the user typed and why, with the status of
the shared mapping (core.errors.error_status): 400 invalid, 403, 404, 409 conflict."""

from __future__ import annotations

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404

from accounts.choices import Role
from core.errors import Conflict, error_status
from results.models import Result
from specimens.models import Specimen
from tests import factories
from tests.orders.helpers import clear_pre_dose, first_dose, preparation_form, start_course, started_preparation
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


def assert_shown_again(response, status: int, *texts: str) -> None:
    """A refused submission: the page again with `status`, showing each of `texts` (why, and what was typed)."""
    assert response.status_code == status
    page = response.content.decode()
    for text in texts:
        assert text in page


def _error_summary(page: str) -> str:
    start = page.index('data-testid="form-errors"')
    return page[start : page.index("</div>", start)]


def test_one_mapping_from_error_to_status():
    assert error_status(ValidationError({"reason": "Say why."})) == 400
    assert error_status(PermissionDenied()) == 403
    assert error_status(Http404()) == 404
    assert error_status(ObjectDoesNotExist()) == 404
    assert error_status(Conflict("already done")) == 409


def test_preparation_record_keeps_the_typed_rows_on_a_bad_expiry_and_a_repeat_is_a_conflict(
    client, oncologist_a, nurse_a, patient_a
):
    technician, checker = (factories.make_user(Role.LAB_TECHNICIAN, None, f"p{i}") for i in range(2))
    prep = started_preparation(client, oncologist_a, nurse_a, patient_a, technician, checker)
    url = f"/orders/preparations/{prep.pk}/prepare/"
    form = preparation_form(lots=["LOT-07", "LOT-17", "LOT-27"])

    bad = client.post(url, {**form, "expiry-1": "2031-13-45"})
    assert_shown_again(
        bad,
        400,
        "Scan or type the expiry date (YYYY-MM-DD).",
        'value="2031-13-45"',
        'value="LOT-07"',
        'value="LOT-27"',
        'value="0.9% sodium chloride 50 mL"',
    )

    assert client.post(url, form).status_code == 302
    assert_shown_again(client.post(url, form), 409, 'value="LOT-07"')


def test_result_entry_keeps_the_typed_value_and_unit_on_a_refused_unit(client, nurse_a, technician, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    client.force_login(technician)
    k = analyte("Potassium").pk
    bad = client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{k}": "4.4", f"unit-{k}": "U/L"})
    assert_shown_again(bad, 400, "Cannot convert", 'value="4.4"', 'value="U/L"')
    page = bad.content.decode()
    summary = _error_summary(page)
    assert "Potassium: " in summary  # the row by its test, never a field name
    assert f"value-{k}" not in summary
    assert f"unit-{k}" not in summary
    row = page[page.index('data-test="Potassium"') : page.index("</tr>", page.index('data-test="Potassium"'))]
    assert row.startswith('data-test="Potassium" class="invalid">')
    assert 'aria-invalid="true"' in row
    assert 'data-testid="row-error"' in row
    assert "Cannot convert" in row
    empty = client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{k}": " ", f"unit-{k}": "mmol/L"})
    assert_shown_again(empty, 400, "Enter at least one value.")


def test_the_per_test_grid_names_a_refused_row_by_its_accession(client, nurse_a, technician, patient_a):
    good, bad = (collected_specimen(patient_a, nurse_a, "Potassium") for _ in range(2))
    client.force_login(technician)
    url = f"/results/test/{analyte('Potassium').pk}/enter/"
    refused = client.post(url, {f"value-{good.pk}": "4.4", f"value-{bad.pk}": "4,4", "unit": "mmol/L"})
    assert_shown_again(refused, 400, 'value="4.4"', 'value="4,4"')
    summary = _error_summary(refused.content.decode())
    assert f"{bad.accession}: " in summary
    assert good.accession not in summary
    assert f"value-{bad.pk}" not in summary
    assert not Result.objects.exists()


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
    assert_shown_again(bad, 400, "An amendment needs a reason.", 'value="4.7"')
    assert client.post(url, {"value": "4.7", "unit": "mmol/L", "reason": "re-run"}).status_code == 302
    conflict = client.post(url, {"value": "4.8", "unit": "mmol/L", "reason": "re-run twice"})
    assert_shown_again(conflict, 409, "already awaiting verification", 'value="re-run twice"')


def test_specimen_reject_keeps_the_comment_on_a_missing_reason_and_a_second_reject_is_a_conflict(
    client, nurse_a, technician, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "TSH")
    client.force_login(technician)
    url = f"/specimens/{specimen.pk}/reject/"
    bad = client.post(url, {"reason": "", "comment": "tube cracked <b>"})
    assert_shown_again(bad, 400, "tube cracked &lt;b&gt;", 'data-testid="form-errors"', "This field is required.")
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
    assert_shown_again(bad, 400, "An override needs a reason.")
    clear_pre_dose(dose, nurse_a, technician, checker, values={"ALT": ("454", "U/L")})
    client.force_login(oncologist_a)
    conflict = client.post(url, {"dose": dose.pk, "decision": "override", "reason": "tumour board agreed"})
    assert_shown_again(conflict, 409, 'value="tumour board agreed"', 'data-testid="form-errors"')
