"""MLLP framing and a real server on 127.0.0.1 (no database)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import hl7  # type: ignore[import-untyped]
import pytest

from results.hl7.ack import acknowledge
from results.hl7.messages import OruMessage
from results.mllp import FrameDecoder, FrameEvent, MllpClient, MllpError, frame, send, serve

WAIT = 5  # seconds: the bound on every wait in these tests


def message(control_id: str, family: str = "Doe") -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|COBAS|LAB|LABFLOW|ONC|20240305101500||ORU^R01|{control_id}|P|2.5.1",
            f"PID|1||H12345^^^HOSP^MR||{family}^Jane||19800214|F",
            "OBR|1|PL1|FL1|24323-8^CMP^LN",
            "OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F",
            "OBX|2|NM|2160-0^Creatinine^LN||1.1|mg/dL|0.6-1.2|N|||F",
            "SPM|1|A24000123",
        ]
    )


def msa(ack: str) -> tuple[str, str]:
    parsed = hl7.parse(ack)
    return str(parsed["MSA.F1"]), str(parsed["MSA.F2"])


def err_code(ack: str) -> str:
    return str(hl7.parse(ack)["ERR.F3.R1.C1"])


# ---------------------------------------------------------------------------------------------------------
# FrameDecoder


def test_decoder_reassembles_frames_split_anywhere():
    data = frame("MSH|one\r") + b"\r\n" + frame("MSH|two\r")
    decoder = FrameDecoder()

    events: list[FrameEvent] = []
    for i in range(len(data)):
        events += decoder.feed(data[i : i + 1])

    assert events == [FrameEvent("message", b"MSH|one\r"), FrameEvent("message", b"MSH|two\r")]
    assert not decoder.pending


def test_decoder_two_frames_in_one_chunk_and_missing_trailing_cr():
    decoder = FrameDecoder()
    events = decoder.feed(b"\x0bMSH|a\x1c\x0bMSH|b\x1c\r")
    assert [e.payload for e in events] == [b"MSH|a", b"MSH|b"]


def test_decoder_faults_then_recovers():
    decoder = FrameDecoder(max_message_bytes=10)

    assert decoder.feed(b"GET / HTTP/1.1\r\n") == [FrameEvent("unframed", b"GET / HTTP/1.1\r\n")]
    assert decoder.feed(b"more junk") == []  # one AR per run of junk
    assert decoder.feed(b"\x0bMSH|ok\x1c\r") == [FrameEvent("message", b"MSH|ok")]

    assert decoder.feed(b"\x0bMSH|cut\x0bMSH|new\x1c\r") == [
        FrameEvent("truncated", b"MSH|cut"),
        FrameEvent("message", b"MSH|new"),
    ]

    events = decoder.feed(b"\x0b" + b"x" * 11)
    assert [e.kind for e in events] == ["oversized"]
    assert decoder.pending
    assert decoder.feed(b"y" * 100 + b"\x0b") == []  # discarded up to the end block
    assert decoder.feed(b"\x1c\r\x0bMSH|after\x1c\r") == [FrameEvent("message", b"MSH|after")]
    assert not decoder.pending


# ---------------------------------------------------------------------------------------------------------
# Server


@dataclass
class Running:
    host: str
    port: int
    stop: threading.Event
    thread: threading.Thread
    received: list[str]


def store_or_fail(received: list[str]) -> Callable[[str], str]:
    def store(message: OruMessage) -> None:
        if message.control_id.startswith("BOOM"):
            raise RuntimeError(f"cannot store result for {message.patient_family}")

    def handler(text: str) -> str:
        received.append(text)
        return acknowledge(text, store, now=datetime.now(UTC))

    return handler


@pytest.fixture
def start_server() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**kwargs) -> Running:
        received: list[str] = []
        ready, stop = threading.Event(), threading.Event()
        bound: list[tuple[str, int]] = []
        thread = threading.Thread(
            target=serve,
            args=("127.0.0.1", 0, store_or_fail(received)),
            kwargs={"ready": ready, "stop": stop, "bound": bound, **kwargs},
            daemon=True,
        )
        thread.start()
        assert ready.wait(WAIT), "the MLLP server did not start"
        running = Running(bound[0][0], bound[0][1], stop, thread, received)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop.set()
        running.thread.join(WAIT)


def test_two_messages_on_one_connection(start_server):
    server = start_server()
    assert server.port > 0

    with MllpClient(server.host, server.port, timeout=WAIT) as client:
        first = client.send(message("MSG1"))
        second = client.send(message("MSG2").replace("\r", "\n"))

    assert msa(first) == ("AA", "MSG1")
    assert msa(second) == ("AA", "MSG2")
    assert str(hl7.parse(first)["MSH.F5"]) == "COBAS"
    assert len(server.received) == 2
    assert server.received[1].startswith("MSH|")
    assert "\n" not in server.received[1]


def test_two_frames_in_one_write_get_two_acks(start_server):
    server = start_server()
    with socket.create_connection((server.host, server.port), timeout=WAIT) as sock:
        sock.sendall(frame(message("MSG3")) + frame(message("MSG4")))
        client_buffer = b""
        deadline = time.monotonic() + WAIT
        while client_buffer.count(b"\x1c") < 2 and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            client_buffer += chunk

    acks = [part.strip(b"\r\x0b").decode() for part in client_buffer.split(b"\x1c")[:2]]
    assert [msa(a) for a in acks] == [("AA", "MSG3"), ("AA", "MSG4")]


def test_handler_exception_is_ae_207_logged_without_patient_data(start_server, caplog):
    server = start_server()
    caplog.set_level(logging.INFO, logger="results.mllp")

    with MllpClient(server.host, server.port, timeout=WAIT) as client:
        failed = client.send(message("BOOM1", family="Zyxwvut"))
        after = client.send(message("MSG5"))  # the connection is still usable

    assert msa(failed) == ("AE", "BOOM1")
    assert err_code(failed) == "207"
    assert msa(after) == ("AA", "MSG5")
    assert "RuntimeError" in caplog.text
    assert "BOOM1" in caplog.text
    assert "Zyxwvut" not in caplog.text
    assert "H12345" not in caplog.text


def test_unframed_garbage_gets_ar_and_the_connection_stays_usable(start_server):
    server = start_server()

    with MllpClient(server.host, server.port, timeout=WAIT) as client:
        client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        rejected = client.receive()
        accepted = client.send(message("MSG6"))

    assert msa(rejected) == ("AR", "")
    assert err_code(rejected) == "100"
    assert msa(accepted) == ("AA", "MSG6")
    assert server.received == [message("MSG6") + "\r"]


def test_oversized_message_gets_ar_104(start_server):
    server = start_server(max_message_bytes=2000)
    big = message("BIG1").replace("SPM|1|A24000123", "NTE|1||" + "x" * 5000)

    with MllpClient(server.host, server.port, timeout=WAIT) as client:
        rejected = client.send(big)
        accepted = client.send(message("MSG7"))

    assert msa(rejected) == ("AR", "BIG1")  # the MSH was readable from the head of the frame
    assert err_code(rejected) == "104"
    assert msa(accepted) == ("AA", "MSG7")
    assert len(server.received) == 1


def test_invalid_message_gets_the_parse_error(start_server):
    server = start_server()
    without_pid3 = message("MSG8").replace("H12345^^^HOSP^MR", "")

    ack = send(server.host, server.port, without_pid3, timeout=WAIT)

    assert msa(ack) == ("AE", "MSG8")
    assert err_code(ack) == "101"
    assert str(hl7.parse(ack).segment("ERR")(2)) == "PID^1^3"


def test_idle_connections_are_closed(start_server):
    server = start_server(idle_timeout=0.3)

    with MllpClient(server.host, server.port, timeout=WAIT) as client:
        started = time.monotonic()
        with pytest.raises(MllpError):
            client.receive()
        assert time.monotonic() - started < WAIT


def test_stop_within_two_seconds_even_with_an_open_connection(start_server):
    server = start_server()
    client = MllpClient(server.host, server.port, timeout=WAIT)
    try:
        assert msa(client.send(message("MSG9"))) == ("AA", "MSG9")

        started = time.monotonic()
        server.stop.set()
        server.thread.join(WAIT)
        assert not server.thread.is_alive()
        assert time.monotonic() - started < 2

        with pytest.raises(MllpError):  # the server closed its end
            client.receive()
    finally:
        client.close()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=1).close()


def test_client_times_out_on_a_silent_server():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with MllpClient("127.0.0.1", port, timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                client.send(message("MSG10"))
            assert time.monotonic() - started < WAIT
