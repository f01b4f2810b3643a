"""Fixtures of the fault tests: a private Redis per test, and the environment of the processes under test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.servers import PrivateRedis
from tests.stack import test_database_url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def process_env(
    *, redis_url: str, database_url: str | None = None, settings: str = "labflow.settings_test"
) -> dict[str, str]:
    """The environment of a server process under test: the test database (unless told) and the given Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": database_url or test_database_url(),
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "INFO",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env
