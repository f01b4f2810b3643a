"""A Redis cache that survives Redis: an unreachable server is a miss, never an error (docs/architecture.md §5).

Redis is a cache and broker, never the only home of anything, so a request must not fail because it is down.
`DegradingRedisCache` is Django's `RedisCache` whose client turns connection errors and timeouts into misses
(reads) and no-ops (writes). After a failure it does not try Redis again for `RETRY_SECONDS`, so a dead server
costs one short timeout per process every few seconds, not one per cache call. It logs one warning when Redis
becomes unreachable (at most one per `WARN_EVERY_SECONDS`) and one line when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Connection failures only: a wrong command or a serialisation error is a bug and still raises.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_SECONDS = 2.0
WARN_EVERY_SECONDS = 60.0
# Short socket timeouts: a request waits at most this long on a server that does not answer.
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}

T = TypeVar("T")
Key = str | bytes | memoryview  # what redis-py accepts as a key (and django-stubs declares)
Expiry = int | timedelta


def redis_py_url(url: str) -> str:
    """A Celery/kombu Redis URL as redis-py reads it (the embedded Redis is a unix socket)."""
    return url.replace("redis+socket://", "unix://", 1)


class Breaker:
    """Whether Redis may be tried now; one per user (`name`), server list and process, shared by its threads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down = False
        self._last_warning = -WARN_EVERY_SECONDS

    def closed(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, operation: str, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._down_until = now + RETRY_SECONDS
            went_down = not self._down
            self._down = True
            warn = went_down and now - self._last_warning >= WARN_EVERY_SECONDS
            if warn:
                self._last_warning = now
        if warn:
            logger.warning("%s: Redis unreachable (%s on %s: %s)", self.name, type(error).__name__, operation, error)

    def succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logger.info("%s: Redis reachable again", self.name)


_breakers: dict[tuple[str, tuple[str, ...]], Breaker] = {}
_breakers_lock = threading.Lock()


def breaker(name: str, servers: tuple[str, ...]) -> Breaker:
    with _breakers_lock:
        return _breakers.setdefault((name, servers), Breaker(name))


class DegradingRedisCacheClient(RedisCacheClient):
    """`RedisCacheClient` whose every call falls back to a miss or a no-op while Redis is unreachable."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **{**DEFAULT_OPTIONS, **options})
        self._breaker = breaker("cache (serving misses)", tuple(servers))

    def _call(self, operation: str, call: Callable[[], T], fallback: T) -> T:
        if not self._breaker.closed():
            return fallback
        try:
            value = call()
        except UNREACHABLE as error:
            self._breaker.failed(operation, error)
            return fallback
        self._breaker.succeeded()
        return value

    def add(self, key: Key, value: Any, timeout: Expiry | None) -> bool:
        # Not stored: a caller using add() as a lock must not believe it holds one.
        return self._call("add", lambda: RedisCacheClient.add(self, key, value, timeout), False)

    def get(self, key: Key, default: Any) -> Any:
        return self._call("get", lambda: RedisCacheClient.get(self, key, default), default)

    def set(self, key: Key, value: Any, timeout: Expiry | None) -> None:
        self._call("set", lambda: RedisCacheClient.set(self, key, value, timeout), None)

    def touch(self, key: Key, timeout: Expiry) -> bool:
        return self._call("touch", lambda: RedisCacheClient.touch(self, key, timeout), False)

    def delete(self, key: Key) -> bool:
        return self._call("delete", lambda: RedisCacheClient.delete(self, key), False)

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Any]:
        keys = list(keys)
        empty: dict[Key, Any] = {}
        return self._call("get_many", lambda: RedisCacheClient.get_many(self, keys), empty)

    def has_key(self, key: Key) -> bool:
        return self._call("has_key", lambda: RedisCacheClient.has_key(self, key), False)

    def incr(self, key: Key, delta: int) -> Any:
        missing = object()
        value = self._call("incr", lambda: RedisCacheClient.incr(self, key, delta), missing)
        if value is missing:
            raise ValueError(f"Key {key!r} not found.")  # what a miss looks like to incr()'s callers
        return value

    def set_many(self, data: Mapping[Key, Any], timeout: Expiry) -> None:
        self._call("set_many", lambda: RedisCacheClient.set_many(self, data, timeout), None)

    def delete_many(self, keys: Iterable[Key]) -> None:
        keys = list(keys)
        self._call("delete_many", lambda: RedisCacheClient.delete_many(self, keys), None)

    def clear(self) -> bool:
        return self._call("clear", lambda: RedisCacheClient.clear(self), False)


class DegradingRedisCache(RedisCache):
    """Django's Redis cache backend, degraded to misses and no-ops while Redis is unreachable."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = DegradingRedisCacheClient
