"""The smoke stage: a real login through the gateway, and a name for the hop that breaks."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from deploy.model.environments import Environment
from deploy.model.errors import SmokeError
from deploy.model.progress import Say, silent
from deploy.model.suite import DEMO_USERS, Login

if TYPE_CHECKING:
    from deploy.users import Users

# What each hop's failure looks like from outside the gateway, checked in this order.
HOP_SIGNS: tuple[tuple[str, str], ...] = (
    ("authorisation service unavailable", "authorisation"),
    ("gateway: the session service is unavailable", "session"),
    ("gateway: the authentication service is unavailable", "authentication"),
    ("The person service cannot be reached", "person"),
    ("The person service failed", "person"),
)


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


def failing_hop(answer: httpx.Response) -> str:
    """Which part of the suite an unexpected answer points at."""
    for sign, hop in HOP_SIGNS:
        if sign in answer.text:
            return hop
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


class HttpSmoke:
    """Logs in with an admin and a viewer (the environment's smoke users; by default the demo users) and walks
    the flow a person would, through the gateway only."""

    def __init__(
        self,
        say: Say = silent,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        users: tuple[Login, Login] = DEMO_USERS,
        reach_timeout: float = 0.0,
    ):
        self.users = users
        self.say = say
        self.timeout = timeout
        self.transport = transport
        self.reach_timeout = reach_timeout

    def reached(self, url: str, every: float = 1.0) -> None:
        """Until the gateway answers through `url`, for up to `reach_timeout` seconds: a cloud load balancer's
        address comes before its forwarding rule and health checks work (on GKE, a minute or more), and until
        then a connection is refused, hangs, or is answered 502/503/504 by the balancer."""
        started = time.monotonic()
        said = started - 10  # the first wait is said at once, then every 10 s
        seen = "no answer"
        while True:
            try:
                with self.client(url) as http:
                    answer = http.get("/login", timeout=min(self.timeout, 5.0))
                if answer.status_code not in (502, 503, 504):
                    return
                seen = f"answered {answer.status_code}"
            except httpx.TransportError as exc:
                seen = f"{type(exc).__name__}"
            waited = time.monotonic() - started
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

    def client(self, url: str) -> httpx.Client:
        return httpx.Client(base_url=url, follow_redirects=False, timeout=self.timeout, transport=self.transport)

    def expect(self, answer: httpx.Response, status: int, step: str, contains: str = "") -> httpx.Response:
        if answer.status_code != status or (contains and contains not in answer.text):
            raise SmokeFailed(failing_hop(answer), step, answer)
        return answer

    def log_in(self, http: httpx.Client, email: str, password: str) -> None:
        step = f"logging in as {email}"
        answer = http.post(
            "/login",
            data={"emailaddress": email, "password": password},
            headers={"Origin": str(http.base_url).rstrip("/")},
        )
        if answer.status_code == 401:
            raise SmokeFailed("authentication", step, detail="the smoke user's credentials were refused (401)")
        self.expect(answer, 302, step)
        if "AccessToken" not in http.cookies:
            raise SmokeFailed("gateway", step, detail="no AccessToken cookie was set")

    def run(self, url: str) -> SmokeReport:
        checks: list[str] = []

        def passed(check: str) -> None:
            checks.append(check)
            self.say(f"smoke: {check}")

        (admin, admin_password), (user, user_password) = ((u.email, u.password) for u in self.users)
        if self.reach_timeout:
            self.reached(url)
        try:
            with self.client(url) as http:
                self.expect(http.get("/login"), 200, "loading the login page", 'name="emailaddress"')
                passed("login page served")
                self.log_in(http, admin, admin_password)
                passed(f"{admin} logged in")
                people = self.expect(http.get("/persons"), 200, "listing people", "<table>")
                rows = len(re.findall(r"<tr>", people.text)) - 1
                passed(f"people listed ({rows})")
                token = http.cookies["AccessToken"]
                for path in ("/api/sessions/" + token, "/api/authentication", "/api/authorisations/personView"):
                    self.expect(http.get(path), 404, f"checking that {path.split('/')[2]} is internal")
                passed("internal APIs answer 404 from outside")
                self.expect(http.post("/logout", headers={"Origin": url.rstrip("/")}), 302, "logging out")
            with self.client(url) as replay:
                replay.cookies.set("AccessToken", token)
                self.expect(replay.get("/persons"), 302, "replaying the cookie after logout")
            passed("logged out; the old cookie is refused")
            with self.client(url) as http:
                self.log_in(http, user, user_password)
                denied = http.post(
                    "/persons/add", data={"firstName": "Smoke", "lastName": "Test"}, headers={"Origin": url.rstrip("/")}
                )
                self.expect(denied, 403, f"checking that {user} may not add people", "permission")
                passed(f"{user} is refused what it may not do")
                self.expect(http.post("/logout", headers={"Origin": url.rstrip("/")}), 302, f"logging {user} out")
        except httpx.TransportError as exc:
            raise SmokeFailed("gateway", "connecting", detail=f"{url}: {exc or type(exc).__name__}") from exc
        return SmokeReport(url=url, checks=tuple(checks))


def smoke_stage(
    environment: Environment, say: Say, skip: bool = False, reach_timeout: float = 0.0
) -> Callable[[Users], Smoke]:
    """The smoke login as the environment's smoke users, after the gateway answers (for up to `reach_timeout`
    seconds), or a stage that says why it was skipped (--no-smoke, or the environment's `smoke = false`)."""
    if skip:
        return lambda users: NoSmoke(say, "--no-smoke")
    if not environment.smoke:
        return lambda users: NoSmoke(say, f"environment {environment.name} sets smoke = false")
    return lambda users: HttpSmoke(say=say, users=users.smoke, reach_timeout=reach_timeout)
