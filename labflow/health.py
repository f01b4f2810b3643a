"""Health endpoints for load balancers and Compose healthchecks (docs/architecture.md §5 Operations).

`/health/live`: the process answers; it touches neither PostgreSQL nor Redis. `/health/ready`: PostgreSQL
answers, every migration is applied, Redis (broker and cache) answers, and the overdue sweep beat within three
intervals. django-health-check runs the checks; a failing one answers 503 and names itself. Unauthenticated by
nature: the answers name checks and causes, never patient data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from health_check.base import HealthCheck  # type: ignore[import-untyped]
from health_check.checks import Database  # type: ignore[import-untyped]
from health_check.contrib.redis import Redis  # type: ignore[import-untyped]
from health_check.exceptions import ServiceUnavailable  # type: ignore[import-untyped]
from health_check.views import HealthCheckView  # type: ignore[import-untyped]
from redis.asyncio import Redis as AsyncRedis

from core.cache import redis_py_url
from monitoring.selectors import sweep_is_stale

# Seconds a Redis probe may take before the check fails (a black-holed host must not hang the probe).
REDIS_TIMEOUT_SECONDS = 2.0

T = TypeVar("T")


def redis_urls() -> dict[str, str]:
    """The Redis servers LabFlow needs, by role: the Celery broker and the cache (often the same server)."""
    urls: dict[str, list[str]] = {}
    urls.setdefault(redis_py_url(settings.CELERY_BROKER_URL), []).append("broker")
    cache = settings.CACHES["default"]
    if issubclass(import_string(cache["BACKEND"]), RedisCache):
        locations = cache["LOCATION"]
        for location in [locations] if isinstance(locations, str) else locations:
            roles = urls.setdefault(redis_py_url(location), [])
            if "cache" not in roles:
                roles.append("cache")
    return {"+".join(roles): url for url, roles in urls.items()}


def _client_factory(url: str) -> Callable[[], AsyncRedis]:
    def client() -> AsyncRedis:
        return AsyncRedis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )

    return client


@dataclasses.dataclass
class RedisPing(Redis):
    """The library's Redis ping, named by role: the answer must not publish hosts and ports."""

    role: str = "broker"

    def __repr__(self) -> str:
        return f"Redis({self.role})"


def unapplied_migrations() -> list[str]:
    """Migrations on disk that the database has not applied (what `migrate --plan` would run)."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


async def _read_database(read: Callable[[], T], what: str) -> T:
    """`read()` in the request's own thread and database connection (thread_sensitive); a database error fails
    the check, naming `what` could not be read."""
    try:
        return await sync_to_async(read, thread_sensitive=True)()
    except DatabaseError as error:
        raise ServiceUnavailable(f"cannot read {what}") from error


@dataclasses.dataclass
class Migrations(HealthCheck):
    """No migration left to apply: a web process started before `migrate` finished is not ready."""

    async def run(self) -> None:
        pending = await _read_database(unapplied_migrations, "the applied migrations")
        if pending:
            raise ServiceUnavailable(f"{len(pending)} unapplied migration(s), first {pending[0]}")


@dataclasses.dataclass
class SweepHeartbeat(HealthCheck):
    """The overdue sweep beat within SWEEP_STALE_SECONDS (monitoring.selectors.sweep_is_stale): a worker or beat that
    stopped silently delays every overdue alert (docs/architecture.md §3)."""

    async def run(self) -> None:
        stale = await _read_database(sweep_is_stale, "the sweep heartbeat")
        if stale:
            limit = settings.SWEEP_STALE_SECONDS
            raise ServiceUnavailable(f"the overdue sweep has not run in the last {limit:g} s (SWEEP_STALE_SECONDS)")


class _HealthView(HealthCheckView):
    """JSON unless text is asked for (no template, no context processors, no session), and 503, not 500, when a
    check fails: the status load balancers and orchestrators read as "not ready"."""

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        return self.render_to_response_json(response_kwargs.get("status", 200))

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = await super().get(request, *args, **kwargs)
        if response.status_code == 500:  # the library's answer for a failed check
            response.status_code = 503
        return response


class LiveView(_HealthView):
    """The process answers: no check at all."""

    checks = ()


class ReadyView(_HealthView):
    """Ready to serve: PostgreSQL, migrations, Redis (broker and cache) and the sweep heartbeat."""

    checks = (Database, Migrations, SweepHeartbeat)

    def get_checks(self) -> Iterator[HealthCheck]:
        yield from super().get_checks()
        for role, url in redis_urls().items():
            yield RedisPing(role=role, client_factory=_client_factory(url))


live = LiveView.as_view()
ready = ReadyView.as_view()
