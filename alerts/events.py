"""Server-sent events for the inbox and the header badge, served by an async (ASGI) worker (docs/architecture.md
§3 Push).

One Redis pub/sub connection per worker process (`Hub`) fans the channel out to the connected screens by scope;
an idle screen costs a queue and a heartbeat comment, no database query. On every (re)connect the view reads the
user's open count from PostgreSQL and sends `sync`, and the browser refetches its rows through the normal scoped
views: a message lost while a screen was away only delays what it shows. When the hub loses Redis it ends every
stream, so each screen reconnects (and resyncs) or, while Redis stays down, polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.middleware import LAST_ACTIVITY_KEY
from alerts.push import CHANNEL, redis_url, user_scopes
from alerts.selectors import alert_open_count
from core.cache import UNREACHABLE

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0  # keeps proxies from closing an idle stream and finds dead clients
RETRY_MILLISECONDS = 2000  # how soon the browser reconnects after a dropped stream
_CLOSE = object()


class PushUnavailable(Exception):
    """Redis pub/sub is not reachable: the screen polls instead."""


class Subscription:
    def __init__(self, scopes: list[str]) -> None:
        self.scopes = scopes
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=100)

    def offer(self, item: object) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # a stuck client: end its stream, it resyncs on reconnect
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(_CLOSE)


class Hub:
    """The worker's one subscription to the alerts channel, dispatched to its screens by scope."""

    def __init__(self) -> None:
        self._by_scope: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._up = False

    @property
    def connections(self) -> int:
        return len({s for subs in self._by_scope.values() for s in subs})

    async def subscribe(self, scopes: list[str]) -> Subscription:
        await self._listening()
        subscription = Subscription(scopes)
        for scope in scopes:
            self._by_scope.setdefault(scope, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for scope in subscription.scopes:
            subs = self._by_scope.get(scope)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._by_scope[scope]

    async def _listening(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop, self._ready = loop, asyncio.Event()
            self._task = loop.create_task(self._run(self._ready))
        assert self._ready is not None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=2.0)
        except TimeoutError as error:
            raise PushUnavailable from error
        if not self._up:
            raise PushUnavailable

    async def _run(self, ready: asyncio.Event) -> None:
        client = aioredis.Redis.from_url(redis_url(), socket_connect_timeout=0.5)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                self._up = True
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message["data"])
        except UNREACHABLE as error:
            logger.info("alerts push: Redis pub/sub lost (%s); screens reconnect or poll", type(error).__name__)
        finally:
            self._up = False
            ready.set()  # a waiting subscriber learns at once that push is unavailable
            self._end_all()
            with contextlib.suppress(*UNREACHABLE):
                await client.aclose()

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            scopes = [str(s) for s in message["scopes"]]
            event = {"ids": [int(i) for i in message["ids"]], "count": int(message["count"])}
        except (ValueError, KeyError, TypeError):
            logger.warning("alerts push: unreadable message ignored")
            return
        reached: set[Subscription] = set()
        for scope in scopes:
            reached |= self._by_scope.get(scope, set())
        for subscription in reached:
            subscription.offer(event)

    def _end_all(self) -> None:
        for subs in list(self._by_scope.values()):
            for subscription in list(subs):
                subscription.offer(_CLOSE)
        self._by_scope.clear()


hub = Hub()


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _stream_seconds(request: HttpRequest) -> float:
    """A stream ends when the session would time out idle: the reconnect meets the idle-timeout middleware."""
    idle = settings.IDLE_TIMEOUT.total_seconds()
    last = request.session.get(LAST_ACTIVITY_KEY)
    if last is None:
        return idle
    return max(1.0, float(last) + idle - timezone.now().timestamp() + 1.0)


def _unavailable() -> HttpResponse:
    unavailable = HttpResponse("Push unavailable; poll.", status=503, content_type="text/plain")
    unavailable["Retry-After"] = "10"
    return unavailable


async def events(request: HttpRequest) -> HttpResponseBase:
    """GET /alerts/events/: `sync` (open count) on connect, then `alerts` (changed ids, count) as they commit."""
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("Sign in to receive alerts.", status=401, content_type="text/plain")
    if not settings.ALERT_PUSH or not isinstance(request, ASGIRequest):
        # Off, or a WSGI worker (it would hold a thread for the stream's life): the page polls.
        return _unavailable()
    scopes = await sync_to_async(user_scopes)(user)
    try:
        subscription = await hub.subscribe(scopes)  # before the resync: nothing committed meanwhile is missed
    except PushUnavailable:
        return _unavailable()
    try:
        open_count = await sync_to_async(alert_open_count)(user=user)
        lifetime = await sync_to_async(_stream_seconds)(request)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    finally:
        # The stream outlives the request's database work: hand the connection back (to the pool) now, or
        # every open screen would hold one.
        await sync_to_async(connections.close_all)()

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + lifetime
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n" + sse("sync", {"open": open_count})
            while (left := ends - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), timeout=min(HEARTBEAT_SECONDS, left))
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if item is _CLOSE:
                    return
                yield sse("alerts", item)
        finally:
            hub.unsubscribe(subscription)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"  # a buffering proxy would hold events back
    return response
