"""The record stage: each successful `up` or `rollback` is a Release, appended to the target's history.

The local target keeps its history as a JSON file next to its other state (the files it mounts
into pods), in `$XDG_STATE_HOME/k8sdeploy/ENV/releases.json`: that directory already belongs to
exactly one environment of one user on one machine, like the containers labelled with it, and
survives `down` (the images it names stay in the engine, so a rollback still works).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol

from deploy.model.errors import DeployError
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.schemas import Schemas, schemas_from_dict, schemas_to_dict
from deploy.model.status import ServiceStatus

FORMAT = 1  # of the history file


@dataclass(frozen=True)
class Release:
    """What ran after one successful `up` or `rollback`, enough to put it back by digest."""

    version: str
    commit: str
    images: Mapping[str, PublishedImage]
    layout: str
    objects_hash: str  # sha256 of the rendered objects (canonical JSON)
    time: str  # UTC, ISO 8601
    by: str  # who or what ran it: user@host, or the CI run
    # up | rollback | dev (`k8sdeploy dev`: uncommitted work, never gone back to unnamed) | promote
    action: str = "up"
    schemas: Schemas = field(default_factory=lambda: MappingProxyType({}))  # each service's migrations
    schema_changes: tuple[str, ...] = ()  # a rollback's: what it did to each database's schema, a line each
    checks: tuple[str, ...] = ()  # what it passed before it was recorded: "ready", and "smoke" when it ran
    # a promote's: the environment and version it came from, and the digest of that release's record there
    promoted_from: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    forced: str = ""  # `promote --force`: the gate it went past
    approved_by: str = ""  # `promote --approved-by`

    @property
    def build(self) -> BuildRecord:
        """The build this release deployed (its signatures' places are not recorded: they are looked up)."""
        return BuildRecord(self.version, self.commit, self.images, schemas=self.schemas)

    def digest(self) -> str:
        """The sha256 of this record (canonical JSON): what a promotion names as its source."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "commit": self.commit,
            "layout": self.layout,
            "images": {name: {**asdict(image), "ref": image.ref} for name, image in self.images.items()},
            "objects_hash": self.objects_hash,
            "time": self.time,
            "by": self.by,
            "action": self.action,
            "schemas": schemas_to_dict(self.schemas),
            "schema_changes": list(self.schema_changes),
            "checks": list(self.checks),
            **({"promoted_from": dict(self.promoted_from)} if self.promoted_from else {}),
            **({"forced": self.forced} if self.forced else {}),
            **({"approved_by": self.approved_by} if self.approved_by else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Release:
        images = {
            name: PublishedImage(**{k: v for k, v in fields.items() if k != "ref"})
            for name, fields in data["images"].items()
        }
        return cls(
            version=data["version"],
            commit=data["commit"],
            images=MappingProxyType(images),
            layout=data["layout"],
            objects_hash=data["objects_hash"],
            time=data["time"],
            by=data["by"],
            action=data.get("action", "up"),
            schemas=schemas_from_dict(data.get("schemas")),
            schema_changes=tuple(data.get("schema_changes", ())),
            checks=tuple(data.get("checks", ())),
            promoted_from=MappingProxyType(dict(data.get("promoted_from") or {})),
            forced=data.get("forced", ""),
            approved_by=data.get("approved_by", ""),
        )


def objects_hash(objects: Sequence[dict]) -> str:
    canonical = json.dumps(list(objects), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def who(environ: Mapping[str, str] = os.environ) -> str:
    """The CI run when there is one (GitHub Actions names it), else user@host."""
    if environ.get("GITHUB_RUN_ID"):
        return (
            f"github-actions {environ.get('GITHUB_REPOSITORY', '')} run {environ['GITHUB_RUN_ID']}"
            f" by {environ.get('GITHUB_ACTOR', '?')}"
        ).replace("  ", " ")
    user = f"{getpass.getuser()}@{socket.gethostname()}"
    return f"ci ({user})" if environ.get("CI") else user


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NoRelease(DeployError):
    """Nothing recorded to roll back to."""


class ReleaseHistory(Protocol):
    def record(self, release: Release) -> None: ...

    def releases(self) -> list[Release]: ...  # oldest first


def choose(releases: Sequence[Release], version: str | None) -> Release:
    """The release to roll back to: `version`'s latest record, or the newest one before what runs now."""
    if not releases:
        raise NoRelease("no release is recorded for this environment", "deploy one with `k8sdeploy up`")
    if version is not None:
        for release in reversed(releases):
            if release.version == version:
                return release
        known = ", ".join(dict.fromkeys(r.version for r in reversed(releases)))
        raise NoRelease(f"no release {version} is recorded", f"choose one of: {known}")
    current = releases[-1].version
    for release in reversed(releases):
        if release.version != current and release.action != "dev":
            return release
    raise NoRelease(
        f"only version {current} is recorded; there is nothing older to roll back to",
        "deploy an earlier version with `k8sdeploy up --source`",
    )


def drift(running: Sequence[ServiceStatus], release: Release) -> tuple[str, ...]:
    """How what runs differs from the recorded release (someone changed it by hand); () when it does not."""
    lines = []
    names = {row.name for row in running}
    for row in running:
        recorded = release.images.get(row.name)
        if recorded is None:
            lines.append(f"{row.name} runs {row.image}, which release {release.version} does not have")
        elif row.image != recorded.ref:
            lines.append(f"{row.name} runs {row.image}, release {release.version} recorded {recorded.ref}")
    lines += [f"{name} of release {release.version} is not running" for name in release.images if name not in names]
    return tuple(lines)
