"""One deploy at a time per environment: a lease with a holder and a time to live, renewed while held.

`up`, `rollback` and `down` hold their environment's lease for their whole run. A second command of the
same environment finds it held and stops at once, naming the holder and since when (exit 9); a holder that
crashed stops renewing it, and its lease can be taken once its time to live has passed. Kubernetes targets
keep it as a coordination.k8s.io Lease in the environment's namespace (deploy/targets/kube/lease.py); the
local target as a file in its state directory (targets/local/stores.py FileLease).
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from deploy.model.errors import LeaseHeldError

# a holder as runner.holding() names it: user@host (or "ci (user@host)"), then the process
HOLDER = re.compile(r"@(?P<host>[^\s()]+)\)? \(pid (?P<pid>\d+)\)$")
DURATION = 60  # seconds a lease lives without being renewed; renewed every DURATION / 3


@dataclass(frozen=True)
class Holding:
    holder: str  # user@host (or the CI run) and the process
    acquired: datetime.datetime
    renewed: datetime.datetime
    duration: int

    def expired(self, now: datetime.datetime) -> bool:
        return now > self.renewed + datetime.timedelta(seconds=self.duration)

    def dead_here(self) -> bool:
        """The holder was a process on this host (`user@HOST (pid N)`) that no longer exists: its lease can be
        taken at once, without waiting for it to expire."""
        match = HOLDER.search(self.holder)
        if match is None or match["host"] != socket.gethostname():
            return False
        pid = int(match["pid"])
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it exists, as another user's
            return False
        return False


class Lease(Protocol):
    # Held inside the with, released after; `create`: make the place it is kept in when missing (not for down).
    def hold(self, holder: str, create: bool = True) -> AbstractContextManager[Holding | None]: ...


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def gone(found: Holding, now: datetime.datetime) -> str:
    """Why `found`'s lease may be taken: its process on this host is gone, or it expired."""
    if not found.expired(now) and found.dead_here():
        return "whose process on this host no longer exists"
    return f"which expired (not renewed since {found.renewed})"


def refuse(env_name: str, found: Holding, now: datetime.datetime) -> LeaseHeldError:
    left = int((found.renewed + datetime.timedelta(seconds=found.duration) - now).total_seconds())
    return LeaseHeldError(env_name, found.holder, found.acquired.isoformat(), max(left, 0))


class Renewer:
    """Renews a held lease every `every` seconds in a thread, until stopped."""

    def __init__(self, renew: Callable[[], None], every: float):
        self.renew = renew
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a lost renewal shows as a takeover, not a crash mid-deploy
                return

    def __enter__(self) -> Renewer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
