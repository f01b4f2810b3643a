"""API tokens (django-rest-knox): issued by logging in, stored as digests, expiring, revoked at logout (API or
browser) and by an admin, shown in the admin by prefix only."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"  # tests.factories.make_user's


def _login(api: APIClient, username: str, password: str = PASSWORD):
    return api.post("/api/auth/login/", {"username": username, "password": password}, format="json")


def _get(token: str, path: str = "/api/patients/"):
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Token {token}")


def test_login_issues_a_token_that_authenticates(api, nurse_a, patient_a):
    response = _login(api, "nurse.a")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert [p["id"] for p in _get(token).json()["results"]] == [patient_a.pk]
    nurse_a.refresh_from_db()
    assert nurse_a.last_login is not None


def test_login_refusals_name_the_field_or_the_reason(api, nurse_a):
    missing = api.post("/api/auth/login/", {"username": "nurse.a"}, format="json")
    assert missing.status_code == 400
    assert "password" in missing.json()
    wrong = _login(api, "nurse.a", "not-the-password")
    assert wrong.status_code == 400
    assert wrong.json() == {"non_field_errors": ["Unable to sign in with the username and password given."]}
    assert not AuthToken.objects.exists()


def test_the_token_is_stored_hashed_never_in_clear(api, nurse_a):
    token = _login(api, "nurse.a").json()["token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        rows = cursor.fetchall()
    assert len(rows) == 1
    stored = [str(value) for value in rows[0]]
    assert not any(token in value for value in stored)
    row = AuthToken.objects.get()
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert token.startswith(row.token_key)
    assert len(row.token_key) < len(token) // 4


def test_a_token_expires_after_its_ttl_and_use_does_not_extend_it(api, nurse_a):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        response = _login(api, "nurse.a")
        token = response.json()["token"]
        assert datetime.fromisoformat(response.json()["expiry"]) == start + timedelta(hours=12)
        traveller.move_to(start + timedelta(hours=11, minutes=59))
        assert _get(token).status_code == 200
        traveller.move_to(start + timedelta(hours=12, seconds=1))
        expired = _get(token)
        assert expired.status_code == 401
        assert expired["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.filter(user=nurse_a).exists()  # knox deletes an expired token when it is presented


def test_api_logout_revokes_this_token_and_logoutall_every_token(nurse_a):
    first, second, third = (factories.api_token(nurse_a) for _ in range(3))
    out = APIClient().post("/api/auth/logout/", HTTP_AUTHORIZATION=f"Token {first}")
    assert out.status_code == 204
    assert _get(first).status_code == 401
    assert _get(second).status_code == 200
    out_all = APIClient().post("/api/auth/logoutall/", HTTP_AUTHORIZATION=f"Token {second}")
    assert out_all.status_code == 204
    assert _get(second).status_code == 401
    assert _get(third).status_code == 401


def test_logging_out_of_the_browser_revokes_the_users_tokens(client, nurse_a, nurse_b):
    mine, theirs = factories.api_token(nurse_a), factories.api_token(nurse_b)
    assert client.post("/accounts/login/", {"username": "nurse.a", "password": PASSWORD}).status_code == 302
    assert _get(mine).status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert _get(mine).status_code == 401
    assert _get(theirs).status_code == 200  # another user's token is not touched


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    return client


def test_the_admin_lists_tokens_by_prefix_only(admin_client, nurse_a):
    token = factories.api_token(nurse_a)
    row = AuthToken.objects.get()
    page = admin_client.get("/admin/knox/authtoken/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<td class="field-token_key">{row.token_key}</td>' in html
    assert token not in html
    assert f">{row.digest}<" not in html  # the digest is never a shown value
    assert "/admin/knox/authtoken/add/" not in html
    assert admin_client.get("/admin/knox/authtoken/add/").status_code == 403  # no minting tokens for others
    assert 'value="delete_selected"' not in html
    assert 'value="revoke"' in html


def test_an_admin_revokes_selected_tokens(admin_client, nurse_a, nurse_b):
    revoked, kept = factories.api_token(nurse_a), factories.api_token(nurse_b)
    digest = AuthToken.objects.get(user=nurse_a).digest
    response = admin_client.post(
        "/admin/knox/authtoken/", {"action": "revoke", "_selected_action": [digest], "index": 0}, follow=True
    )
    assert response.status_code == 200
    assert "1 token(s) revoked." in response.content.decode()
    assert _get(revoked).status_code == 401
    assert _get(kept).status_code == 200
