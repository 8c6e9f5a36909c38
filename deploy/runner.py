"""`up` and `rollback`: (build,) render, apply, wait, smoke, record — each stage timed, the outcome one frozen record."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Callable, Iterator, Mapping, Sequence

from deploy.model.environments import Environment
from deploy.model.errors import DeployError, NotReadyError, SmokeError
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.releases import Release, ReleaseHistory, now, objects_hash, who
from deploy.render.objects import render
from deploy.smoke import Smoke, SmokeReport
from deploy.model.status import ApplyResult
from deploy.targets import Target

Say = Callable[[str], None]


@dataclass(frozen=True)
class UpResult:
    environment: str
    layout: str
    version: str
    commit: str
    images: Mapping[str, PublishedImage]
    url: str
    applied: ApplyResult
    smoke: SmokeReport | None
    durations: Mapping[str, float]  # seconds per stage
    objects_hash: str = ""  # of the rendered objects, as recorded in the release
    action: str = "up"  # up | rollback

    def release(self, by: str, time: str) -> Release:
        return Release(version=self.version, commit=self.commit, images=self.images, layout=self.layout,
                       objects_hash=self.objects_hash, time=time, by=by, action=self.action)


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
    parts = [f"{label} {', '.join(names)}" for label, names in
             (("created", applied.created), ("replaced", applied.replaced), ("removed", applied.removed),
              ("unchanged", applied.unchanged)) if names]
    return "; ".join(parts)


def up(environment: Environment, layout: str, *, build: Callable[[], BuildRecord], target: Target, smoke: Smoke,
       history: ReleaseHistory, say: Say, wait_timeout: float, mysql_secret: str = "",
       secrets: Sequence[dict] = ()) -> UpResult:
    """Deploy `layout` to `environment`'s target and record the release; raises the failing stage's DeployError.
    `secrets` are applied with the rendered objects but are not part of them (the users, deploy/users.py)."""
    watch = Stopwatch()
    with watch.stage("build"):
        record = build()
    say(f"version {record.version}")
    return deploy(environment, layout, record, target=target, smoke=smoke, history=history, say=say,
                  wait_timeout=wait_timeout, mysql_secret=mysql_secret, watch=watch, secrets=secrets)


def rollback(environment: Environment, release: Release, *, target: Target, smoke: Smoke, history: ReleaseHistory,
             say: Say, wait_timeout: float, mysql_secret: str = "", secrets: Sequence[dict] = ()) -> UpResult:
    """Put a recorded release back by its digests, nothing built; waited for, smoke-tested and recorded."""
    say(f"rolling back to version {release.version} ({release.layout}, recorded {release.time})")
    record = BuildRecord(version=release.version, commit=release.commit, images=release.images)
    return deploy(environment, release.layout, record, target=target, smoke=smoke, history=history, say=say,
                  wait_timeout=wait_timeout, mysql_secret=mysql_secret, watch=Stopwatch(), action="rollback",
                  secrets=secrets)


def deploy(environment: Environment, layout: str, record: BuildRecord, *, target: Target, smoke: Smoke,
           history: ReleaseHistory, say: Say, wait_timeout: float, mysql_secret: str, watch: Stopwatch,
           action: str = "up", secrets: Sequence[dict] = ()) -> UpResult:
    with watch.stage("render"):
        rendered = render(environment, layout, record.images, record.version, mysql_secret=mysql_secret)
    for note in rendered.notes:
        say(f"note: {note}")
    with watch.stage("apply"):
        applied = target.apply((*rendered.objects, *secrets))
    say(describe(applied))
    with watch.stage("wait"):
        target.wait(wait_timeout)
    url = target.gateway_url()
    with watch.stage("smoke"):
        report = smoke.run(url)
    result = UpResult(
        environment=environment.name, layout=layout, version=record.version, commit=record.commit,
        images=record.images, url=url, applied=applied, smoke=report,
        durations=MappingProxyType(dict(watch.durations)), objects_hash=objects_hash(rendered.objects),
        action=action,
    )
    with watch.stage("record"):
        record_release(history, result, say)
    return replace(result, durations=MappingProxyType(dict(watch.durations)))


def record_release(history: ReleaseHistory, result: UpResult, say: Say) -> None:
    """Record the release, unless nothing changed and the newest recorded release is this one: an `up` with
    nothing to do writes nothing at all."""
    release = result.release(by=who(), time=now())
    newest = history.releases()[-1:]
    same = newest and (newest[0].version, newest[0].objects_hash, newest[0].layout, newest[0].action) == (
        release.version, release.objects_hash, release.layout, release.action)
    if same and not result.applied.changed:
        say(f"release {release.version} is already the newest recorded; nothing to record")
        return
    history.record(release)


class RolledBack(DeployError):
    """`up --rollback-on-failure`: the new version failed and the previous one runs again; exits as the failure."""

    def __init__(self, failure: DeployError, restored: UpResult):
        super().__init__(f"{failure.message}; rolled back to version {restored.version}, which passed its checks",
                         hint=failure.hint, details=failure.details)
        self.exit_code = failure.exit_code
        self.restored = restored


class RollbackFailed(DeployError):
    """`up --rollback-on-failure`: the new version failed, and so did putting the previous one back.

    Both failures are named; the exit code is the first one's (why the deploy failed), and the
    details hold both diagnoses, since neither version may be serving now."""

    def __init__(self, failure: DeployError, version: str, rollback_failure: DeployError):
        super().__init__(f"{failure.message}; rolling back to version {version} failed too: {rollback_failure.message}",
                         hint="run `k8sdeploy status` to see what runs, then `k8sdeploy rollback --to VERSION` "
                              "or a fixed `up`",
                         details=f"the new version:\n{failure.details}\nthe rollback to {version}:\n"
                                 f"{rollback_failure.details}")
        self.exit_code = failure.exit_code


def up_or_roll_back(run_up: Callable[[], UpResult], history: ReleaseHistory,
                    run_rollback: Callable[[Release], UpResult], say: Say) -> UpResult:
    """Run `up`; when waiting or the smoke test fails, put back the newest recorded release and raise RolledBack
    (or RollbackFailed, naming both failures, when putting it back fails as well)."""
    previous = history.releases()
    try:
        return run_up()
    except (NotReadyError, SmokeError) as failure:
        if not previous:
            say("nothing recorded to roll back to")
            raise
        release = previous[-1]
        say(f"version failed ({type(failure).__name__}); rolling back to {release.version}")
        try:
            restored = run_rollback(release)
        except DeployError as rollback_failure:
            raise RollbackFailed(failure, release.version, rollback_failure) from rollback_failure
        raise RolledBack(failure, restored) from failure
