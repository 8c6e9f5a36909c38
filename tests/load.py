"""A logged-in user under load, for the tests of what a deploy costs its users: people listed every 50 ms through
the gateway, in a thread of its own, each answer counted (served, failed, sent back to the login page)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

INTERVAL = 0.05


@dataclass
class Load:
    url: str
    served: int = 0
    failed: list[tuple[float, str]] = field(default_factory=list)  # (when, what the request got)
    logged_out: int = 0  # sent back to the login page: the session was lost
    stop: threading.Event = field(default_factory=threading.Event)

    def log_in(self, http: httpx.Client) -> None:
        answer = http.post("/login", data={"emailaddress": "admin@test.com", "password": "admin"})
        assert answer.status_code == 302 and "AccessToken" in http.cookies, answer.text[:300]

    def loop(self) -> None:
        # a new connection for every request (Connection: close): each is routed by the rules of that moment
        headers = {"Origin": self.url, "Connection": "close"}
        with httpx.Client(base_url=self.url, timeout=30, headers=headers) as http:
            self.log_in(http)
            while not self.stop.is_set():
                self.one(http)
                self.stop.wait(INTERVAL)

    def one(self, http: httpx.Client) -> None:
        try:
            answer = http.get("/persons")
        except httpx.HTTPError as exc:
            self.failed.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
            return
        if answer.status_code == 200 and "<table>" in answer.text:
            self.served += 1
        elif answer.status_code in (302, 303) and "/login" in answer.headers.get("location", ""):
            self.logged_out += 1
            self.log_in(http)
        else:
            self.failed.append((time.monotonic(), f"{answer.status_code} {answer.text[:120]!r}"))

    def report(self) -> str:
        return f"{len(self.failed)} of {self.served + len(self.failed)} failed: {[what for _, what in self.failed[:5]]}"


@contextmanager
def loaded(url: str, after: float = 2.0) -> Iterator[Load]:
    """The load running from before the block (5 requests served, none failed) to `after` seconds past it."""
    load = Load(url)
    thread = threading.Thread(target=load.loop, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while load.served < 5 and not load.failed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load.served >= 5 and not load.failed, load.report()  # serving before the change begins
        yield load
        time.sleep(after)
    finally:
        load.stop.set()
        thread.join(timeout=60)


@contextmanager
def nothing_lost(url: str) -> Iterator[Load]:
    """`loaded`, and then not one request failed and the user was never logged out."""
    with loaded(url) as load:
        yield load
    assert (len(load.failed), load.logged_out) == (0, 0), load.report()
    assert load.served > 20, load.report()
