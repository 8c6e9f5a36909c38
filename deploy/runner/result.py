"""What a deploy verb returns and records: an UpResult holds the Release it recorded (which holds its build), with
where the gateway answers, what apply changed, the smoke login's report and each stage's seconds (Stopwatch, the
timing wrapper of every stage)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from deploy.model.errors import DeployError
from deploy.model.images import PublishedImage
from deploy.model.progress import Say
from deploy.model.releases import Release, ReleaseHistory
from deploy.model.schemas import Schemas
from deploy.model.status import ApplyResult
from deploy.smoke import SmokeReport

T = TypeVar("T")


@dataclass(frozen=True)
class UpResult:
    """A deploy's outcome: `release` is what it recorded (or found recorded already: nothing changed)."""

    env_name: str
    release: Release
    url: str
    applied: ApplyResult
    smoke: SmokeReport | None
    durations: Mapping[str, float]  # seconds per stage

    # the release's own, as the commands and the JSON documents say them
    @property
    def version(self) -> str:
        return self.release.version

    @property
    def commit(self) -> str:
        return self.release.commit

    @property
    def images(self) -> Mapping[str, PublishedImage]:
        return self.release.images

    @property
    def layout(self) -> str:
        return self.release.layout

    @property
    def objects_hash(self) -> str:
        return self.release.objects_hash

    @property
    def action(self) -> str:
        return self.release.action

    @property
    def schemas(self) -> Schemas:
        return self.release.schemas

    @property
    def schema_changes(self) -> tuple[str, ...]:
        return self.release.schema_changes

    @property
    def promoted_from(self) -> Mapping[str, str]:
        return self.release.promoted_from

    @property
    def forced(self) -> str:
        return self.release.forced

    @property
    def approved_by(self) -> str:
        return self.release.approved_by

    @property
    def checks(self) -> tuple[str, ...]:
        """What it passed: ready (it is recorded only then), and the smoke login when that ran."""
        return self.release.checks


class Stopwatch:
    """Each stage's seconds: a stage runs inside stage(NAME), or is wrapped by timed(NAME, stage)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.durations: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = self.clock()
        try:
            yield
        finally:
            self.durations[name] = round(self.clock() - started, 3)

    def timed(self, name: str, stage: Callable[[], T]) -> T:
        with self.stage(name):
            return stage()


def describe(applied: ApplyResult) -> str:
    if not applied.changed:
        return f"no change: {', '.join(applied.unchanged) or 'nothing'} already up to date"
    parts = [
        f"{label} {', '.join(names)}"
        for label, names in (
            ("created", applied.created),
            ("replaced", applied.replaced),
            ("removed", applied.removed),
            ("unchanged", applied.unchanged),
        )
        if names
    ]
    return "; ".join(parts)


def smoke_tested(releases: Sequence[Release], version: str, rendered_hash: str, layout: str, action: str) -> bool:
    """Whether the newest recorded release is this one (its version, rendered objects, layout and action) and
    passed the smoke login."""
    newest = releases[-1:]
    return bool(newest) and (
        newest[0].version,
        newest[0].objects_hash,
        newest[0].layout,
        newest[0].action,
        "smoke" in newest[0].checks,
    ) == (version, rendered_hash, layout, action, True)


def record_release(history: ReleaseHistory, result: UpResult, say: Say, known: Sequence[Release] | None = None) -> None:
    """Record the release, unless nothing changed and the newest recorded release is this one: an `up` with
    nothing to do writes nothing at all. `known`: the history as read under this command's lease."""
    release = result.release
    newest = (history.releases() if known is None else known)[-1:]
    same = newest and (
        newest[0].version,
        newest[0].objects_hash,
        newest[0].layout,
        newest[0].action,
        dict(newest[0].promoted_from),
    ) == (release.version, release.objects_hash, release.layout, release.action, dict(release.promoted_from))
    if same and not result.applied.changed:
        say(f"release {release.version} is already the newest recorded; nothing to record")
        return
    history.record(release)


class RolledBack(DeployError):
    """`up --rollback-on-failure`: the new version failed and the previous one runs again; exits as the failure."""

    def __init__(self, failure: DeployError, restored: UpResult):
        super().__init__(
            f"{failure.message}; rolled back to version {restored.version}, which passed its checks",
            hint=failure.hint,
            details=failure.details,
        )
        self.exit_code = failure.exit_code
        self.restored = restored


class NoEarlierRelease(DeployError):
    """`up --rollback-on-failure` failed where no release is recorded (a first `up`): nothing was put back, the
    environment stays as the failed version left it; exits as the failure."""

    def __init__(self, failure: DeployError):
        super().__init__(f"{failure.message}; no earlier release to roll back to", failure.hint, failure.details)
        self.exit_code = failure.exit_code


class RollbackFailed(DeployError):
    """`up --rollback-on-failure`: the new version failed, and so did putting the previous one back.

    Both failures are named; the exit code is the first one's (why the deploy failed), and the
    details hold both diagnoses, since neither version may be serving now."""

    def __init__(self, failure: DeployError, version: str, rollback_failure: DeployError):
        super().__init__(
            f"{failure.message}; rolling back to version {version} failed too: {rollback_failure.message}",
            hint="run `k8sdeploy status` to see what runs, then `k8sdeploy rollback --to VERSION` or a fixed `up`",
            details=f"the new version:\n{failure.details}\nthe rollback to {version}:\n{rollback_failure.details}",
        )
        self.exit_code = failure.exit_code
