"""Real processes for end-to-end tests: a Celery worker and exactly one beat, on the test database (wait for what
they do with tests.polling.wait_for)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = connection.settings_dict
    host = db["HOST"] or ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    query = f"?host={quote(db['OPTIONS']['host'], safe='/')}" if db["OPTIONS"].get("host") else ""
    password = quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{quote(db['USER'], safe='')}:{password}@{host}{port}/{db['NAME']}{query}"


@pytest.fixture
def celery_stack(reference_db: None, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Start `celery worker` and `celery beat` as real processes against Redis and the test database."""
    with celery_processes(tmp_path, settings.REDIS_URL) as logs:
        yield logs


@contextlib.contextmanager
def celery_processes(tmp_path: Path, redis_url: str) -> Iterator[dict[str, str]]:
    """`celery worker` and `celery beat` against `redis_url` and the test database; yields their log files."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "labflow.settings_test",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": redis_url,
        # A queue of its own, so a concurrent run on the same Redis cannot take these tasks.
        "CELERY_TASK_DEFAULT_QUEUE": f"labflow-test-{uuid.uuid4().hex[:8]}",
        "SWEEP_INTERVAL_SECONDS": "1",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "celerybeat-schedule"),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    celery = [sys.executable, "-m", "celery", "-A", "labflow"]
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("worker", "beat")}
    processes = {
        "worker": subprocess.Popen(
            [*celery, "worker", "--loglevel", "INFO", "--concurrency", "1", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
        ),
        "beat": subprocess.Popen(
            [*celery, "beat", "--loglevel", "INFO"], cwd=ROOT, env=env, stdout=logs["beat"], stderr=subprocess.STDOUT
        ),
    }  # fmt: skip
    try:
        yield {name: str(tmp_path / f"{name}.log") for name in processes}
    finally:
        for process in processes.values():
            process.terminate()
        for name, process in processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            logs[name].close()
        connection.close()
