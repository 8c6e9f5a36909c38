"""The loopback HTTP server under every fake: routing, JSON replies, request counting and injected faults.

Each fake is a real HTTP/1.1 server on 127.0.0.1 (optionally TLS), so the real client libraries run their
whole stack against it: serialisation, auth headers, connection pooling, retries, Retry-After.
"""

from __future__ import annotations

import json
import random
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route
    repeated: dict[str, list[str]] = field(default_factory=dict)  # every value of each query parameter, in order

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class Reply:
    status: int
    body: object = None  # dict/list -> JSON; str -> text/plain
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]
DROPPED = Reply(0)  # no answer: the connection is closed


class ApiError(Exception):
    """Raised by a route to answer with an error body."""

    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply


class FakeServer:
    """Routes (method, path regex) to handlers; counts requests; injects 429/503 when `flaky` > 0."""

    def __init__(self, tls: tuple[str, str] | None = None, seed: int = 6):
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests: list[tuple[str, str]] = []
        self.queries: list[dict[str, str]] = []  # each request's query parameters, in the order of `requests`
        self.lock = threading.RLock()
        self.flaky = 0.0  # share of requests that meet one of `faults`
        # "fault" answers injected_fault() (429 or 503); "drop" closes the connection before acting; "lost"
        # acts on the request, then closes the connection without its answer
        self.faults: tuple[str, ...] = ("fault",)
        self.retry_after = "1"
        self.lose_next: dict[str, int] = {}  # method -> how many of its next requests are "lost" (acted on, unanswered)
        self.injected = 0
        self.random = random.Random(seed)
        self.tls = tls
        self.httpd: ThreadingHTTPServer | None = None

    # -- what tests look at ------------------------------------------------------------------
    @property
    def mutations(self) -> int:
        return sum(1 for method, _ in self.requests if method in MUTATING)

    def mutating_requests(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method in MUTATING]

    # -- for subclasses -----------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"/?$"), handler))

    def injected_fault(self) -> Reply:  # overridden with the API's own error bodies
        return Reply(503, {"error": "unavailable"}, {"Retry-After": self.retry_after})

    def not_routed(self, request: Request) -> Reply:
        return Reply(404, {"error": f"no route for {request.method} {request.path}"})

    # -- serving ------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append((request.method, request.path))
            self.queries.append(request.query)
            fault = ""
            if self.lose_next.get(request.method):
                self.lose_next[request.method] -= 1
                self.injected += 1
                fault = "lost"
            elif self.flaky and self.random.random() < self.flaky:
                self.injected += 1
                fault = self.random.choice(self.faults)
                if fault not in ("drop", "lost"):
                    return self.injected_fault()
                if fault == "drop":
                    return DROPPED
            reply = self.route_request(request)
            return DROPPED if fault == "lost" else reply

    def route_request(self, request: Request) -> Reply:
        with self.lock:
            for method, pattern, handler in self.routes:
                match = pattern.match(request.path)
                if method == request.method and match:
                    request.params = match.groupdict()
                    try:
                        return handler(request)
                    except ApiError as exc:
                        return exc.reply
            return self.not_routed(request)

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return self.httpd.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self.httpd = serve(_handler_for(self), self.tls)
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def serve(handler: type[BaseHTTPRequestHandler], tls: tuple[str, str] | None = None) -> ThreadingHTTPServer:
    """A threaded HTTP(S) server on a free loopback port, serving in a daemon thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _handler_for(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per reply (flushed after each request): no Nagle/delayed-ACK stalls
        disable_nagle_algorithm = True

        def log_message(self, *_args) -> None:  # quiet
            pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            repeated = parse_qs(split.query)
            query = {key: values[-1] for key, values in repeated.items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(self.command, split.path, query, headers, body, repeated=repeated)
            reply = server.dispatch(request)
            if reply is DROPPED:
                self.close_connection = True
                self.connection.close()
                return
            if isinstance(reply.body, (dict, list)):
                payload, kind = json.dumps(reply.body).encode(), "application/json"
            else:
                payload, kind = str(reply.body or "").encode(), "text/plain"
            self.send_response(reply.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return _Handler
