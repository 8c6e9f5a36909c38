"""When a request to a remote API may be sent again, and for how long: one rule for the Kubernetes API, the
registries and Google's APIs.

- An answer that says the server did not act (429, 503; a registry's 5xx) is retried, whatever the method.
- A broken connection (refused, reset, cut while the request was sent or its answer read, a read timeout)
  leaves it unknown whether the server acted. A request that does the same when done twice is sent again:
  GET, HEAD, PUT (the Kubernetes API's with a resourceVersion precondition), PATCH (server-side apply), DELETE
  (a 404 on the retry means the first one did it: the caller's answer for "already gone"), and what a caller
  declares so (a registry's upload session). A create (POST) is sent again only after `landed` has read back
  that the first one did not land; without a read-back it is not sent again.
- Waits: truncated exponential backoff with jitter (Google's guidance for its APIs,
  https://cloud.google.com/storage/docs/retry-strategy), a Retry-After honoured, until the deadline.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from deploy.model.errors import ConfigError

T = TypeVar("T")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Declined(Exception):
    """An answer saying the server did not act and the request may come again (429, 503, ...)."""

    def __init__(self, status: int, request: str, retry_after: float | None = None, answer: object = None):
        super().__init__(f"HTTP {status} to {request}")
        self.status = status
        self.request = request
        self.retry_after = retry_after
        self.answer = answer


def retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header given in seconds (the HTTP-date form is not used by these APIs)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


DEFAULT_SECONDS = 60.0
SECONDS_VARIABLE = "K8SDEPLOY_RETRY_SECONDS"


def default_seconds() -> float:
    """How long a request is tried by default: $K8SDEPLOY_RETRY_SECONDS (CI that would rather fail fast), else 60."""
    raw = os.environ.get(SECONDS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigError(
            f"{SECONDS_VARIABLE}={raw!r} is not a number of seconds", f"set {SECONDS_VARIABLE} between 1 and 3600"
        )
    return seconds


@dataclass(frozen=True)
class RetryPolicy:
    """How long one request is tried: waits from `initial` doubling up to `maximum` (plus jitter), until
    `deadline` seconds have passed since its first try (None: default_seconds(), read when it is used)."""

    deadline: float | None = None
    initial: float = 0.25
    maximum: float = 4.0

    @property
    def seconds(self) -> float:
        return self.deadline if self.deadline is not None else default_seconds()

    def wait(self, attempt: int) -> float:
        return min(self.maximum, self.initial * 2**attempt) + random.uniform(0, self.initial)

    def call(
        self,
        send: Callable[[], T],
        method: str,
        broken: Callable[[BaseException], bool],
        landed: Callable[[], T | None] | None = None,
        idempotent: bool | None = None,
    ) -> T:
        """`send()` until it answers; `broken(exc)`: the connection broke (it is unknown whether the server
        acted). Past the deadline the last error is raised as it is, for the caller to word."""
        resend = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return send()
            except Declined as exc:
                wait = max(exc.retry_after or 0.0, self.wait(attempt))
                error: BaseException = exc
            except Exception as exc:
                if not broken(exc) or (not resend and landed is None):
                    raise
                wait, error = self.wait(attempt), exc
                if not resend and landed is not None:
                    found = landed()  # itself a read, retried by this rule
                    if found is not None:
                        return found
            if time.monotonic() - started + wait > self.seconds:
                raise error
            time.sleep(wait)
            attempt += 1


DEFAULT = RetryPolicy()
