"""Alert push and per-scope version numbers (docs/architecture.md §3 Push).

A *scope* is a set of alerts a screen may be watching: a care team's (`team:<id>`), the lab's queue (`lab`),
the critical values the lab phones (`critical`) or every alert (`all`, administrators). Every alert change made
by `alerts.services` calls :func:`alerts_changed`, which, on commit only, forgets the changed scopes' version
numbers and publishes their names and the alert ids on one Redis channel (ids and scope names only, never patient
data). Version numbers live in Redis with a short TTL and are rebuilt from PostgreSQL when missing, so a lost
bump or a hold that ends without a write only delays a refresh by `VERSION_TTL_SECONDS`. Redis down: no version
numbers (the poll takes the full PostgreSQL path) and no push (the browser polls); PostgreSQL stays the truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import TypeVar

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.choices import Role
from accounts.selectors import AnyUser, user_has_role
from alerts.choices import AlertAudience, AlertKind, AlertStatus
from alerts.models import Alert
from core.cache import UNREACHABLE, breaker, redis_py_url
from patients.models import CareTeamMembership

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "labflow:alerts:changed"
VERSION_TTL_SECONDS = 10  # bounds the delay of a lost bump and of a hold ending (no write marks it)
ALL, LAB, CRITICAL = "all", "lab", "critical"


def redis_url() -> str:
    return redis_py_url(settings.REDIS_URL)


_client_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def _call(operation: Callable[[redis.Redis], T]) -> T | None:
    """One Redis call on the process's shared pool (Django's cache is per thread, and under ASGI every request
    has a thread of its own: a new connection each time); None while Redis is unreachable."""
    # After a refused call, skip Redis a moment instead of waiting on it again (the cache's breaker).
    redis_breaker = breaker("alerts push (versions and push off, polling from PostgreSQL)", (redis_url(),))
    if not redis_breaker.closed():
        return None
    try:
        value = operation(_redis())
    except UNREACHABLE as error:
        redis_breaker.failed("push", error)
        return None
    redis_breaker.succeeded()
    return value


def _redis() -> redis.Redis:
    """The process's client (thread-safe pool) for REDIS_URL."""
    url = redis_url()
    with _client_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        return _clients[url]


# --- Scopes ---


def team_scope(team_id: int) -> str:
    return f"team:{team_id}"


def user_scopes(user: AnyUser) -> list[str]:
    """The scopes whose changes can change what `user` sees (a superset of `alerts.selectors` visibility)."""
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return [ALL]
    teams = CareTeamMembership.objects.filter(user_id=user.pk).values_list("care_team_id", flat=True)
    scopes = sorted({team_scope(t) for t in teams})
    if user_has_role(user, Role.LAB_TECHNICIAN):
        scopes = [LAB, CRITICAL, *scopes]
    return scopes


def _scopes_of(rows: Iterable[tuple[int, str, str]]) -> set[str]:
    """The scopes of alerts given as (care team id, audience, kind) rows."""
    scopes = {ALL}
    for team_id, audience, kind in rows:
        scopes.add(team_scope(team_id))
        if audience == AlertAudience.LAB:
            scopes.add(LAB)
        if kind == AlertKind.CRITICAL_RESULT:
            scopes.add(CRITICAL)
    return scopes


def _scope_filter(scope: str) -> Q:
    if scope == ALL:
        return Q()
    if scope == LAB:
        return Q(audience=AlertAudience.LAB)
    if scope == CRITICAL:
        return Q(kind=AlertKind.CRITICAL_RESULT)
    return Q(patient__care_team_id=int(scope.removeprefix("team:")))


# --- Version numbers ---


def _key(scope: str) -> str:
    return f"labflow:alerts:v:{scope}"


def scope_version_from_db(scope: str) -> str:
    """The scope's version rebuilt from PostgreSQL: a digest of its unresolved, shown alerts."""
    from alerts.selectors import shown  # a selector module import at call time keeps this module light

    summary = (
        Alert.objects.filter(_scope_filter(scope), shown(timezone.now()))
        .exclude(status=AlertStatus.RESOLVED)
        .aggregate(
            n=Count("id"),
            open=Count("id", filter=Q(status=AlertStatus.OPEN)),
            last=Max("updated_at"),
            top=Max("id"),
        )
    )
    raw = ":".join(str(v) for v in (scope, *summary.values()))
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def scope_versions(scopes: Sequence[str]) -> dict[str, str] | None:
    """Each scope's version from Redis, the missing ones rebuilt from PostgreSQL and stored; None if Redis is
    unreachable (the caller takes the full path)."""
    keys = [_key(s) for s in scopes]
    found = _call(lambda r: r.mget(keys)) if keys else []
    if found is None:
        return None
    versions: dict[str, str] = {}
    for scope, key, value in zip(scopes, keys, found, strict=True):
        if value is None:
            rebuilt = scope_version_from_db(scope)
            # NX: a bump that deleted the key meanwhile wins over this (possibly older) rebuild.
            _call(partial(_set_if_missing, key, rebuilt))
            versions[scope] = rebuilt
        else:
            versions[scope] = value.decode() if isinstance(value, bytes) else str(value)
    return versions


def _set_if_missing(key: str, value: str, r: redis.Redis) -> None:
    r.set(key, value, ex=VERSION_TTL_SECONDS, nx=True)


def _forget(scopes: Sequence[str]) -> None:
    keys = [_key(s) for s in scopes]
    if keys:
        _call(lambda r: r.delete(*keys))


def fresh_scope_versions(scopes: Sequence[str]) -> dict[str, str]:
    """Each scope's version from PostgreSQL (a full answer's validator: as many queries as scopes, whatever is in
    Redis), stored in Redis for the short-circuit."""
    versions = {scope: scope_version_from_db(scope) for scope in scopes}

    def store(r: redis.Redis) -> None:
        with r.pipeline(transaction=False) as pipe:
            for scope, version in versions.items():
                pipe.set(_key(scope), version, ex=VERSION_TTL_SECONDS)
            pipe.execute()

    if versions:
        _call(store)
    return versions


def sweep_stale() -> bool:
    """Whether the sweep-stale banner shows (one small query; the sweep lives in a later app, which settings names).
    Not cached: a stopped sweep must reach an open inbox at the next poll."""
    return bool(import_string(settings.SWEEP_STALE_FUNCTION)())


def poll_etag(*, user_id: object, path: str, versions: dict[str, str], stale: bool) -> str:
    """The validator a polled fragment carries when Redis has version numbers: the short-circuit recomputes it
    from the session and Redis alone."""
    raw = "|".join([str(user_id), path, str(int(stale)), *(f"{s}={v}" for s, v in sorted(versions.items()))])
    return '"av-' + hashlib.blake2b(raw.encode(), digest_size=12).hexdigest() + '"'


# --- Publishing (writers) ---


def alerts_changed(alert_ids: Iterable[int], *, scope_rows: Iterable[tuple[int, str, str]] | None = None) -> None:
    """Called by `alerts.services` inside the writing transaction. The changed scopes' versions are forgotten now
    (so a poll in this transaction, or a test's, sees the change) and again once it commits (a poll that rebuilt
    a version from the pre-commit state meanwhile must not keep it); the push is published on commit only.
    `scope_rows`, the changed alerts' (care team id, audience, kind) when the writer already has them, spares
    the query."""
    ids = sorted(set(alert_ids))
    if not ids:
        return
    scopes = sorted(_scopes_of(scope_rows)) if scope_rows is not None else changed_scopes(ids)
    _forget(scopes)
    transaction.on_commit(partial(publish, scopes, ids), robust=True)


_SCOPE_ROWS_SQL = """
SELECT DISTINCT p.care_team_id, a.audience, a.kind
FROM alerts_alert a JOIN patients_patient p ON p.id = a.patient_id
WHERE a.id = ANY(%s::bigint[])
"""


def changed_scopes(alert_ids: Sequence[int]) -> list[str]:
    # One array parameter, not an IN list of every id (psycopg adapts a long IN list slowly).
    with connection.cursor() as cursor:
        cursor.execute(_SCOPE_ROWS_SQL, [list(alert_ids)])
        return sorted(_scopes_of(cursor.fetchall()))


def publish(scopes: Sequence[str], alert_ids: Sequence[int]) -> None:
    """After commit: forget the scopes' versions and tell the push workers (scope names, ids and a count only)."""
    _forget(scopes)
    message = json.dumps({"scopes": list(scopes), "ids": list(alert_ids)[:200], "count": len(alert_ids)})
    # Redis down: nothing published; the screens resync from PostgreSQL when push is back, or poll meanwhile.
    _call(lambda r: r.publish(CHANNEL, message))


def publish_released(*, since_seconds: float) -> int:
    """Held alerts whose hold ended in the last `since_seconds` became visible without a write: tell the screens
    (run by the periodic escalation task). Returns how many."""
    now = timezone.now()
    since = now - timedelta(seconds=since_seconds)
    ids = list(
        Alert.objects.filter(notify_at__gt=since, notify_at__lte=now)
        .filter(notify_at__gt=F("raised_at"))
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("id", flat=True)[:1000]
    )
    if ids:
        publish(changed_scopes(ids), ids)
    return len(ids)
