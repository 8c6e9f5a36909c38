"""One deploy at a time per environment: a lease with a holder and a time to live, renewed while held.

`up`, `rollback` and `down` hold their environment's lease for their whole run. A second command of the
same environment finds it held and stops at once, naming the holder and since when (exit 9); a holder that
crashed stops renewing it, and its lease can be taken once its time to live has passed. Kubernetes targets
keep it as a coordination.k8s.io Lease in the environment's namespace (deploy/targets/kube/lease.py); the
local target as a file in its state directory (FileLease, below).
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.model.errors import LeaseHeldError

DURATION = 60  # seconds a lease lives without being renewed; renewed every DURATION / 3


@dataclass(frozen=True)
class Holding:
    holder: str  # user@host (or the CI run) and the process
    acquired: datetime.datetime
    renewed: datetime.datetime
    duration: int

    def expired(self, now: datetime.datetime) -> bool:
        return now > self.renewed + datetime.timedelta(seconds=self.duration)


class Lease(Protocol):
    # Held inside the with, released after; `create`: make the place it is kept in when missing (not for down).
    def hold(self, holder: str, create: bool = True) -> AbstractContextManager[Holding | None]: ...


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


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


class FileLease:
    """The local target's lease: a JSON file, created exclusively; an expired one is replaced atomically."""

    def __init__(
        self, path: Path, env_name: str, duration: int = DURATION, clock: Callable[[], datetime.datetime] = utcnow
    ):
        self.path = path
        self.env_name = env_name
        self.duration = duration
        self.clock = clock

    def read(self) -> Holding | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return Holding(
            data["holder"],
            datetime.datetime.fromisoformat(data["acquired"]),
            datetime.datetime.fromisoformat(data["renewed"]),
            int(data["duration"]),
        )

    def write(self, holding: Holding, exclusive: bool) -> None:
        text = json.dumps(
            {
                "holder": holding.holder,
                "acquired": holding.acquired.isoformat(),
                "renewed": holding.renewed.isoformat(),
                "duration": holding.duration,
            }
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if exclusive:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
            return
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(text)
        temporary.replace(self.path)

    def acquire(self, holder: str) -> Holding:
        now = self.clock()
        mine = Holding(holder, now, now, self.duration)
        try:
            self.write(mine, exclusive=True)
            return mine
        except FileExistsError:
            found = self.read()
        if found is not None and not found.expired(now):
            raise refuse(self.env_name, found, now)
        self.write(mine, exclusive=False)  # a crashed holder's lease: take it over
        return mine

    @contextmanager
    def hold(self, holder: str, create: bool = True) -> Iterator[Holding]:
        mine = self.acquire(holder)

        def renew() -> None:
            found = self.read()
            if found is not None and found.holder == holder:
                self.write(Holding(holder, mine.acquired, self.clock(), self.duration), exclusive=False)

        try:
            with Renewer(renew, self.duration / 3):
                yield mine
        finally:
            found = self.read()
            if found is not None and found.holder == holder:
                self.path.unlink(missing_ok=True)
