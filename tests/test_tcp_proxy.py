"""The tests' TCP fault proxy (tests/fakes/tcp_proxy.py) does what the connection-level fault tests count on:
the seeded shares of connections refused (reset before a byte passes) and cut (fewer bytes than were sent,
in the direction chosen), and every other connection passed byte for byte."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.fakes.tcp_proxy import TcpFaultProxy

SENT = 24_000  # bytes each client sends and expects back: within the proxy's reach, so most cuts land


@pytest.fixture
def echo() -> Iterator[str]:
    """A loopback server that sends back what it receives, until the client half-closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(connection: socket.socket) -> None:
        with connection:
            try:
                while data := connection.recv(65536):
                    connection.sendall(data)
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def exchange(address: str) -> str:
    """'refused', 'cut' or 'passed', as a client sees it."""
    host, _, port = address.partition(":")
    payload = bytes(range(256)) * (SENT // 256) + bytes(SENT % 256)
    try:
        sock = socket.create_connection((host, int(port)), timeout=0.05)
    except ConnectionResetError:  # reset before connect() returned
        return "refused"
    with sock:
        try:  # a refused connection is reset at once (loopback: within microseconds); an open one stays silent
            if sock.recv(1, socket.MSG_PEEK) == b"":
                return "refused"
        except TimeoutError:
            pass
        except ConnectionResetError:
            return "refused"
        sock.settimeout(10)
        received = bytearray()
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            while data := sock.recv(65536):
                received += data
        except (ConnectionResetError, BrokenPipeError):
            pass
    if received == payload:
        return "passed"
    assert payload.startswith(bytes(received)), "bytes changed on the way"
    return "cut"


def test_the_proxy_refuses_and_cuts_the_seeded_shares_and_passes_the_rest(echo: str) -> None:
    outcomes = {"refused": 0, "cut": 0, "passed": 0}
    with TcpFaultProxy(echo, refuse=0.2, cut=0.3, seed=4) as proxy:
        for _ in range(200):
            outcomes[exchange(proxy.address)] += 1
    assert proxy.counts["connections"] == 200
    assert outcomes["refused"] == proxy.counts["refused"] and 20 <= outcomes["refused"] <= 60
    assert outcomes["cut"] == proxy.counts["cut"] and 30 <= outcomes["cut"] <= 90  # some cut beyond the traffic
    assert outcomes["passed"] == 200 - outcomes["refused"] - outcomes["cut"]
    print(outcomes)
