"""The oncologist's review inbox by specimen: abnormal results spelled out, normal ones folded, the most urgent
specimen first, a specimen signed off at once."""

from __future__ import annotations

import re

import pytest

from accounts.choices import Role
from results.models import Result
from results.selectors import review_inbox_panels, review_panels
from tests import factories
from tests.results.helpers import analyte, collected_specimen

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(db):
    return factories.make_user(Role.LAB_TECHNICIAN, None, "tech.enter"), factories.make_user(
        Role.LAB_TECHNICIAN, None, "tech.verify"
    )


def _verified(client, lab, specimen, values: dict[str, tuple[str, str]]) -> dict[str, Result]:
    """Enter `values` (name -> (value, unit)) on the specimen's grid and verify them (two technicians)."""
    enterer, verifier = lab
    client.force_login(enterer)
    data = {}
    for name, (value, unit) in values.items():
        data[f"value-{analyte(name).pk}"], data[f"unit-{analyte(name).pk}"] = value, unit
    assert client.post(f"/results/specimen/{specimen.pk}/enter/", data).status_code == 302
    results = {r.lab_test.name: r for r in Result.objects.filter(specimen=specimen).select_related("lab_test")}
    client.force_login(verifier)
    client.post("/results/verify/", {"results": [r.pk for r in results.values()]})
    return results


@pytest.fixture
def inbox(client, lab, nurse_a, patient_a, team_a):
    """Three specimens of team A: all normal; a grade 3 ALT; a critical potassium."""
    other = factories.make_patient(team_a)
    normal = collected_specimen(other, nurse_a, "Sodium", "Glucose")
    graded = collected_specimen(patient_a, nurse_a, "ALT", "Glucose")
    critical = collected_specimen(patient_a, nurse_a, "Potassium", "Sodium")
    return {
        "normal": (normal, _verified(client, lab, normal, {"Sodium": ("139", "mmol/L"), "Glucose": ("95", "mg/dL")})),
        "graded": (graded, _verified(client, lab, graded, {"ALT": ("320", "U/L"), "Glucose": ("90", "mg/dL")})),
        "critical": (
            critical,
            _verified(client, lab, critical, {"Potassium": ("6.9", "mmol/L"), "Sodium": ("140", "mmol/L")}),
        ),
    }


def test_specimens_come_critical_first_then_by_grade_with_normal_results_folded(inbox, oncologist_a):
    panels = review_panels(user=oncologist_a, groups=review_inbox_panels(user=oncologist_a))
    assert [p.specimen_id for p in panels] == [inbox[k][0].pk for k in ("critical", "graded", "normal")]
    critical, graded, normal = panels
    assert [r.lab_test.name for r in critical.to_read] == ["Potassium"]
    assert [r.lab_test.name for r in critical.normal] == ["Sodium"]
    assert critical.critical
    assert not graded.critical
    assert graded.worst_grade == 3
    assert [r.lab_test.name for r in graded.to_read] == ["ALT"]
    assert normal.to_read == []
    assert sorted(r.lab_test.name for r in normal.normal) == ["Glucose", "Sodium"]
    assert critical.ordered == ["Potassium", "Sodium"]


def test_an_unflagged_or_graded_result_is_never_folded(inbox, oncologist_a):
    sodium = inbox["normal"][1]["Sodium"]
    Result.objects.filter(pk=sodium.pk).update(flag="")  # no reference range: nobody said it is normal
    glucose = inbox["normal"][1]["Glucose"]
    Result.objects.filter(pk=glucose.pk).update(delta_flag=True)
    panels = review_panels(user=oncologist_a, groups=review_inbox_panels(user=oncologist_a))
    (normal,) = [p for p in panels if p.specimen_id == inbox["normal"][0].pk]
    assert {r.lab_test.name for r in normal.to_read} == {"Sodium", "Glucose"}
    assert normal.normal == []


def test_page_shows_no_ctcae_term_for_grade_0_and_normal_flags_are_not_amber(client, inbox, oncologist_a):
    glucose = inbox["graded"][1]["Glucose"]
    assert glucose.ctcae_grade == 0  # graded 0 against a term (e.g. hypoglycaemia)
    assert glucose.ctcae_term
    client.force_login(oncologist_a)
    page = client.get("/results/review/").content.decode()
    rows = page.split('data-testid="review-row"')[1:]
    assert len(rows) == 3
    assert glucose.ctcae_term not in rows[1]
    assert re.search(r'class="flag flag-normal"[^>]*>N<', page)
    assert not re.search(r'class="flag sev sev-2"[^>]*>N<', page)
    assert re.search(r'class="flag sev sev-4"[^>]*>HH<', rows[0])
    assert ["1 normal" in rows[0], "1 normal" in rows[1], "2 normal" in rows[2]] == [True, True, True]


def test_one_tick_signs_off_the_whole_specimen(client, inbox, oncologist_a):
    client.force_login(oncologist_a)
    page = client.get("/results/review/").content.decode()
    values = re.findall(r'name="results" value="([0-9 ]+)"', page)
    assert len(values) == 3
    response = client.post("/results/review/", {"results": [values[0]], "comment": "Repeat K"})
    assert response.status_code == 302
    critical_ids = {r.pk for r in inbox["critical"][1].values()}
    assert set(Result.objects.filter(reviewed_by=oncologist_a).values_list("pk", flat=True)) == critical_ids
    assert len(client.get("/results/review/").content.decode().split('data-testid="review-row"')) == 3


def test_another_teams_specimens_are_not_in_the_inbox(client, lab, inbox, nurse_b, patient_b, oncologist_a):
    theirs = collected_specimen(patient_b, nurse_b, "Potassium")
    _verified(client, lab, theirs, {"Potassium": ("7.0", "mmol/L")})
    groups = list(review_inbox_panels(user=oncologist_a))
    assert theirs.pk not in {g["specimen_id"] for g in groups}
    assert len(groups) == 3
