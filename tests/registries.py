"""Real registries on loopback (Debian's docker-registry), and an HTTP proxy in front of one that
injects faults or asks for a bearer token (as Artifact Registry does), with a google-auth token endpoint."""

from __future__ import annotations

import base64
import itertools
import json
import random
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx

from deploy.registry.client import MANIFEST_TYPES
from tests.infra import free_port_block, wait_for_port

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization"}


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path

    def tags(self, repository: str) -> list[str]:
        response = httpx.get(f"http://{self.host}/v2/{repository}/tags/list", auth=self.auth)
        return (response.json().get("tags") or []) if response.status_code == 200 else []

    def digest(self, repository: str, tag: str) -> str | None:
        response = httpx.head(
            f"http://{self.host}/v2/{repository}/manifests/{tag}", auth=self.auth, headers={"Accept": MANIFEST_TYPES}
        )
        return response.headers.get("docker-content-digest") if response.status_code == 200 else None

    auth: tuple[str, str] | None = None


def htpasswd_line(user: str, password: str) -> str:
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"


@contextmanager
def registry_server(work_dir: Path, users: dict[str, str] | None = None) -> Iterator[Registry]:
    """`docker-registry serve` on 127.0.0.1, storing in `work_dir`; with htpasswd basic auth if `users`."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(binary).exists():
        raise RuntimeError("docker-registry not found: run `make test`, which installs the docker-registry package")
    port = free_port_block(1)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(work_dir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "k8sdeploy-tests"},
    }
    if users:
        (work_dir / "htpasswd").write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
        config["auth"] = {"htpasswd": {"realm": "k8sdeploy-tests", "path": str(work_dir / "htpasswd")}}
    (work_dir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = (work_dir / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(work_dir / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        first = next(iter(users.items())) if users else None
        yield Registry(f"127.0.0.1:{port}", work_dir, auth=first)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


@dataclass
class ProxyRules:
    """What the proxy does to requests: every `fault_every`-th one fails (alternately a dropped
    connection and a 503); with `bearer`, requests need a token from /token, which wants the
    user oauth2accesstoken and a password issued by /oauth2/token (the fake Google endpoint)."""

    fault_every: int = 0
    fault_share: float = 0.0  # with a seeded random: a 503, a drop before forwarding, or an answer lost after
    seed: int = 0
    bearer: bool = False
    realm: str = ""  # with `bearer`: the token realm the challenge names (default: this proxy's own /token)
    token_lifetime: int = 3600
    faults: int = 0
    requests: int = 0
    blobs_uploaded: int = 0  # completed blob uploads (the PUT that names the digest)
    bytes_uploaded: int = 0  # blob bytes sent in PATCH and PUT bodies
    manifests_put: int = 0
    uploaded: dict[str, int] = field(default_factory=dict)  # blob digest -> how many times its upload completed
    google_tokens: list[str] = field(default_factory=list)
    registry_tokens: set[str] = field(default_factory=set)
    seen_authorization: list[str] = field(default_factory=list)
    seen_token_authorization: list[str] = field(default_factory=list)  # of the requests to /token
    # the registry's own refusals before forwarding, e.g. Artifact Registry's (tests/fakes/artifact_registry.py):
    # (method, path, body, upstream HOST:PORT) -> (status, JSON body), or None to forward
    gate: Callable[[str, str, bytes, str], tuple[int, bytes] | None] | None = None
    _counter: itertools.count = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    def _count(self, body: bytes) -> int:
        rules = self.server.rules
        with rules.lock:
            rules.requests += 1
            if "/blobs/uploads/" in self.path and self.command in ("PATCH", "PUT"):
                rules.bytes_uploaded += len(body)
                rules.blobs_uploaded += self.command == "PUT"
                if self.command == "PUT":
                    digest = parse_qs(urlsplit(self.path).query).get("digest", [""])[0]
                    rules.uploaded[digest] = rules.uploaded.get(digest, 0) + 1
            rules.manifests_put += "/manifests/" in self.path and self.command == "PUT"
            return next(rules._counter) + 1

    def _random_fault(self) -> str:
        rules = self.server.rules
        with rules.lock:
            if not hasattr(rules, "_random"):
                rules._random = random.Random(rules.seed)
            if rules._random.random() >= rules.fault_share:
                return ""
            rules.faults += 1
            return rules._random.choice(("503", "drop", "lost"))

    def _handle(self) -> None:
        rules, body = self.server.rules, self._body()
        number = self._count(body)
        fault = self._random_fault() if rules.fault_share and not self.path.startswith(("/oauth2", "/token")) else ""
        if fault == "503":
            return self._reply(503, b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}')
        if fault:  # "drop": the registry never sees it; "lost": it acts on it, and its answer is lost
            if fault == "lost":
                self.server.upstream.request(
                    self.command,
                    f"http://{self.server.target}{self.path}",
                    headers=self._forwarded_headers(),
                    content=body or None,
                )
            self.close_connection = True
            return
        if rules.fault_every and number % rules.fault_every == 0:
            with rules.lock:
                rules.faults += 1
            if (number // rules.fault_every) % 2:
                self.close_connection = True  # drop: no response at all
                return
            return self._reply(503, b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}')
        if self.path.startswith("/oauth2/token"):
            return self._google_token()
        if self.path.startswith("/token"):
            return self._registry_token()
        if rules.bearer and not self._bearer_ok():
            realm = rules.realm or f"http://{self.headers['Host']}/token"
            return self._reply(
                401,
                b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}',
                {"WWW-Authenticate": f'Bearer realm="{realm}",service="proxy",scope="repository:x:pull,push"'},
            )
        refused = rules.gate(self.command, self.path.split("?")[0], body, self.server.target) if rules.gate else None
        if refused:
            return self._reply(refused[0], refused[1], {"Content-Type": "application/json"})
        self._forward(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _bearer_ok(self) -> bool:
        value = self.headers.get("Authorization", "")
        self.server.rules.seen_authorization.append(value)
        return value.startswith("Bearer ") and value[7:] in self.server.rules.registry_tokens

    def _google_token(self) -> None:
        rules = self.server.rules
        with rules.lock:
            token = f"ya29.fake-{len(rules.google_tokens)}"
            rules.google_tokens.append(token)
        self._reply(
            200,
            json.dumps({"access_token": token, "expires_in": rules.token_lifetime, "token_type": "Bearer"}).encode(),
            {"Content-Type": "application/json"},
        )

    def _registry_token(self) -> None:
        rules = self.server.rules
        rules.seen_token_authorization.append(self.headers.get("Authorization", ""))
        user, _, password = (
            base64.b64decode(self.headers.get("Authorization", "Basic ")[6:] or b"").decode().partition(":")
        )
        if user != "oauth2accesstoken" or password not in rules.google_tokens:
            return self._reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
        token = f"registry-{len(rules.registry_tokens)}"
        rules.registry_tokens.add(token)
        self._reply(200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})

    def _forwarded_headers(self) -> dict[str, str]:
        return {
            k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS | {"authorization", "content-length"}
        }

    def _forward(self, body: bytes) -> None:
        response = self.server.upstream.request(
            self.command,
            f"http://{self.server.target}{self.path}",
            headers=self._forwarded_headers(),
            content=body or None,
        )
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in HOP_HEADERS | {"content-length", "content-encoding"}:
                self.send_header(key, value)
        content = b"" if self.command == "HEAD" else response.content
        length = response.headers.get("content-length", "0") if self.command == "HEAD" else str(len(content))
        self.send_header("Content-Length", length)
        self.end_headers()
        self.wfile.write(content)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, target: str, rules: ProxyRules):
        super().__init__(("127.0.0.1", port), _Handler)
        self.target, self.rules = target, rules
        self.upstream = httpx.Client(timeout=60)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - clients hang up on dropped requests
        pass


@contextmanager
def registry_proxy(target: str, rules: ProxyRules) -> Iterator[str]:
    """An HTTP proxy on a loopback port in front of registry `target`; yields its HOST:PORT."""
    server = _ProxyServer(free_port_block(1), target, rules)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        server.upstream.close()
