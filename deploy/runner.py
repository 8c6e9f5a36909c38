"""The Runner: `up` and `rollback` ((build,) render, apply, wait, smoke, record, each stage timed, the outcome one
frozen record), `status` and `down`; all but `status` hold the environment's lease."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Protocol

from deploy.model.changes import Changes, ImagePlan, summary
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, DeployError, NotReadyError, SmokeError
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.lease import Lease
from deploy.model.progress import Say
from deploy.model.releases import Release, ReleaseHistory, choose, drift, now, objects_hash, who
from deploy.model.status import ApplyResult, ServiceStatus
from deploy.model.suite import User
from deploy.model.version import Version
from deploy.render.objects import render
from deploy.smoke import Smoke, SmokeReport
from deploy.targets import Target
from deploy.users import Users, wanted


@dataclass(frozen=True)
class UpResult:
    env_name: str
    layout: str
    version: str
    commit: str
    images: Mapping[str, PublishedImage]
    url: str
    applied: ApplyResult
    smoke: SmokeReport | None
    durations: Mapping[str, float]  # seconds per stage
    objects_hash: str = ""  # of the rendered objects, as recorded in the release
    action: str = "up"  # up | rollback | dev

    def release(self, by: str, time: str) -> Release:
        return Release(
            version=self.version,
            commit=self.commit,
            images=self.images,
            layout=self.layout,
            objects_hash=self.objects_hash,
            time=time,
            by=by,
            action=self.action,
        )


class Stopwatch:
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


class UsersStore(Protocol):
    """Where an environment's users are kept (users.FileUsers, targets/kube/users.KubeUsers)."""

    def read(self) -> dict[int, User]: ...

    def write(self, users: Users) -> None: ...

    @property
    def deployed(self) -> bool:
        """Whether the users can be written now (Kubernetes: the environment's namespace holds them)."""


@dataclass(frozen=True)
class Stages:
    """The objects of one environment that every command works through, made by compose.stages()."""

    environment: Environment
    target: Target
    history: ReleaseHistory
    lease: Lease
    users: UsersStore


@dataclass(frozen=True)
class Runner:
    """`up`, `rollback`, `status` and `down` of one environment. All but `status` hold the environment's lease;
    `up` and `rollback` keep its users and run the stages in order, timing each. Made by compose.make_runner()."""

    stages: Stages
    say: Say
    smoke: Callable[[Users], Smoke]  # the smoke stage, logging in as the environment's smoke users
    build: Callable[[ReleaseHistory], BuildRecord] | None = None  # the build stage of `up`
    preview: Callable[[], tuple[Version, tuple[ImagePlan, ...]]] | None = None  # `diff`'s: built, not published
    # before anything is applied: the images against the environment's `verify` (compose.verification)
    verify: Callable[[Mapping[str, PublishedImage]], object] = lambda images: None
    wait_timeout: float = 180
    mysql_secret: str = ""  # $K8SDEPLOY_MYSQL_SECRET, read by compose.py
    overlay: Callable[[tuple[dict, ...]], tuple[dict, ...]] | None = None  # `dev`: the checkout bound in

    @property
    def environment(self) -> Environment:
        return self.stages.environment

    def up(self, layout: str, rollback_on_failure: bool = False) -> tuple[UpResult, Users]:
        """Build, deploy `layout` and record the release; raises the failing stage's DeployError (with
        `rollback_on_failure`, after putting the newest recorded release back when waiting or smoke fails)."""
        with self.holding():
            users = self.users()
            if not rollback_on_failure:
                return self._up(layout, users), users
            return self._up_or_roll_back(layout, users), users

    def dev_up(self, layout: str) -> UpResult:
        """`up` for `dev`, whose caller holds the lease for its whole session: recorded as a dev release, which
        `rollback` never goes back to unless named."""
        return self._up(layout, self.users(), action="dev")

    def dev_redeploy(self, result: UpResult, images: Mapping[str, PublishedImage]) -> UpResult:
        """`dev` on a cluster: the deployed `result` with `images` in place of its own, rendered as its version
        (so only the workloads of those images change), applied, waited for and recorded as a dev release."""
        record = BuildRecord(result.version, result.commit, MappingProxyType({**result.images, **images}))
        return self._deploy(result.layout, record, self.users(), Stopwatch(), action="dev")

    def applied(self, rendered: Sequence[dict], users: Users) -> tuple[dict, ...]:
        """What apply gets: the rendered objects, the users' Secret and, for `dev`, the overlay."""
        objects = (*rendered, users.secret(self.environment.namespace))
        return objects if self.overlay is None else self.overlay(objects)

    def objects_of(self, result: UpResult) -> tuple[dict, ...]:
        """The objects of a deployed result, rendered again (a template of the gateway changed under `dev`)."""
        rendered = render(
            self.environment, result.layout, result.images, result.version, mysql_secret=self.mysql_secret
        )
        return self.applied(rendered.objects, wanted(self.environment, self.stages.users.read()))

    def rollback(self, version: str | None) -> UpResult:
        """Put a recorded release back by its digests, nothing built; waited for, smoke-tested and recorded."""
        release = choose(self.stages.history.releases(), version)
        with self.holding():
            return self._rollback(release, self.users())

    def diff(self, layout: str) -> Changes:
        """What `up` of `layout` would change: the images built (not published) and asked after, the render
        compared by the target with what runs. Nothing is written, and the lease is not taken."""
        if self.preview is None:
            raise ConfigError("this runner has no preview stage", "make it with compose.make_runner(options=...)")
        version, plans = self.preview()
        images = MappingProxyType({plan.name: plan.image for plan in plans})
        rendered = render(self.environment, layout, images, version.version, mysql_secret=self.mysql_secret)
        users = wanted(self.environment, self.stages.users.read())  # as `up` would keep them; not written
        objects = self.stages.target.diff(self.applied(rendered.objects, users))
        return Changes(self.environment.name, layout, version.version, plans, objects, rendered.notes)

    def status(self) -> tuple[list[ServiceStatus], Release | None, tuple[str, ...]]:
        """What runs, the release recorded last (None when nothing runs), and one drift line per difference."""
        rows = self.stages.target.status()
        releases = self.stages.history.releases() if rows else []
        release = releases[-1] if releases else None
        drifted = (drift(rows, release) if release else ()) + (self.stages.target.hand_edits() if rows else ())
        return rows, release, drifted

    def down(self, volumes: bool) -> tuple[str, ...]:
        with self.holding(create=False):
            return self.stages.target.down(volumes=volumes)

    def holding(self, create: bool = True) -> AbstractContextManager[object]:
        """The environment's lease, held by this command (user@host or the CI run, and the process id)."""
        return self.stages.lease.hold(f"{who()} (pid {os.getpid()})", create)

    def users(self) -> Users:
        """The environment's users for this deploy (smoke users kept from the last one): the local target keeps
        them in its state file now; on Kubernetes they are applied with the rendered objects."""
        users = wanted(self.environment, self.stages.users.read())
        if self.environment.target == "local":
            self.stages.users.write(users)
        return users

    def _up(self, layout: str, users: Users, action: str = "up") -> UpResult:
        if self.build is None:
            raise ConfigError("this runner has no build stage", "make it with compose.make_runner(options=...)")
        watch = Stopwatch()
        with watch.stage("build"):
            record = self.build(self.stages.history)
        self.say(f"version {record.version}")
        return self._deploy(layout, record, users, watch, action)

    def _rollback(self, release: Release, users: Users) -> UpResult:
        self.say(f"rolling back to version {release.version} ({release.layout}, recorded {release.time})")
        record = BuildRecord(version=release.version, commit=release.commit, images=release.images)
        return self._deploy(release.layout, record, users, Stopwatch(), action="rollback")

    def _deploy(self, layout: str, record: BuildRecord, users: Users, watch: Stopwatch, action: str = "up") -> UpResult:
        target = self.stages.target
        self.verify(record.images)  # refuses (exit 10) before anything is applied
        with watch.stage("render"):
            rendered = render(self.environment, layout, record.images, record.version, mysql_secret=self.mysql_secret)
        for note in rendered.notes:
            self.say(f"note: {note}")
        objects = self.applied(rendered.objects, users)
        with watch.stage("apply"):
            for line in summary(target.diff(objects)):  # what it changes, before it changes it
                self.say(line)
            applied = target.apply(objects)
        self.say(describe(applied))
        with watch.stage("wait"):
            target.wait(self.wait_timeout)
        url = target.gateway_url()
        with watch.stage("smoke"):
            report = self.smoke(users).run(url)
        result = UpResult(
            env_name=self.environment.name,
            layout=layout,
            version=record.version,
            commit=record.commit,
            images=record.images,
            url=url,
            applied=applied,
            smoke=report,
            durations=MappingProxyType(dict(watch.durations)),
            objects_hash=objects_hash(rendered.objects),
            action=action,
        )
        with watch.stage("record"):
            record_release(self.stages.history, result, self.say)
        return replace(result, durations=MappingProxyType(dict(watch.durations)))

    def _up_or_roll_back(self, layout: str, users: Users) -> UpResult:
        """Run `up`; when waiting or the smoke test fails, put back the newest recorded release and raise
        RolledBack (or RollbackFailed, naming both failures, when putting it back fails as well)."""
        previous = self.stages.history.releases()
        try:
            return self._up(layout, users)
        except (NotReadyError, SmokeError) as failure:
            if not previous:
                self.say("nothing recorded to roll back to")
                raise
            release = previous[-1]
            self.say(f"version failed ({type(failure).__name__}); rolling back to {release.version}")
            try:
                restored = self._rollback(release, users)
            except DeployError as rollback_failure:
                raise RollbackFailed(failure, release.version, rollback_failure) from rollback_failure
            raise RolledBack(failure, restored) from failure


def record_release(history: ReleaseHistory, result: UpResult, say: Say) -> None:
    """Record the release, unless nothing changed and the newest recorded release is this one: an `up` with
    nothing to do writes nothing at all."""
    release = result.release(by=who(), time=now())
    newest = history.releases()[-1:]
    same = newest and (newest[0].version, newest[0].objects_hash, newest[0].layout, newest[0].action) == (
        release.version,
        release.objects_hash,
        release.layout,
        release.action,
    )
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
