"""The gateway's browser-facing defences: security headers, logout by POST only, no cookie-carrying
state change without an Origin, no session token for the frontend, and a locked account's 429."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest

from deploy.loopback import LocalSuite
from services.session.app import token_hash
from tests.gateway.test_config import run_gateway
from tests.helpers import client, login, same_origin, table_names

POLICY = {"default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "object-src 'none'"}


def assert_security_headers(answer: httpx.Response, no_store: bool = False) -> None:
    """Each header once (an upstream's or a second add_header would show as a repeat)."""
    seen = {
        name: answer.headers.get_list(name)
        for name in ("x-frame-options", "content-security-policy", "x-content-type-options", "referrer-policy")
    }
    where = f"{answer.request.method} {answer.request.url.path} ({answer.status_code})"
    assert seen["x-frame-options"] == ["DENY"], where
    assert seen["x-content-type-options"] == ["nosniff"], where
    assert seen["referrer-policy"] == ["same-origin"], where
    assert len(seen["content-security-policy"]) == 1, where
    assert {part.strip() for part in seen["content-security-policy"][0].split(";")} == POLICY, where
    if no_store:
        assert answer.headers.get_list("cache-control") == ["no-store"], where


def assert_fits_the_policy(html: str) -> None:
    """Nothing the policy would block: no inline script or style, only same-site stylesheets."""
    assert not re.search(r"<script|<style|\sstyle=|\son\w+=|javascript:", html, re.IGNORECASE), html
    assert re.findall(r'<link rel="stylesheet" href="([^"]*)"', html) == ["/static/style.css"]


def test_every_page_carries_the_security_headers(http: httpx.Client) -> None:
    page = http.get("/login")
    assert page.status_code == 200
    assert_security_headers(page, no_store=True)
    assert_fits_the_policy(page.text)
    redirect = http.get("/persons")
    assert redirect.status_code == 302
    assert_security_headers(redirect, no_store=True)
    for path in ("/404", "/api/nothing"):
        missing = http.get(path)
        assert missing.status_code == 404 and "Not found" in missing.text
        assert_security_headers(missing)
    static = http.get("/static/style.css")
    assert static.status_code == 200
    assert_security_headers(static)
    assert "no-store" not in static.headers.get("cache-control", "")  # the stylesheet may be cached
    refused = http.post(
        "/login", data={"emailaddress": "a@b.c", "password": "x"}, headers={"Origin": "http://evil.example"}
    )
    assert refused.status_code == 403
    assert_security_headers(refused)


def test_login_answers_and_authenticated_pages_are_not_stored(http: httpx.Client) -> None:
    wrong = login(http, "admin@test.com", "wrong")
    assert wrong.status_code == 401
    assert_security_headers(wrong, no_store=True)
    right = login(http, "admin@test.com", "admin")
    assert right.status_code == 302
    assert_security_headers(right, no_store=True)
    for path in ("/", "/persons", "/persons/add"):
        page = http.get(path)
        assert page.status_code == 200, path
        assert_security_headers(page, no_store=True)
        assert_fits_the_policy(page.text)


def test_logout_is_a_post_from_this_site(http: httpx.Client) -> None:
    login(http, "admin@test.com", "admin")
    token = http.cookies["AccessToken"]
    for method in ("GET", "HEAD"):
        answer = http.request(method, "/logout")
        assert answer.status_code == 405, method
        assert answer.headers["allow"] == "POST"
        assert "set-cookie" not in answer.headers
        assert_security_headers(answer)
    assert http.get("/persons").status_code == 200  # a link or an image cannot end the session
    assert http.post("/logout").status_code == 403  # the cookie but no Origin
    assert http.post("/logout", headers={"Origin": "http://evil.example"}).status_code == 403
    assert http.get("/persons").status_code == 200
    out = http.post("/logout", headers=same_origin(http))
    assert out.status_code == 302 and out.headers["location"].endswith("/login")
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert_security_headers(out, no_store=True)
    with client(str(http.base_url)) as replay:
        replay.cookies.set("AccessToken", token)
        answer = replay.get("/persons")
        assert answer.status_code == 302 and answer.headers["location"].endswith("/login")


def test_a_cookie_carrying_post_needs_an_origin(http: httpx.Client) -> None:
    # Without a cookie, a POST from a script (no Origin, no Referer) logs in as before.
    answer = http.post("/login", data={"emailaddress": "admin@test.com", "password": "admin"})
    assert answer.status_code == 302 and "AccessToken" in http.cookies
    refused = http.post("/persons/add", data={"firstName": "No", "lastName": "Origin"})
    assert refused.status_code == 403
    assert ("No", "Origin") not in table_names(http.get("/persons").text)
    # With the cookie, a login without Origin is refused too: it would replace the session.
    assert http.post("/login", data={"emailaddress": "user@test.com", "password": "user"}).status_code == 403
    assert http.get("/").text.count("admin@test.com (admin)") == 1
    # A same-site Referer (a browser that sends no Origin) is enough.
    referred = http.post(
        "/persons/add",
        data={"firstName": "With", "lastName": "Referer"},
        headers={"Referer": f"{str(http.base_url).rstrip('/')}/persons/add"},
    )
    assert referred.status_code == 303
    assert ("With", "Referer") in table_names(http.get("/persons").text)


class Upstream:
    """A stand-in for one service on loopback: records each request, answers with a fixed reply."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"upstream\n"):
        self.requests: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                upstream.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": self.headers.items(),
                        "body": self.rfile.read(length).decode(),
                    }
                )
                self.send_response(status)
                for name, value in {"Content-Type": "text/plain", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = answer

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def header(self, index: int, name: str) -> list[str]:
        return [value for key, value in self.requests[index]["headers"] if key.lower() == name.lower()]


@contextmanager
def gateway_with(suite: LocalSuite, tmp_path: Path, name: str, upstream: Upstream) -> Iterator[str]:
    """A second gateway in front of the suite's services, but with `upstream` standing in for `name`."""
    try:
        with gateway_to(suite, tmp_path, name, upstream.address) as url:
            yield url
    finally:
        upstream.close()


@contextmanager
def gateway_to(suite: LocalSuite, tmp_path: Path, name: str, address: str) -> Iterator[str]:
    """A second gateway in front of the suite's services, but calling `name` at `address` (HOST:PORT)."""
    process, url = run_gateway(suite, tmp_path, upstreams={**suite.gateway_config().upstreams, name: address})
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_frontend_never_receives_the_session_token(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    frontend = Upstream(headers={"Content-Type": "text/html"}, body=b"<p>page</p>")
    with gateway_with(sqlite_suite, tmp_path, "frontend", frontend) as url:
        with client(url) as http:
            assert login(http, "admin@test.com", "admin").status_code == 302  # the real services
            token = http.cookies["AccessToken"]
        frontend.requests.clear()
        sent = [
            ("/", {"Cookie": f"theme=dark; AccessToken={token}; lang=en"}),
            ("/persons", {"Cookie": f"AccessToken={token}"}),
            ("/persons", {"Cookie": f"accesstoken={token};theme=dark"}),  # nginx matches names in any case
            ("/static/style.css", {"Cookie": f"AccessToken={token}"}),
            ("/404", {"Cookie": f"AccessToken={token}; theme=dark"}),
            ("/login", {"Cookie": f"AccessToken={token}"}),
            ("/persons", {"Cookie": f"AccessToken={token}; LoginDevice=v1.x.y; loginDEVICE=z; theme=dark"}),
        ]
        for path, headers in sent:
            assert httpx.get(f"{url}{path}", headers=headers).status_code == 200, path
        # nginx's own 404 shows the frontend's /404 page (error_page), without the token too.
        assert httpx.get(f"{url}/api/nothing", headers={"Cookie": f"AccessToken={token}"}).status_code == 404
        # Two Cookie header lines, as some clients send them.
        two = httpx.Request("GET", f"{url}/", headers=[("Cookie", f"AccessToken={token}"), ("Cookie", "a=1")])
        with httpx.Client() as raw:
            assert raw.send(two).status_code == 200
    received = [(r["path"], frontend.header(i, "cookie")) for i, r in enumerate(frontend.requests)]
    assert received == [
        ("/", ["theme=dark; lang=en"]),
        ("/persons", []),
        ("/persons", ["theme=dark"]),
        ("/static/style.css", []),
        ("/404", ["theme=dark"]),
        ("/login", []),
        ("/persons", ["theme=dark"]),  # the device cookie is authentication's alone
        ("/404", []),
        ("/", ["a=1"]),
    ], json.dumps(received)
    # The pages behind the session check did pass it: the gateway's token names the caller, public pages none.
    subjects = [caller_of(frontend, i) for i in range(len(frontend.requests))]
    assert subjects == ["1", "1", "1", "", "", "", "1", "", "1"], subjects


def caller_of(upstream: Upstream, index: int) -> str:
    """The user the gateway's token for the frontend names on request `index` (signature checked by the services'
    own tests; here: which caller the gateway vouched for)."""
    (authorization,) = upstream.header(index, "authorization")
    claims = jwt.decode(authorization.removeprefix("Bearer "), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("nginx-lua", "frontend")
    return claims["sub"]


def test_a_locked_account_sees_the_login_page_with_429(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    # Header names in lower case, as the FastAPI service sends them.
    authentication = Upstream(status=429, headers={"retry-after": "120"}, body=b"locked\n")
    with gateway_with(sqlite_suite, tmp_path, "authentication", authentication) as url:
        with client(url) as http:
            answer = login(http, "admin@test.com", "admin")
    assert authentication.requests and "emailaddress=admin%40test.com" in authentication.requests[0]["body"]
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "120"
    assert 'name="emailaddress"' in answer.text and 'role="alert"' in answer.text
    assert "Too many login attempts." in answer.text  # not "wrong password"
    assert answer.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in answer.headers
    assert_security_headers(answer, no_store=True)


# nginx's 444 closes the connection: before the client read anything, or (a body still being sent) with a reset
UNANSWERED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_a_foreign_host_gets_no_answer_and_no_redirect_names_one(http: httpx.Client) -> None:
    """A DNS-rebinding page sends its own name as Host: the connection is closed unanswered. IP literals and
    localhost are served (the environment's `hosts` setting narrows it to names)."""
    base = str(http.base_url).rstrip("/")
    foreign = ("evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil", "1.2.3.4.nip.io")
    # nginx's $host is the part before the first colon: the whole header is what is checked
    colons = ("127.0.0.1:evil.example", "localhost:80:81", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "[::1]x")
    for host in foreign + colons:
        for method, path in (("GET", "/login"), ("GET", "/persons"), ("POST", "/login"), ("GET", "/static/style.css")):
            with pytest.raises(UNANSWERED):
                httpx.request(method, f"{base}{path}", headers={"Host": host}, data={"emailaddress": "a"})
    port = base.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        answer = httpx.get(f"{base}/persons", headers={"Host": host})
        assert answer.status_code == 302 and answer.headers["location"] == "/login", host  # relative: no host named
    # the probes answer whatever the Host (the kubelet sends the pod's address)
    assert httpx.get(f"{base}/healthz", headers={"Host": "evil.example"}).status_code == 200


def test_no_redirect_names_a_services_own_address(http: httpx.Client) -> None:
    """A trailing slash was redirected (307) to an absolute URL that Starlette built from the Host header, or from
    the frontend's bind address when the Host was not a plain name: no service redirects to add or drop one."""
    assert login(http, "admin@test.com", "admin").status_code == 302
    for path in ("/persons/", "/persons/add/", "/persons/1/"):
        answer = http.get(path)
        assert answer.status_code == 404 and "location" not in answer.headers, (path, answer.headers)


def test_a_link_cannot_choose_the_login_pages_error(http: httpx.Client) -> None:
    """`/login?error=locked` answered 429 with a lockout message, `error=busy` 503: anyone's link could show them."""
    for error in ("locked", "busy", "1"):
        answer = http.get("/login", params={"error": error})
        assert answer.status_code == 200 and 'role="alert"' not in answer.text, error


def test_two_session_cookies_are_nobody_and_neither_is_deleted(http: httpx.Client) -> None:
    """Cookie tossing: a sibling origin plants `AccessToken=` (any case) beside the real one. The gateway took the
    first, so the planted one decided whose session acted, and a planted junk one made it delete the real one."""
    assert login(http, "user@test.com", "user").status_code == 302
    user_token = http.cookies["AccessToken"]
    http.cookies.clear()
    assert login(http, "admin@test.com", "admin").status_code == 302
    real = http.cookies["AccessToken"]
    base = str(http.base_url).rstrip("/")
    junk = "j" * 43
    for header in (
        f"AccessToken={user_token}; AccessToken={real}",
        f"AccessToken={real}; AccessToken={junk}",
        f"accesstoken={junk}; AccessToken={real}",
        f"AccessToken={real}; ACCESSTOKEN={user_token}",
    ):
        answer = httpx.get(f"{base}/persons", headers={"Cookie": header})
        assert answer.status_code == 302 and answer.headers["location"] == "/login", header
        assert "set-cookie" not in answer.headers, header
        out = httpx.post(f"{base}/logout", headers={"Cookie": header, "Origin": base})
        assert out.status_code == 302 and "set-cookie" not in out.headers, header
    # the real session lives on, untouched
    assert httpx.get(f"{base}/persons", headers={"Cookie": f"AccessToken={real}"}).status_code == 200


def test_only_configured_host_names_are_served(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    process, url = run_gateway(sqlite_suite, tmp_path, hosts=("auth.example.org",))
    try:
        port = url.rsplit(":", 1)[1]
        assert httpx.get(f"{url}/login", headers={"Host": f"auth.example.org:{port}"}).status_code == 200
        with pytest.raises(UNANSWERED):
            httpx.get(f"{url}/login")  # an IP literal, which the setting leaves out
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_forwarded_headers_are_the_gateways_own(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    frontend = Upstream(headers={"Content-Type": "text/html"}, body=b"<p>page</p>")
    spoofed = {"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https", "Forwarded": "for=10.0.0.1"}
    with gateway_with(sqlite_suite, tmp_path, "frontend", frontend) as url:
        assert httpx.get(f"{url}/404", headers=spoofed).status_code == 200
    assert frontend.header(0, "x-forwarded-for") == ["127.0.0.1"]
    assert frontend.header(0, "x-forwarded-proto") == ["http"]
    assert frontend.header(0, "forwarded") == ['for="127.0.0.1";proto=http']


def test_the_session_token_is_never_in_a_uri(sqlite_suite: LocalSuite, tmp_path: Path) -> None:
    session = Upstream(status=404, body=b"unknown")
    with gateway_with(sqlite_suite, tmp_path, "session", session) as url:
        token = "t" * 43
        with client(url) as http:
            http.cookies.set("AccessToken", token)
            http.get("/persons")
            http.post("/logout", headers={"Origin": url})
    assert [r["path"] for r in session.requests] == ["/api/sessions/lookup", "/api/sessions/revoke"]
    assert all(r["body"] == token for r in session.requests)


def test_a_role_change_sets_the_rotated_session_cookie(sqlite_suite: LocalSuite) -> None:
    """The session service rotates a session whose user's role changed (tests/services/test_session_lifetimes.py);
    the gateway sets the new token in the same cookie, and the old one names nobody."""
    with client(sqlite_suite.url) as http:
        assert login(http, "admin@test.com", "admin").status_code == 302
        old = http.cookies["AccessToken"]
        store = sqlite_suite.settings.work_dir / "data" / "session.db"
        with sqlite3.connect(store) as db:  # as if admin@test.com had been a user when this session was looked at
            changed = db.execute("UPDATE sessions SET role = 'user' WHERE token_hash = ?", (token_hash(old),)).rowcount
        assert changed == 1
        answer = http.get("/")
        assert answer.status_code == 200 and "logged in as admin@test.com (admin)." in answer.text, answer.text[:300]
        (cookie,) = answer.headers.get_list("set-cookie")
        assert cookie.startswith("AccessToken=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
        new = http.cookies["AccessToken"]
        assert new != old
        assert http.get("/persons").status_code == 200 and "set-cookie" not in http.get("/persons").headers
        with client(str(http.base_url)) as stale:
            stale.cookies.set("AccessToken", old)
            assert stale.get("/persons").status_code in (302, 303, 401)
