"""A loopback HTTP proxy in front of the real Kubernetes API server, for the faults a real network and a
loaded API server produce: with `flaky` > 0 that share of requests is answered 429 or 503, or, when `faults`
has "drop", has its connection dropped before the API server sees it, or with "lost", after it acted on it.

The 429 is what API Priority and Fairness answers a request it rejects
(https://kubernetes.io/docs/concepts/cluster-administration/flow-control/; k8s.io/apiserver
pkg/server/filters/priority-and-fairness.go `tooManyRequests`): the text/plain body "Too many requests, please
try again later.", a Retry-After in seconds, and the X-Kubernetes-PF-FlowSchema-UID and
X-Kubernetes-PF-PriorityLevel-UID headers of the flow that was refused. The 503 is a metav1.Status of reason
ServiceUnavailable with Retry-After, as the API server answers while its storage is unavailable
(https://kubernetes.io/docs/reference/using-api/api-concepts/#response-codes).
Everything else is forwarded as it is, with the client's own Authorization header, and counted; a watch
(`?watch=1`) streams its events as the API server sends them, until either side ends it.

Clients reach it over plain HTTP (a kubeconfig whose server is http://127.0.0.1:PORT), or over TLS with
the API server's own certificate when given one (what the fake GKE hands out as the endpoint); it
reaches the API server over TLS, trusting the control plane's CA.
"""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.fakes.server import serve

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


class FaultProxy:
    def __init__(self, upstream: str, ca_file: str, tls: tuple[str, str] | None = None, seed: int = 6):
        self.upstream = upstream
        self.tls = tls
        self.ca_file = ca_file
        self.flaky = 0.0
        # and "drop": the connection closed before the API server sees the request; "lost": it acts on it,
        # and its answer is lost (the client cannot know whether a create happened)
        self.faults: tuple[str, ...] = ("429", "503")
        self.retry_after = "0"
        self.injected = 0
        self.requests: list[tuple[str, str]] = []
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.local = threading.local()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self.httpd is not None
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def fault(self) -> str:
        """'' to forward, or the fault to inject: '429', '503' or 'drop'."""
        with self.lock:
            if not self.flaky or self.random.random() >= self.flaky:
                return ""
            self.injected += 1
            return self.random.choice(self.faults)

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes, stream: bool = False
    ) -> requests.Response:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
            session.verify = self.ca_file
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP}
        return session.request(
            method,
            self.upstream + path,
            headers=sent,
            data=body or None,
            timeout=60,
            allow_redirects=False,
            stream=stream,
        )

    def start(self) -> FaultProxy:
        self.httpd = serve(_handler(self), self.tls)
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def _status(code: int, reason: str, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    ).encode()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:
            pass

        def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with proxy.lock:
                proxy.requests.append((self.command, self.path))
            fault = proxy.fault()
            if fault in ("drop", "lost"):
                if fault == "lost":
                    proxy.forward(self.command, self.path, dict(self.headers.items()), body)
                self.close_connection = True
                self.connection.close()
                return
            if fault == "429":
                self.reply(
                    429,
                    b"Too many requests, please try again later.\n",
                    {
                        "Content-Type": "text/plain; charset=utf-8",
                        "X-Content-Type-Options": "nosniff",
                        "Retry-After": proxy.retry_after,
                        "X-Kubernetes-PF-FlowSchema-UID": "0d5b0b5c-6f4b-4bd8-a6a0-5e3b2f0f0001",
                        "X-Kubernetes-PF-PriorityLevel-UID": "0d5b0b5c-6f4b-4bd8-a6a0-5e3b2f0f0002",
                    },
                )
                return
            if fault:
                self.reply(
                    503,
                    _status(503, "ServiceUnavailable", "injected by the test proxy"),
                    {"Content-Type": "application/json", "Retry-After": proxy.retry_after},
                )
                return
            watch = "watch=1" in self.path or "watch=true" in self.path
            answer = proxy.forward(self.command, self.path, dict(self.headers.items()), body, stream=watch)
            headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
            if watch:
                self.relay(answer, headers)
            else:
                self.reply(answer.status_code, answer.content, headers)

        def relay(self, answer: requests.Response, headers: dict[str, str]) -> None:
            """A watch's events, chunk by chunk as they come; a client that went away ends it, quietly."""
            self.send_response(answer.status_code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in answer.iter_content(None):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except (OSError, requests.RequestException):
                self.close_connection = True
            finally:
                answer.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = serve

    return Handler
