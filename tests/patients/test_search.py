"""The header's patient search: by name, MRN or birth date, within the user's care teams, never in a URL."""

from __future__ import annotations

from datetime import date

import pytest

from patients.selectors import patient_search
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def patients(team_a, team_b):
    return {
        "anna": factories.make_patient(
            team_a, mrn="LF200001", family_name="Kowalski", given_name="Anna", birth_date=date(1971, 3, 9)
        ),
        "jan": factories.make_patient(
            team_a, mrn="LF200002", family_name="Kowalski", given_name="Jan", birth_date=date(1968, 11, 2)
        ),
        "mia": factories.make_patient(
            team_a, mrn="LF200003", family_name="Annersley", given_name="Mia", birth_date=date(1971, 3, 9)
        ),
        "other": factories.make_patient(
            team_b, mrn="LF200004", family_name="Kowalski", given_name="Eva", birth_date=date(1980, 1, 1)
        ),
    }


def _names(user, query):
    return [p.given_name for p in patient_search(user=user, query=query)]


def test_names_match_by_word_starts_in_any_order_within_the_users_teams(patients, nurse_a):
    assert _names(nurse_a, "kowal") == ["Anna", "Jan"]  # Eva is another team's
    assert _names(nurse_a, "kow ann") == ["Anna"]
    assert _names(nurse_a, "Anna, Kowalski") == ["Anna"]
    assert _names(nurse_a, "ann") == ["Mia", "Anna"]  # Annersley (family) and Anna (given), by family name
    assert _names(nurse_a, "owal") == []  # word starts only


def test_an_mrn_matches_exactly_and_a_birth_date_in_either_form(patients, nurse_a):
    assert _names(nurse_a, "lf200002") == ["Jan"]
    assert _names(nurse_a, "LF20000") == []  # not a prefix search on identifiers
    assert _names(nurse_a, "LF200004") == []  # another team's patient
    assert _names(nurse_a, "1971-03-09") == ["Mia", "Anna"]
    assert _names(nurse_a, "09.03.1971") == ["Mia", "Anna"]


def test_search_is_posted_and_one_match_opens_the_chart(client, patients, nurse_a):
    client.force_login(nurse_a)
    response = client.post("/patients/search/", {"q": "LF200001"})
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patients['anna'].pk}/"
    many = client.post("/patients/search/", {"q": "kowalski"})
    assert many.status_code == 200
    page = many.content.decode()
    assert page.count('data-testid="search-row"') == 2
    assert "Eva" not in page
    assert 'value="kowalski"' in page  # the query stays in the field, not in a URL
    # a GET never searches: a query string would put the patient's name in access logs
    assert 'data-testid="search-row"' not in client.get("/patients/search/?q=kowalski").content.decode()


def test_a_query_too_short_or_without_letters_is_refused_naming_the_field(client, patients, nurse_a):
    client.force_login(nurse_a)
    short = client.post("/patients/search/", {"q": "k"})
    assert short.status_code == 400
    assert "at least 2 characters" in short.content.decode()
    punctuation = client.post("/patients/search/", {"q": "--"})
    assert punctuation.status_code == 400
    assert "Type a name, an MRN or a birth date." in punctuation.content.decode()


def test_every_page_has_the_search_in_its_header(client, nurse_a):
    client.force_login(nurse_a)
    page = client.get("/patients/").content.decode()
    assert 'action="/patients/search/"' in page
    assert 'method="post"' in page.split('action="/patients/search/"')[0][-80:]
