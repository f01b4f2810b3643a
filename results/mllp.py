"""MLLP (Minimal Lower Layer Protocol) over plain TCP: a threaded server and a small client.

A frame is ``0x0B <message> 0x1C 0x0D``. The server calls ``handler(message_text)`` once per frame, in order,
and writes the framed string it returns (the ACK) back on the same connection; a connection carries any
number of messages. Protocol faults are answered with an AR ACK and the connection stays usable:

* data outside a frame (no start block): one AR (ERR 100), then everything up to the next start block is
  discarded;
* a start block inside a frame (the frame was cut short): AR (ERR 100) for the cut frame, then the new frame
  is read;
* a message over ``max_message_bytes``: AR (ERR 104) at once, then the rest up to the end block is discarded.

A handler that raises (or returns no ACK) is answered with AE / ERR 207 and logged by exception type, message
control id and code location only: message content (patient data) never goes to the log.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal

from results.hl7.ack import build_ack, control_id_of, new_control_id
from results.hl7.errors import Hl7Error

logger = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\r"
_BETWEEN_FRAMES = b" \t\r\n"  # tolerated (and ignored) between frames

Handler = Callable[[str], str]


class MllpError(ConnectionError):
    """The peer closed the connection or answered with something that is not an MLLP frame."""


def frame(message: str) -> bytes:
    """``message`` framed for MLLP, encoded as UTF-8."""
    return START_BLOCK + message.encode("utf-8") + END_BLOCK + CARRIAGE_RETURN


def decode_payload(payload: bytes) -> str:
    """A frame's bytes as text: UTF-8, else Latin-1 (which never fails)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


@dataclass(frozen=True)
class FrameEvent:
    """Something the decoder found: a message, or a protocol fault with the bytes it has of it (capped)."""

    kind: Literal["message", "truncated", "oversized", "unframed"]
    payload: bytes


class FrameDecoder:
    """Incremental MLLP frame decoder; feed it whatever ``recv`` returns.

    A frame ends at its end block; the carriage return after it is optional (it is skipped with any other
    whitespace between frames), so a sender that leaves it out still gets its ACK at once.
    """

    HEAD_BYTES = 4096  # how much of a faulty frame is kept, enough to read its MSH for the AR

    def __init__(self, max_message_bytes: int = 1_000_000) -> None:
        self.max_message_bytes = max_message_bytes
        self._state: Literal["idle", "frame", "oversized", "unframed"] = "idle"
        self._buffer = bytearray()

    @property
    def pending(self) -> bool:
        """True while a frame has started but not ended."""
        return self._state in ("frame", "oversized")

    def feed(self, data: bytes) -> list[FrameEvent]:
        events: list[FrameEvent] = []
        i, n = 0, len(data)
        while i < n:
            if self._state == "idle":
                while i < n and data[i] in _BETWEEN_FRAMES:
                    i += 1
                if i == n:
                    break
                if data[i : i + 1] == START_BLOCK:
                    self._state, self._buffer = "frame", bytearray()
                    i += 1
                else:
                    end = data.find(START_BLOCK, i)
                    events.append(FrameEvent("unframed", bytes(data[i : end if end >= 0 else n][: self.HEAD_BYTES])))
                    self._state = "unframed"
            elif self._state == "unframed":
                start = data.find(START_BLOCK, i)
                if start < 0:
                    break
                self._state, i = "idle", start
            elif self._state == "oversized":
                end = data.find(END_BLOCK, i)
                if end < 0:
                    break
                self._state, i = "idle", end + 1
            else:
                end, start = data.find(END_BLOCK, i), data.find(START_BLOCK, i)
                stop = min(x for x in (end, start, n) if x >= 0)
                self._buffer += data[i:stop]
                if len(self._buffer) > self.max_message_bytes:
                    events.append(FrameEvent("oversized", bytes(self._buffer[: self.HEAD_BYTES])))
                    self._buffer = bytearray()
                    self._state, i = "oversized", stop
                    continue
                if stop == n:
                    break
                if stop == start:
                    events.append(FrameEvent("truncated", bytes(self._buffer[: self.HEAD_BYTES])))
                    self._buffer = bytearray()
                else:
                    events.append(FrameEvent("message", bytes(self._buffer)))
                    self._buffer = bytearray()
                    self._state = "idle"
                i = stop + 1
        return events


def _safe_traceback(exc: BaseException) -> str:
    """Where an exception happened (file, line, code) without its message, which may carry patient data."""
    return "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))


class _Connection(socketserver.BaseRequestHandler):
    server: MllpServer
    request: socket.socket

    def setup(self) -> None:
        self.server.track(self.request)

    def finish(self) -> None:
        self.server.untrack(self.request)

    def handle(self) -> None:
        sock = self.request
        sock.settimeout(self.server.idle_timeout)
        decoder = FrameDecoder(self.server.max_message_bytes)
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        logger.debug("MLLP connection from %s", peer)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                logger.info("MLLP connection from %s idle for %ss, closing", peer, self.server.idle_timeout)
                return
            except OSError:
                return
            if not data:
                if decoder.pending:
                    logger.warning("MLLP connection from %s closed in the middle of a message", peer)
                return
            for event in decoder.feed(data):
                reply = self.server.respond(event, peer)
                try:
                    sock.sendall(frame(reply))
                except OSError:
                    logger.warning("MLLP connection from %s: could not send the ACK", peer)
                    return


class MllpServer(socketserver.ThreadingTCPServer):
    """A threaded MLLP server: one thread per connection, messages of a connection handled in order."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        *,
        max_message_bytes: int = 1_000_000,
        idle_timeout: float = 60,
        shutdown_grace: float = 1.0,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.handler = handler
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.shutdown_grace = shutdown_grace
        self._connections: set[socket.socket] = set()
        self._lock = threading.Condition()
        super().__init__(address, _Connection)

    @property
    def port(self) -> int:
        """The port actually bound (useful after binding port 0)."""
        return int(self.server_address[1])

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
            self._lock.notify_all()

    def respond(self, event: FrameEvent, peer: str = "") -> str:
        """The ACK for one decoded frame (or protocol fault)."""
        now = datetime.now(UTC)
        text = decode_payload(event.payload)
        if event.kind == "message":
            try:
                reply = self.handler(text)
                if not isinstance(reply, str) or not reply.strip():
                    raise TypeError("the MLLP handler returned no ACK")
            except Exception as exc:
                logger.error(
                    "MLLP handler failed on message %r from %s: %s (content not logged)\n%s",
                    control_id_of(text),
                    peer,
                    type(exc).__name__,
                    _safe_traceback(exc),
                )
                error = Hl7Error(207, "application internal error")
                return build_ack(
                    original_text_or_message=text, code="AE", error=error, now=now, control_id=new_control_id(now)
                )
            return reply
        if event.kind == "oversized":
            error = Hl7Error(104, f"message larger than {self.max_message_bytes} bytes", ack_code="AR")
        elif event.kind == "truncated":
            error = Hl7Error(100, "MLLP frame cut short by a new start block", ack_code="AR")
        else:
            error = Hl7Error(100, "data outside an MLLP frame (expected start block 0x0B)", ack_code="AR")
        logger.warning("MLLP %s data from %s (message %r)", event.kind, peer, control_id_of(text))
        return build_ack(original_text_or_message=text, code="AR", error=error, now=now, control_id=new_control_id(now))

    def handle_error(self, request: object, client_address: object) -> None:
        # The default prints the exception with its message to stderr; keep patient data out of it.
        exc = sys.exc_info()[1]
        if exc is not None:
            logger.error(
                "MLLP connection error from %s: %s\n%s", client_address, type(exc).__name__, _safe_traceback(exc)
            )

    def close_connections(self) -> None:
        """End open connections: stop reading (a message being handled still gets its ACK), then cut them off."""
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        with self._lock:
            self._lock.wait_for(lambda: not self._connections, timeout=self.shutdown_grace)
            connections = list(self._connections)
        for sock in connections:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        super().server_close()
        self.close_connections()


def serve(
    host: str,
    port: int,
    handler: Handler,
    *,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    max_message_bytes: int = 1_000_000,
    idle_timeout: float = 60,
    bound: list[tuple[str, int]] | None = None,
) -> None:
    """Serve MLLP on ``host:port`` until ``stop`` is set (forever, or until KeyboardInterrupt, without one).

    ``port`` 0 lets the OS pick: the address actually bound is appended to ``bound`` before ``ready`` is set.
    On stop the listening socket closes and open connections end within about a second.
    """
    server = MllpServer((host, port), handler, max_message_bytes=max_message_bytes, idle_timeout=idle_timeout)
    try:
        if bound is not None:
            bound.append((str(server.server_address[0]), server.port))
        logger.info("MLLP listening on %s:%s", host, server.port)
        if stop is None:
            if ready is not None:
                ready.set()
            server.serve_forever(poll_interval=0.5)
            return
        accept = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="mllp-accept", daemon=True
        )
        accept.start()
        if ready is not None:
            ready.set()
        stop.wait()
        server.shutdown()
        accept.join(timeout=5)
    finally:
        server.server_close()
        logger.info("MLLP server on %s:%s stopped", host, server.port)


class MllpClient:
    """A client connection: send a message, get the ACK back; several messages per connection."""

    MAX_REPLY_BYTES = 10_000_000

    def __init__(self, host: str, port: int, timeout: float = 10) -> None:
        self.timeout = timeout
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = bytearray()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with suppress(OSError):
            self._sock.close()

    def send(self, message: str) -> str:
        """Send one message (any of \\r, \\n, \\r\\n as segment separator) and return the ACK's text."""
        text = message.replace("\r\n", "\r").replace("\n", "\r")
        if not text.endswith("\r"):
            text += "\r"
        self._sock.settimeout(self.timeout)
        self._sock.sendall(frame(text))
        return self.receive()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (no framing): for tests of faulty peers."""
        self._sock.settimeout(self.timeout)
        self._sock.sendall(data)

    def receive(self) -> str:
        """The next framed reply; raise MllpError on close or junk, TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        while True:
            stripped = self._buffer.lstrip(_BETWEEN_FRAMES)
            if stripped and stripped[:1] != START_BLOCK:
                raise MllpError("the reply is not an MLLP frame")
            end = stripped.find(END_BLOCK)
            if end >= 0:
                payload = bytes(stripped[1:end])
                self._buffer = bytearray(stripped[end + 1 :])
                return decode_payload(payload)
            if len(stripped) > self.MAX_REPLY_BYTES:
                raise MllpError("the reply is too large")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete MLLP reply in time")
            self._sock.settimeout(remaining)
            data = self._sock.recv(65536)
            if not data:
                raise MllpError("connection closed before a complete MLLP reply")
            self._buffer += data


def send(host: str, port: int, message: str, timeout: float = 10) -> str:
    """Send one message on a new connection and return the ACK's text."""
    with MllpClient(host, port, timeout) as client:
        return client.send(message)
