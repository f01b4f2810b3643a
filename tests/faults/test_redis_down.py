"""Redis down: the pages, the login and a critical result's alert keep working from PostgreSQL (a real gunicorn
against a private Redis that is stopped), and the cache degrades to misses instead of raising."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
from django.core.cache.backends.redis import RedisCache

from accounts.choices import Role
from alerts.choices import AlertKind
from alerts.models import Alert
from core.cache import DegradingRedisCache
from tests import factories
from tests.faults.conftest import process_env
from tests.faults.servers import Gunicorn, PrivateRedis, login
from tests.polling import wait_for
from tests.results.helpers import analyte, collected_specimen

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

PASSWORD = "faults-password-2026"


def _user(role, team, username):
    user = factories.make_user(role, team, username)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def test_login_inbox_badge_and_a_critical_alert_work_while_redis_is_down(
    reference_db, tmp_path: Path, private_redis: PrivateRedis, api_as, team_a, patient_a
):
    nurse = _user(Role.NURSE, team_a, "nurse.faults")
    entering = _user(Role.LAB_TECHNICIAN, None, "tech.enters")
    _user(Role.LAB_TECHNICIAN, None, "tech.verifies")
    specimen = collected_specimen(patient_a, nurse, "Potassium")
    entered = api_as(entering).post(
        "/api/results/",
        {"specimen": specimen.pk, "results": [{"lab_test": analyte("Potassium").pk, "value": "6.8", "unit": "mmol/L"}]},
        format="json",
    )
    assert entered.status_code == 201, entered.content
    (result,) = entered.json()

    web = Gunicorn(process_env(redis_url=private_redis.url), tmp_path / "gunicorn.log")
    try:
        private_redis.stop()
        assert not private_redis.ping()

        assert requests.get(f"{web.base}/accounts/login/", timeout=10).status_code == 200
        technician = login(web.base, "tech.verifies", PASSWORD)
        verified = technician.post(f"{web.base}/api/results/verify/", json={"results": [result["id"]]}, timeout=10)
        assert verified.status_code == 200, verified.text[:1000]
        (alert_id,) = verified.json()["alerts"]
        alert = Alert.objects.get(pk=alert_id)  # committed to PostgreSQL while Redis was down
        assert alert.kind == AlertKind.CRITICAL_RESULT

        browser = login(web.base, "nurse.faults", PASSWORD)
        inbox = browser.get(f"{web.base}/alerts/", timeout=10)
        assert inbox.status_code == 200
        assert "Potassium 6.8" in inbox.text
        assert f'data-alert-id="{alert_id}"' in inbox.text
        poll = {"X-LabFlow-Poll": "1", "HX-Request": "true"}
        partial = browser.get(f"{web.base}/alerts/inbox/", headers=poll, timeout=10)
        assert partial.status_code == 200
        assert "Potassium 6.8" in partial.text
        badge = browser.get(f"{web.base}/alerts/badge/", headers=poll, timeout=10)
        assert badge.status_code == 200
        assert '<span class="badge hot" data-testid="alert-count" title="Open alerts">1</span>' in badge.text
        assert not private_redis.ping()  # all of it with Redis down
    finally:
        web.stop()
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log
    assert "Internal Server Error" not in log


def test_the_cache_serves_misses_while_redis_is_down_and_recovers(private_redis: PrivateRedis, caplog):
    cache = DegradingRedisCache(private_redis.url, {})
    cache.set("key", "value")
    assert cache.get("key") == "value"
    private_redis.stop()

    with caplog.at_level(logging.WARNING, logger="core.cache"):
        assert cache.get("key", "miss") == "miss"
        cache.set("key", "other")  # a no-op, not an error
        assert cache.add("new", 1) is False
        assert cache.get_many(["key", "new"]) == {}
        assert cache.has_key("key") is False
        assert cache.delete("key") is False
        with pytest.raises(ValueError, match="not found"):
            cache.incr("counter")
        assert cache.get_or_set("computed", lambda: 42) == 42
    warnings = [record for record in caplog.records if record.name == "core.cache"]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert "Redis unreachable" in warnings[0].getMessage()
    assert warnings[0].exc_info is None

    # Django's own backend raises on the same calls: the degradation is what keeps the pages up.
    plain = RedisCache(private_redis.url, {"OPTIONS": {"socket_connect_timeout": 0.5}})
    with pytest.raises(Exception, match="onnect"):
        plain.get("key")

    private_redis.start()

    def round_trip() -> bool:
        cache.set("key", "back")
        return bool(cache.get("key") == "back")

    wait_for(round_trip, 10, "the cache using Redis again")
    assert cache.add("counter", 1) is True
    assert cache.incr("counter") == 2
