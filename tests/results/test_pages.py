"""The results web UI: entry grid, verification queue, review inbox, result page, trends, call log."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from accounts.choices import Role
from alerts.choices import AlertKind
from alerts.models import Alert
from results.models import Result
from tests import factories
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


def _enter(client, specimen, name, value, unit):
    test = analyte(name).pk
    return client.post(f"/results/specimen/{specimen.pk}/enter/", {f"value-{test}": value, f"unit-{test}": unit})


def _entered_and_verified(client, specimen, name, value, unit, technician, verifier) -> Result:
    """One value entered through the entry grid by `technician` and verified by `verifier`, left logged in."""
    client.force_login(technician)
    assert _enter(client, specimen, name, value, unit).status_code == 302
    result = Result.objects.get(specimen=specimen, lab_test=analyte(name))
    client.force_login(verifier)
    client.post("/results/verify/", {"results": [result.pk]})
    return result


@pytest.fixture
def technician_2(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "tech2")


def test_entry_grid_shows_previous_values_and_stores_entries(client, nurse_a, technician, technician_2, patient_a):
    earlier = collected_specimen(patient_a, nurse_a, "Potassium", "Sodium")
    client.force_login(technician)
    k, na = analyte("Potassium").pk, analyte("Sodium").pk
    response = client.post(f"/results/specimen/{earlier.pk}/enter/", {f"value-{k}": "4.0", f"unit-{k}": "mmol/L"})
    assert response.status_code == 302
    client.force_login(technician_2)
    client.post("/results/verify/", {"results": list(Result.objects.values_list("pk", flat=True))})

    later = collected_specimen(patient_a, nurse_a, "Potassium", "Sodium")
    client.force_login(technician)
    page = client.get(f"/results/specimen/{later.pk}/enter/").content.decode()
    assert "4.0 mmol/L" in page  # the previous potassium beside the input
    assert page.count('data-testid="value-input"') == 2
    bad = client.post(f"/results/specimen/{later.pk}/enter/", {f"value-{k}": "4.4", f"unit-{k}": "U/L"})
    assert bad.status_code == 400
    assert "Cannot convert" in bad.content.decode()
    good = client.post(
        f"/results/specimen/{later.pk}/enter/",
        {f"value-{k}": "4.4", f"unit-{k}": "mmol/L", f"value-{na}": "139", f"unit-{na}": "mmol/L"},
    )
    assert good.status_code == 302
    assert Result.objects.filter(specimen=later).count() == 2


def test_verify_queue_excludes_own_and_review_inbox_signs_off(
    client, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    client.force_login(technician)
    _enter(client, specimen, "Potassium", "6.9", "mmol/L")
    assert 'data-testid="verify-row"' not in client.get("/results/verify/").content.decode()
    client.force_login(technician_2)
    queue = client.get("/results/verify/").content.decode()
    assert queue.count('data-testid="verify-row"') == 1
    result = Result.objects.get()
    client.post("/results/verify/", {"results": [result.pk]})
    result.refresh_from_db()
    assert result.status == "final"
    assert Alert.objects.filter(kind=AlertKind.CRITICAL_RESULT).count() == 1

    client.force_login(oncologist_a)
    review = client.get("/results/review/").content.decode()
    assert "Potassium" in review
    assert "HH" in review
    client.post("/results/review/", {"results": [result.pk], "comment": "Repeat K, ECG"})
    result.refresh_from_db()
    assert result.reviewed_by == oncologist_a
    assert result.review_comment == "Repeat K, ECG"


def test_timeline_has_chart_data_with_reference_and_grade_bands(
    client, nurse_a, oncologist_a, technician, technician_2, patient_a
):
    for value in ("30", "26"):
        specimen = collected_specimen(patient_a, nurse_a, "Platelets")
        client.force_login(technician)
        _enter(client, specimen, "Platelets", value, "10*3/uL")
        client.force_login(technician_2)
        client.post(
            "/results/verify/",
            {"results": list(Result.objects.filter(status="preliminary").values_list("pk", flat=True))},
        )
    client.force_login(oncologist_a)
    response = client.get(f"/results/patient/{patient_a.pk}/")
    assert response.status_code == 200
    (chart,) = response.context["chart_data"]
    assert chart["name"] == "Platelets"
    assert [p["y"] for p in chart["points"]] == [30.0, 26.0]
    assert chart["reference"] == {"low": 150.0, "high": 400.0}
    grades = [band["grade"] for band in chart["grade_bands"]]
    assert grades == [4, 3, 2, 1]  # <25, 25-49, 50-74, 75-LLN (x10^9/L)
    assert json.dumps(chart)  # serialisable for the page
    assert 'data-testid="trend-chart"' in response.content.decode()


def test_result_page_shows_versions_and_amend_form(client, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Haemoglobin")
    result = _entered_and_verified(client, specimen, "Haemoglobin", "9.0", "g/dL", technician, technician_2)
    response = client.post(f"/results/{result.pk}/amend/", {"value": "9.5", "unit": "g/dL", "reason": "Re-run"})
    assert response.status_code == 302
    page = client.get(f"/results/{result.pk}/").content.decode()
    assert "Re-run" in page
    assert page.count("<tr><td>") >= 2


def test_critical_call_page_logs_a_read_back(client, nurse_a, technician, technician_2, patient_a):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    _entered_and_verified(client, specimen, "Potassium", "2.4", "mmol/L", technician, technician_2)
    alert = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT)
    url = f"/results/alerts/{alert.pk}/call/"
    assert client.post(url, {"recipient": "RN Rossi"}).status_code == 400
    assert client.post(url, {"recipient": "RN Rossi", "read_back_confirmed": "on"}).status_code == 302
    assert "RN Rossi" in client.get(url).content.decode()


def test_per_test_grid_across_specimens(client, nurse_a, technician, team_a):
    patients = [factories.make_patient(team_a) for _ in range(3)]
    specimens = [collected_specimen(p, nurse_a, "Comprehensive metabolic panel") for p in patients]
    potassium = analyte("Potassium")
    client.force_login(technician)
    page = client.get(f"/results/test/{potassium.pk}/enter/").content.decode()
    assert page.count('data-testid="grid-row"') == 3
    response = client.post(
        f"/results/test/{potassium.pk}/enter/",
        {"unit": "mmol/L", f"value-{specimens[0].pk}": "4.1", f"value-{specimens[2].pk}": "6.4"},
    )
    assert response.status_code == 302
    values = Result.objects.order_by("value_numeric").values_list("value_numeric", flat=True)
    assert list(values) == [Decimal("4.1000"), Decimal("6.4000")]
    page = client.get(f"/results/test/{potassium.pk}/enter/").content.decode()
    assert page.count('data-testid="grid-row"') == 1  # only the specimen still without a potassium


def test_trends_default_to_90_days_back_and_14_ahead_with_a_table_and_only_the_doses_inside(
    client, nurse_a, oncologist_a, technician, technician_2, patient_a, settings
):
    from datetime import datetime, timedelta

    from django.utils import timezone

    for value in ("30", "26"):
        specimen = collected_specimen(patient_a, nurse_a, "Platelets")
        _entered_and_verified(client, specimen, "Platelets", value, "10*3/uL", technician, technician_2)
    old, _recent = Result.objects.filter(lab_test__name="Platelets").order_by("pk")
    now = timezone.now()
    Result.objects.filter(pk=old.pk).update(observed_at=now - timedelta(days=120))
    doses = [now - timedelta(days=200), now - timedelta(days=30), now + timedelta(days=10), now + timedelta(days=20)]
    settings.DOSE_DATES_FUNCTION = "tests.results.test_pages.fixed_doses"
    FIXED_DOSES[:] = [d.isoformat() for d in doses]

    client.force_login(oncologist_a)
    response = client.get(f"/results/patient/{patient_a.pk}/")
    (chart,) = response.context["chart_data"]
    assert [p["y"] for p in chart["points"]] == [26.0]  # the 120-day-old 30 is outside the window
    assert chart["doses"] == [doses[1].isoformat(), doses[2].isoformat()]
    start, end = (datetime.fromisoformat(chart["window"][k]) for k in ("start", "end"))
    assert abs((now - start) - timedelta(days=90)) < timedelta(minutes=1)
    assert abs((end - now) - timedelta(days=14)) < timedelta(minutes=1)
    page = response.content.decode()
    table = page.split('data-testid="trend-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 2  # header and the one point in the window
    assert ">26<" in table

    whole = client.get(f"/results/patient/{patient_a.pk}/", {"window": "all"})
    (chart,) = whole.context["chart_data"]
    assert [p["y"] for p in chart["points"]] == [30.0, 26.0]
    assert chart["window"]["start"] is None
    assert len(chart["doses"]) == 3  # the one 20 days ahead is past the 14-day horizon

    bad = client.get(f"/results/patient/{patient_a.pk}/", {"window": "7y"})
    assert bad.status_code == 400
    assert "window: Select a valid choice." in bad.content.decode()


FIXED_DOSES: list[str] = []


def fixed_doses(*, user, patient_id):
    return FIXED_DOSES


DECIMAL_COMMA_CASES = [
    ("de", "4,5", "4.5"), ("de", "<0,05", "0.05"), ("fr", "3,9", "3.9"), ("de", "4.5", "4.5"), ("en-gb", "4.5", "4.5")
]  # fmt: skip


@pytest.mark.parametrize(
    ("language", "typed", "stored"),
    DECIMAL_COMMA_CASES,
)
def test_the_grid_takes_the_site_locales_decimal_comma(
    client, nurse_a, technician, patient_a, settings, language, typed, stored
):
    settings.LANGUAGE_CODE = language
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    client.force_login(technician)
    assert _enter(client, specimen, "Potassium", typed, "mmol/L").status_code == 302
    value = Result.objects.get(specimen=specimen).value_numeric
    assert value is not None
    assert str(value.normalize()) == stored


@pytest.mark.parametrize("typed", ["4,5", "1,234", "4,5,6"])
def test_a_comma_is_refused_where_the_locale_uses_the_point_and_nothing_is_stored(
    client, nurse_a, technician, patient_a, typed
):
    specimen = collected_specimen(patient_a, nurse_a, "Potassium")
    client.force_login(technician)
    response = _enter(client, specimen, "Potassium", typed, "mmol/L")
    assert response.status_code == 400
    assert "is not a number" in response.content.decode()
    assert f'value="{typed}"' in response.content.decode()  # what was typed is shown again
    assert not Result.objects.filter(specimen=specimen).exists()
