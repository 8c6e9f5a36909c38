"""Where the local target keeps an environment's records: files in its state directory
(~/.local/state/k8sdeploy/ENV, containers.default_state_dir): the release history, the lease, the users and the
identity keys. Kubernetes targets keep the same in their namespace (targets/kube/)."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.identity import Identity, parse
from deploy.model.errors import ConfigError
from deploy.model.lease import DURATION, Holding, Renewer, gone, refuse, utcnow
from deploy.model.progress import Say, silent
from deploy.model.releases import FORMAT, Release
from deploy.users import Stored, Users, parse_logins, private_write
from deploy.users import parse as parse_users


class FileHistory:
    """Releases of one environment as a JSON file, written whole through a temporary file."""

    def __init__(self, path: Path):
        self.path = path

    def releases(self) -> list[Release]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
            return [Release.from_dict(entry) for entry in data["releases"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{self.path} is not a k8sdeploy release history ({exc})",
                "move it away; the next `up` starts a new history",
            ) from exc

    def record(self, release: Release) -> None:
        entries = [r.to_dict() for r in self.releases()] + [release.to_dict()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"format": FORMAT, "releases": entries}, indent=2) + "\n")
        temporary.replace(self.path)


class FileLease:
    """The local target's lease: a JSON file, created exclusively; an expired one is replaced atomically."""

    def __init__(
        self,
        path: Path,
        env_name: str,
        duration: int = DURATION,
        clock: Callable[[], datetime.datetime] = utcnow,
        say: Say = silent,
    ):
        self.path = path
        self.env_name = env_name
        self.duration = duration
        self.clock = clock
        self.say = say

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
        if found is not None and not found.expired(now) and not found.dead_here():
            raise refuse(self.env_name, found, now)
        if found is not None:
            self.say(f"taking over the lease of {found.holder}, {gone(found, now)}")
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


class FileUsers:
    """The local target's users: 0600 files in its state directory, the hashes the services read (users.json)
    and the smoke users' passwords (smoke-logins.json) apart."""

    def __init__(self, path: Path):
        self.path = path
        self.smoke_path = path.with_name("smoke-logins.json")

    read_at_next_up = True

    @property
    def deployed(self) -> bool:
        return True  # the file is made by the next `up`, which reads it

    def read(self) -> Stored:
        try:
            document = self.path.read_text()
        except FileNotFoundError:
            return Stored()
        try:
            logins = self.smoke_path.read_text()
        except FileNotFoundError:
            logins = document  # written before the smoke passwords were kept apart
        return Stored(parse_users(document), parse_logins(logins))

    def write(self, users: Users) -> None:
        private_write(self.smoke_path, users.smoke_document())
        private_write(self.path, users.document())


class FileIdentity:
    """The local target's master keys: a 0600 file in its state directory. Its apply rewrites the parts' key files
    in place, so a rotated key may be used at once."""

    propagation_seconds = 0

    def __init__(self, path: Path, env_name: str):
        self.path, self.env_name = path, env_name

    def read(self) -> Identity | None:
        try:
            return parse(self.env_name, self.path.read_text())
        except FileNotFoundError:
            return None

    def save(self, identity: Identity) -> None:
        private_write(self.path, identity.document())

    def objects(self, identity: Identity) -> tuple[dict, ...]:
        return ()  # kept in the file, not in the deployment
