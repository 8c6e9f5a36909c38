"""A loopback TCP proxy that breaks connections as a flaky network or a restarting load balancer does, below
HTTP and TLS (the bytes it passes are untouched; TLS goes through end to end):

- `refuse`: that share of new connections is reset at once (accepted, then closed with an RST, before a
  byte is passed: what a client sees of a listener that went away between SYN and handshake);
- `cut`: that share is cut at a random byte of one direction, chosen with the connection: client to server
  (a request, or the TLS handshake, cut while being sent) or server to client (an answer cut mid-read). Both
  sides are closed there; a connection that carries fewer bytes than its cut ends normally.

Decisions come from a random.Random(seed), one per accepted connection in the order they arrive, so a
seed replays the same faults as far as the client's order of connections allows.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Fate:
    """What happens to one connection: passed, refused, or cut after `at` bytes going `upstream` or not."""

    refused: bool = False
    at: int = -1  # -1: never cut
    upstream: bool = False


class TcpFaultProxy:
    def __init__(
        self, upstream: str, refuse: float = 0.0, cut: float = 0.0, seed: int = 0, reach: int = 32768, listen: int = 0
    ):
        host, _, port = upstream.removeprefix("https://").removeprefix("http://").rpartition(":")
        self.upstream = (host, int(port))
        self.refuse, self.cut, self.reach = refuse, cut, reach
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"connections": 0, "refused": 0, "cut": 0}
        self.sockets: set[socket.socket] = set()
        self.listener = socket.create_server(("127.0.0.1", listen))  # `listen`: a given port (0: any free one)
        self.stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def fate(self) -> Fate:
        with self.lock:
            self.counts["connections"] += 1
            draw = self.random.random()
            if draw < self.refuse:
                self.counts["refused"] += 1
                return Fate(refused=True)
            if draw < self.refuse + self.cut:
                return Fate(at=self.random.randrange(self.reach), upstream=self.random.random() < 0.5)
            return Fate()

    def start(self) -> TcpFaultProxy:
        threading.Thread(target=self.accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        with self.lock:
            for sock in list(self.sockets):
                _close(sock)

    def __enter__(self) -> TcpFaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            fate = self.fate()
            if fate.refused:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
                client.close()
                continue
            threading.Thread(target=self.connect, args=(client, fate), daemon=True).start()

    def connect(self, client: socket.socket, fate: Fate) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        with self.lock:
            self.sockets |= {client, server}
        pair = Pair(client, server)
        up = threading.Thread(target=self.pump, args=(client, server, fate.at if fate.upstream else -1, pair))
        up.daemon = True
        up.start()
        self.pump(server, client, fate.at if not fate.upstream else -1, pair)

    def pump(self, source: socket.socket, sink: socket.socket, cut_at: int, pair: Pair) -> None:
        """Copy `source` to `sink`; after `cut_at` bytes (unless -1) close both sides of the connection."""
        passed = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)  # a half-close passed on as it came
                    if not pair.one_done():
                        return  # the other direction still runs; it closes both
                    break
                if cut_at >= 0 and passed + len(data) >= cut_at:
                    sink.sendall(data[: cut_at - passed])
                    with self.lock:
                        self.counts["cut"] += 1
                    break
                sink.sendall(data)
                passed += len(data)
        except OSError:
            pass
        for sock in (pair.client, pair.server):
            _close(sock)
        with self.lock:
            self.sockets -= {pair.client, pair.server}


class Pair:
    """The two sockets of one proxied connection, and how many of its directions have ended."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.client, self.server = client, server
        self.lock = threading.Lock()
        self.ended = 0

    def one_done(self) -> bool:
        """Count one direction as ended; True when both have."""
        with self.lock:
            self.ended += 1
            return self.ended == 2


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
