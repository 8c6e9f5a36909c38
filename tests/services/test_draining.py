"""A service told to stop (SIGTERM) drains (services/common/draining.py): it accepts no new connection, finishes
the request in flight, answers a request on a kept-alive connection with `Connection: close` instead of closing
that connection under its client, and ends once its clients closed their connections, or DRAIN_SECONDS after the
signal. A real uvicorn in a process of its own, and real sockets."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.infra import ROOT, free_port_block

STOPPED = (0, -signal.SIGTERM)  # uvicorn ends by the signal it was stopped with, once it has shut down

SERVER = """
import asyncio, sys
import uvicorn
from services.common.draining import DrainingServer

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"served"})

config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", log_level="warning",
                        timeout_graceful_shutdown=float(sys.argv[2]), timeout_keep_alive=75)
DrainingServer(config).run()
"""


@contextmanager
def server(drain: float) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port_block(1)
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(drain)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                time.sleep(0.05)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def get(connection: http.client.HTTPConnection, path: str = "/") -> http.client.HTTPResponse:
    connection.request("GET", path)
    answer = connection.getresponse()
    answer.read()
    return answer


def test_an_idle_kept_alive_connection_gets_its_next_answer_with_connection_close() -> None:
    with server(drain=10) as (process, port):
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        assert get(kept).status == 200 and get(kept).getheader("connection") != "close"  # kept alive
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # uvicorn's own shutdown would have closed the idle connection by now
        with pytest.raises(ConnectionRefusedError):  # no new connection is accepted
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
        answer = get(kept)  # the request a client sends on its idle connection meanwhile is served
        assert (answer.status, answer.getheader("connection")) == (200, "close")
        kept.close()
        assert process.wait(timeout=5) in STOPPED  # its last client gone, it ends without waiting out the drain


def test_a_request_in_flight_at_the_signal_is_answered() -> None:
    with server(drain=10) as (process, port):
        busy = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        busy.request("GET", "/slow")
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        answer = busy.getresponse()
        assert (answer.status, answer.read()) == (200, b"served")
        assert process.wait(timeout=5) in STOPPED


def test_a_client_that_keeps_its_idle_connection_is_closed_after_the_drain() -> None:
    with server(drain=2) as (process, port):
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        assert get(kept).status == 200
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) in STOPPED
        assert time.monotonic() - signalled >= 1.5  # it waited for the client, for the drain and no longer
        kept.close()
