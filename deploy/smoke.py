"""The smoke stage: a real login through the gateway, and a name for the hop that breaks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from deploy.model.environments import Environment
from deploy.model.errors import SmokeError
from deploy.model.progress import Say, silent
from deploy.model.suite import DEMO_USERS, FAILURE_REFERENCE, Login
from deploy.tls import covers, is_address, served_certificate

if TYPE_CHECKING:
    from deploy.identity import Identity
    from deploy.users import Users

HOPS = ("nginx-lua", "frontend", "authentication", "session", "person", "authorisation")
REFERENCE_HEADER = "Failure-Reference"  # nginx-lua/lua/identity.lua reference: KID.NONCE.MAC
CONNECT_SECONDS = 3.0  # a connection here is made in milliseconds; one to a gone pod never is


def reference_keys(identity: Identity | None) -> dict[str, bytes]:
    """The keys the gateway writes the failing hop of an error answer with (the pair gateway>smoke), by key id."""
    if identity is None:
        return {}
    return {key.kid: unb64(key.pair_key(*FAILURE_REFERENCE)) for key in identity.keys}


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def referred_hop(answer: httpx.Response, keys: Mapping[str, bytes]) -> str | None:
    """The hop an error answer's Failure-Reference names, when one of `keys` wrote it: strangers are told none."""
    kid, _, rest = answer.headers.get(REFERENCE_HEADER, "").partition(".")
    nonce, _, mac = rest.rpartition(".")
    key = keys.get(kid)
    if key is None or not nonce:
        return None
    for hop in HOPS:
        expected = hmac.new(key, f"{nonce}.{hop}".encode(), hashlib.sha256).digest()
        if hmac.compare_digest(base64.urlsafe_b64encode(expected).decode().rstrip("="), mac):
            return "gateway" if hop == "nginx-lua" else hop
    return None


@dataclass(frozen=True)
class SmokeReport:
    url: str
    checks: tuple[str, ...]


class Smoke(Protocol):
    def run(self, url: str) -> SmokeReport | None: ...


class NoSmoke:
    """`--no-smoke` (or an environment with `smoke = false`): the stage is there, says why it does nothing."""

    def __init__(self, say: Say = silent, why: str = "--no-smoke"):
        self.say = say
        self.why = why

    def run(self, url: str) -> None:
        self.say(f"skipped the smoke login ({self.why})")
        return None


def failing_hop(answer: httpx.Response, keys: Mapping[str, bytes]) -> str:
    """Which part of the suite an unexpected answer points at: the one its reference names, else the frontend
    when nginx itself answered 5xx (its upstream for pages), else by the answer's status."""
    referred = referred_hop(answer, keys)
    if referred is not None:
        return referred
    if answer.status_code in (502, 503, 504) and "nginx" in answer.text:
        return "frontend"  # nginx itself answered: its upstream for pages is the frontend
    return "frontend" if answer.status_code >= 500 else "gateway"


class SmokeFailed(SmokeError):
    def __init__(self, hop: str, step: str, answer: httpx.Response | None = None, detail: str = ""):
        seen = detail or (
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}"
            if answer is not None
            else "no answer"
        )
        super().__init__(
            f"smoke test failed at the {hop} while {step}: {seen}",
            f"see `k8sdeploy logs {hop if hop != 'gateway' else 'nginx-lua'}`",
        )
        self.hop = hop


# X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH (OpenSSL include/openssl/x509_vfy.h): the
# certificate is a good one, for other names
NAME_MISMATCH = (62, 64)


class CertificateRejected(SmokeError):
    """The gateway answered TLS with a certificate this machine does not accept for the name it asked for: one
    for other names, or one not signed by a CA it trusts. Exit 6 as any smoke failure, never "did not answer"."""

    def __init__(
        self, url: str, name: str, problem: ssl.SSLCertVerificationError, served: tuple[str, ...], by_ip: bool
    ):
        where, names = f"the gateway at {url.rstrip('/')}", ", ".join(served) or "no name"
        if problem.verify_code in NAME_MISMATCH:
            message = f"{where} answered with a certificate for {names}, not {name}"
            dns = [n for n in served if not is_address(n) and not n.startswith("*")]
            hint = (
                f'set hosts = ["{dns[0]}"] for the environment: the smoke test then asks for that name'
                if by_ip and dns
                else f"put a certificate for {name} in the environment's tls_secret, or list first in hosts "
                "a name the certificate covers"
            )
        else:
            reason = problem.verify_message or str(problem)
            message = f"{where} answered with a certificate for {names} that this machine does not trust ({reason})"
            message += "" if covers(served, name) else f", and not for {name}"
            hint = (
                "serve one issued by a CA in the system's trust store, or point SSL_CERT_FILE at the PEM "
                "certificate of the CA that signed it"
            )
        super().__init__(message, hint)
        self.hop = "gateway"


def certificate_problem(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure under an httpx error, if that is what it is."""
    seen: BaseException | None = error
    for _ in range(10):  # httpx's error, httpcore's, the ssl module's
        if seen is None or isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def served_names(url: str, name: str, timeout: float = 5.0) -> tuple[str, ...]:
    """The names of the certificate the gateway at `url` serves for `name` (SNI): its DNS and IP subject
    alternative names, else its common name. Asked again without verifying, only to say what it is."""
    address = httpx.URL(url)
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((address.host, address.port or 443), timeout=timeout) as raw:
            with unverified.wrap_socket(raw, server_hostname=None if is_address(name) else name) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError:  # ssl.SSLError too
        return ()
    return served_certificate(der).names if der else ()


class HttpSmoke:
    """Logs in with an admin and a viewer (the environment's smoke users; by default the demo users) and walks
    the flow a person would, through the gateway only.

    `host` (the environment's first `hosts` name): what a browser would ask for. The smoke test connects to the
    address in the URL (the load balancer's) and sends `host` as the Host header and, over HTTPS, as the TLS
    server name, verifying the certificate for that name against the system's trust store (SSL_CERT_FILE or
    SSL_CERT_DIR instead, the variables every client here reads). Without it the URL's address is asked for,
    with httpx's own trust (certifi's bundle unless SSL_CERT_FILE or SSL_CERT_DIR), as before there were names.

    A certificate error while waiting for the gateway to answer is retried for `certificate_grace` seconds, then
    final: just after a rollout that changed the TLS Secret, a terminating gateway pod of the old revision can
    still take connections from the load balancer for some seconds and serve the old certificate; after that,
    what answers is what the Secret holds (the balancer passes TLS through to the gateway), which waiting will
    not change. Once the gateway answers, a certificate error is final at once."""

    def __init__(
        self,
        say: Say = silent,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        users: tuple[Login, Login] = DEMO_USERS,
        reach_timeout: float = 0.0,
        host: str = "",
        certificate_grace: float = 15.0,
        # how long a refused route is tried again after the run starts: the old pod's address leaves every node's
        # rules once the EndpointSlice controller and kube-proxy have run, which took over 10 s on a loaded node
        route_grace: float = 30.0,
        references: Mapping[str, bytes] | None = None,
    ):
        self.users = users
        self.say = say
        self.timeout = timeout
        self.transport = transport
        self.reach_timeout = reach_timeout
        self.host = host
        self.certificate_grace = certificate_grace
        self.route_grace = route_grace
        self.references = references or {}  # reference_keys: to read which hop an error answer names
        self.routes_by = 0.0  # until then, a 502/503/504 of the gateway is a route not yet made: asked again
        self._trust: ssl.SSLContext | None = None

    def reached(self, url: str, every: float = 1.0) -> None:
        """Until the gateway answers through `url`, for up to `reach_timeout` seconds: a cloud load balancer's
        address comes before its forwarding rule and health checks work (on GKE, a minute or more), and until
        then a connection is refused, hangs, or is answered 502/503/504 by the balancer."""
        started = time.monotonic()
        said = started - 10  # the first wait is said at once, then every 10 s
        refused_since: float | None = None  # when the certificate errors in a row began
        while True:
            seen, problem = self.knock(url)
            if not seen:
                return
            now = time.monotonic()
            waited = now - started
            if problem is None:
                refused_since = None
            else:
                refused_since = now if refused_since is None else refused_since
                if now - refused_since >= self.certificate_grace or waited >= self.reach_timeout:
                    raise self.rejected(url, problem)
            if waited >= self.reach_timeout:
                raise SmokeFailed(
                    "gateway",
                    "waiting for it to answer",
                    detail=f"{url} did not answer within {self.reach_timeout:.0f} s (last: {seen}); a new load "
                    "balancer can take minutes: run `k8sdeploy up` again or raise --wait-timeout",
                )
            if time.monotonic() - said >= 10:
                said = time.monotonic()
                self.say(f"waiting for the gateway to answer at {url} ({waited:.0f} s; {seen})")
            time.sleep(every)

    def knock(self, url: str) -> tuple[str, ssl.SSLCertVerificationError | None]:
        """One look at the login page: '' once the gateway answers, else what answered (and the certificate
        problem, when that was it)."""
        try:
            with self.client(url) as http:
                answer = http.get("/login", timeout=min(self.timeout, 5.0))
        except httpx.TransportError as exc:
            problem = certificate_problem(exc)
            return ("certificate refused" if problem else type(exc).__name__), problem
        return ("" if answer.status_code not in (502, 503, 504) else f"answered {answer.status_code}"), None

    def rejected(self, url: str, problem: ssl.SSLCertVerificationError) -> CertificateRejected:
        name = self.host or httpx.URL(url).host
        return CertificateRejected(url, name, problem, served_names(url, name), by_ip=not self.host)

    def client(self, url: str) -> httpx.Client:
        """A client of the gateway at `url`, asking for `host` where there is one."""
        if not self.host:
            return httpx.Client(base_url=url, follow_redirects=False, timeout=self.timeouts, transport=self.transport)
        name = self.host

        def server_name(request: httpx.Request) -> None:
            request.extensions["sni_hostname"] = name  # httpcore's TLS server name, verified as the host name

        return httpx.Client(
            base_url=url,
            headers={"Host": self.authority(url)},
            verify=self.trust(),
            event_hooks={"request": [server_name]},
            follow_redirects=False,
            timeout=self.timeouts,
            transport=self.transport,
        )

    @property
    def timeouts(self) -> httpx.Timeout:
        """A connection is given CONNECT_SECONDS (one to a gone pod's address never answers: tried again), an
        answer `timeout`."""
        return httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_SECONDS))

    def trust(self) -> ssl.SSLContext:
        """The system's trust store (OpenSSL's default paths, which SSL_CERT_FILE and SSL_CERT_DIR replace), read
        once per smoke test and only where it asks for a name."""
        if self._trust is None:
            self._trust = ssl.create_default_context()
        return self._trust

    def authority(self, url: str) -> str:
        """The Host header sent to `url`: `host` (else the URL's address), with the port unless it is the scheme's
        (httpx leaves that out of its own Host header, and the gateway compares Origin with Host)."""
        address = httpx.URL(url)
        if not self.host:
            return address.netloc.decode("ascii")
        return f"{self.host}:{address.port}" if address.port else self.host

    def origin(self, url: str) -> str:
        """The Origin a browser would send from the gateway's pages: the scheme and the Host it asked for."""
        return f"{httpx.URL(url).scheme}://{self.authority(url)}"

    def routed(self, send: Callable[[], httpx.Response], every: float = 0.5) -> httpx.Response:
        """`send()`'s answer, sent again while the gateway answers 502/503/504, or cannot be connected to, and the
        run's route grace lasts: a Service routes to a pod a moment after the pod is ready and away from it a
        moment after it is gone (the EndpointSlice controller, then kube-proxy on every node, at most once a
        second: its minSyncPeriod), so just after a rollout a hop inside the suite can still refuse the gateway's
        connection, and a connection to the gateway's own Service can still be sent to the old pod's address,
        where nothing answers. A request whose connection failed was never sent: sending it again is safe for a
        POST too. A certificate problem is not a route and is final."""
        while True:
            try:
                answer = send()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if certificate_problem(exc) is not None or time.monotonic() >= self.routes_by:
                    raise
            else:
                if answer.status_code not in (502, 503, 504) or time.monotonic() >= self.routes_by:
                    return answer
            time.sleep(every)

    def expect(self, answer: httpx.Response, status: int, step: str, contains: str = "") -> httpx.Response:
        if answer.status_code != status or (contains and contains not in answer.text):
            raise SmokeFailed(failing_hop(answer, self.references), step, answer)
        return answer

    def log_in(self, http: httpx.Client, email: str, password: str) -> None:
        step = f"logging in as {email}"
        answer = self.routed(
            lambda: http.post(
                "/login",
                data={"emailaddress": email, "password": password},
                headers={"Origin": self.origin(str(http.base_url))},
            )
        )
        if answer.status_code == 401:
            raise SmokeFailed("authentication", step, detail="the smoke user's credentials were refused (401)")
        self.expect(answer, 302, step)
        if not any(name.endswith("AccessToken") for name in http.cookies):  # __Host-AccessToken with TLS
            raise SmokeFailed("gateway", step, detail="no AccessToken cookie was set")

    def run(self, url: str) -> SmokeReport:
        checks: list[str] = []

        def passed(check: str) -> None:
            checks.append(check)
            self.say(f"smoke: {check}")

        (admin, admin_password), (user, user_password) = ((u.email, u.password) for u in self.users)
        origin = {"Origin": self.origin(url)}
        if self.reach_timeout:
            self.reached(url)
        self.routes_by = time.monotonic() + self.route_grace
        try:
            with self.client(url) as http:
                page = self.routed(lambda: http.get("/login"))
                self.expect(page, 200, "loading the login page", 'name="emailaddress"')
                passed("login page served")
                self.log_in(http, admin, admin_password)
                passed(f"{admin} logged in")
                people = self.expect(self.routed(lambda: http.get("/persons")), 200, "listing people", "<table>")
                rows = len(re.findall(r"<tr>", people.text)) - 1
                passed(f"people listed ({rows})")
                name = next(name for name in http.cookies if name.endswith("AccessToken"))  # __Host- with TLS
                token = http.cookies[name]
                for path in ("/api/sessions/" + token, "/api/authentication", "/api/authorisations/personView"):
                    self.expect(http.get(path), 404, f"checking that {path.split('/')[2]} is internal")
                passed("internal APIs answer 404 from outside")
                self.expect(http.post("/logout", headers=origin), 302, "logging out")
            with self.client(url) as replay:
                replay.cookies.set(name, token)
                self.expect(replay.get("/persons"), 302, "replaying the cookie after logout")
            passed("logged out; the old cookie is refused")
            with self.client(url) as http:
                self.log_in(http, user, user_password)
                denied = http.post("/persons/add", data={"firstName": "Smoke", "lastName": "Test"}, headers=origin)
                self.expect(denied, 403, f"checking that {user} may not add people", "permission")
                passed(f"{user} is refused what it may not do")
                self.expect(http.post("/logout", headers=origin), 302, f"logging {user} out")
        except httpx.TransportError as exc:
            problem = certificate_problem(exc)
            if problem is not None:
                raise self.rejected(url, problem) from exc
            raise SmokeFailed("gateway", "connecting", detail=f"{url}: {exc or type(exc).__name__}") from exc
        return SmokeReport(url=url, checks=tuple(checks))


def smoke_stage(
    environment: Environment, say: Say, skip: bool = False, reach_timeout: float = 0.0
) -> Callable[[Users, Identity], Smoke]:
    """The smoke login as the environment's smoke users, after the gateway answers (for up to `reach_timeout`
    seconds), or a stage that says why it was skipped (--no-smoke, or the environment's `smoke = false`)."""
    if skip:
        return lambda users, identity: NoSmoke(say, "--no-smoke")
    if not environment.smoke:
        return lambda users, identity: NoSmoke(say, f"environment {environment.name} sets smoke = false")
    host = smoke_host(environment)
    return lambda users, identity: HttpSmoke(
        say=say, users=users.smoke, reach_timeout=reach_timeout, host=host, references=reference_keys(identity)
    )


def smoke_host(environment: Environment) -> str:
    """The name the smoke test asks the gateway for: the environment's first `hosts` ('': the URL's address)."""
    return environment.hosts[0] if environment.hosts else ""
