"""The Runner: `up`, `rollback` and `promote` ((build or copy,) render, apply, wait, smoke, record, each stage timed,
the outcome one frozen record), `status` and `down`; all but `status` hold the environment's lease."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import TypeVar

from deploy import identity as keys
from deploy.doctor import own_findings
from deploy.identity import Identity
from deploy.model import policy
from deploy.model.changes import Changes, ImagePlan, ObjectChange, summary
from deploy.model.doctor import Finding, failures, missing, passed
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, DeployError, ForbiddenError, NotReadyError, SmokeError
from deploy.model.images import IMAGE_NAMES, BuildRecord, PublishedImage
from deploy.model.progress import Say
from deploy.model.promotion import Promotion
from deploy.model.releases import Release, ReleaseHistory, choose, drift, now, objects_hash, who
from deploy.model.schemas import Schemas, pending
from deploy.model.status import ApplyResult, ServiceStatus
from deploy.model.version import Version
from deploy.render.layout import Layout
from deploy.render.objects import render
from deploy.schema_moves import Backup, backups, take_back
from deploy.smoke import HttpSmoke, Smoke, SmokeReport, reference_keys, smoke_host
from deploy.targets.kit import TargetKit
from deploy.tls import TlsMaterial
from deploy.users import Stored, Users, labels, wanted


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
    action: str = "up"  # up | rollback | dev | promote
    schemas: Schemas = field(default_factory=lambda: MappingProxyType({}))  # each service's migrations
    schema_changes: tuple[str, ...] = ()  # what a rollback did to the schemas, a line each
    promoted_from: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # a promote's source
    forced: str = ""  # a promote's gate it went past (--force)
    approved_by: str = ""

    @property
    def checks(self) -> tuple[str, ...]:
        """What it passed: ready (it is recorded only then), and the smoke login when that ran."""
        return ("ready", "smoke") if self.smoke is not None else ("ready",)

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
            schemas=self.schemas,
            schema_changes=self.schema_changes,
            checks=self.checks,
            promoted_from=self.promoted_from,
            forced=self.forced,
            approved_by=self.approved_by,
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


T = TypeVar("T")


def readable(read: Callable[[], T], otherwise: T) -> T:
    """What `read` answers, or `otherwise` where this identity may not read it."""
    try:
        return read()
    except ForbiddenError:
        return otherwise


@dataclass(frozen=True)
class Runner:
    """`up`, `rollback`, `status` and `down` of one environment. All but `status` hold the environment's lease;
    `up` and `rollback` keep its users and run the stages in order, timing each; `up`, `dev` and `rollback` are
    admitted by the deploy policy first (deploy/model/policy.py). Made by compose.make_runner()."""

    environment: Environment
    make_kit: Callable[[], TargetKit]  # made when first needed: after the policy, which asks no cluster or cloud
    say: Say
    smoke: Callable[[Users, Identity], Smoke]  # the smoke stage, as the environment's smoke users, reading its keys
    build: Callable[[ReleaseHistory], BuildRecord] | None = None  # the build stage of `up`
    preview: Callable[[], tuple[Version, tuple[ImagePlan, ...]]] | None = None  # `diff`'s: built, not published
    source_schemas: Callable[[], Schemas] | None = None  # `diff`'s: the migrations of the checkout
    # before anything is applied: the images against the environment's `verify` (compose.verified)
    verify: Callable[[Mapping[str, PublishedImage]], object] = lambda images: None
    wait_timeout: float = 180
    mysql_secret: str = ""  # $K8SDEPLOY_MYSQL_SECRET, read by compose.py
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)  # the TLS certificate, the signing key

    @cached_property
    def kit(self) -> TargetKit:
        """The environment's target and its records."""
        return self.make_kit()

    def admit(self, action: str, build_in_place: bool = False) -> None:
        """Refuse a deploy the environment's policy does not allow, before anything is asked or changed."""
        policy.admit(self.environment, action, self.say, build_in_place)

    def up(
        self, layout: str, rollback_on_failure: bool = False, build_in_place: bool = False
    ) -> tuple[UpResult, Users]:
        """Build, deploy `layout` and record the release; raises the failing stage's DeployError (with
        `rollback_on_failure`, after putting the newest recorded release back when waiting or smoke fails)."""
        self.admit("up", build_in_place)
        with self.holding(), ThreadPoolExecutor(1) as pool:
            users = pool.submit(self.users).result  # new logins are hashed (scrypt) while the images are built
            if not rollback_on_failure:
                return self._up(layout, users), users()
            return self._up_or_roll_back(layout, users), users()

    def promote(self, promotion: Promotion, copy: Callable[[Promotion, Sequence[str]], BuildRecord]) -> UpResult | None:
        """Deploy `promotion`'s release by digest: copied into this environment's registry and signed there (`copy`),
        verified, rendered for this environment, applied, waited for, smoke-tested, recorded with where it came
        from. None when the newest release here is that promotion already: nothing is copied or applied."""
        self.admit("promote")
        with self.holding():
            releases = self.kit.history.releases()
            newest = releases[-1:]
            if newest and dict(newest[0].promoted_from) == dict(promotion.promoted_from):
                self.say(
                    f"{self.environment.name} runs {promotion.release.version} of {promotion.source} already "
                    "(its newest release is that promotion); nothing to do"
                )
                return None
            users = self.users()
            self.ready_to_deploy("promote")
            self.kit.preflight()
            watch = Stopwatch()
            kept = [release.version for release in releases] + [promotion.release.version]
            with watch.stage("copy"):
                record = copy(promotion, kept)
            return self._deploy(self.environment.layout, record, users, watch, action="promote", promotion=promotion)

    def dev_up(self, layout: str) -> UpResult:
        """`up` for `dev`, whose caller holds the lease for its whole session and was admitted for it (make_dev):
        recorded as a dev release, which `rollback` never goes back to unless named."""
        return self._up(layout, self.users, action="dev")

    def dev_redeploy(self, result: UpResult, images: Mapping[str, PublishedImage]) -> UpResult:
        """`dev` on a cluster: the deployed `result` with `images` in place of its own, rendered as its version
        (so only the workloads of those images change), applied, waited for and recorded as a dev release."""
        record = BuildRecord(
            result.version, result.commit, MappingProxyType({**result.images, **images}), schemas=result.schemas
        )
        return self._deploy(result.layout, record, self.users(), Stopwatch(), action="dev")

    def applied(self, rendered: Sequence[dict], users: Users, identity: Identity | None = None) -> tuple[dict, ...]:
        """What apply gets: the rendered objects, the users' Secrets, the parts' identity keys (deploy/identity.py;
        by default those kept, not saved) and, for `dev` in place, the checkout bound in."""
        namespace, store = self.environment.namespace, self.kit.identity
        identity = identity or self.identity(save=False)
        objects = (
            *rendered,
            users.secret(namespace),
            users.smoke_secret(namespace),
            *identity.secrets(namespace),
            *store.objects(identity),
            *self.tls_secret(),
        )
        in_place = self.kit.in_place
        return objects if in_place is None else in_place.overlay(objects)

    def tls_secret(self) -> tuple[dict, ...]:
        """The gateway's TLS Secret, where the certificate is given to k8sdeploy (deploy/tls.py); else none (the
        environment's `tls_secret` is made by hand, or there is none)."""
        material = TlsMaterial.from_environ(self.environ) if self.environment.tls_secret else None
        if material is None:
            return ()
        env = self.environment
        return (material.secret(env.tls_secret, env.namespace, labels(env.name, "tls")),)

    def doctor(self, layout: str, purpose: str) -> tuple[Finding, ...]:
        """`doctor`: the environment's own checks and its kind's, against the objects `up` of `layout` would apply
        (rendered with stand-in image references: nothing is built); nothing is created or changed. A check that
        cannot ask what it needs (no credentials, say) is a failed finding too."""
        env, stand_in = self.environment, "sha256:" + "0" * 64
        images = {name: PublishedImage(f"{env.registry}/{name}", "doctor", stand_in) for name in IMAGE_NAMES}
        rendered = render(env, layout, MappingProxyType(images), "doctor", mysql_secret=self.mysql_secret)
        found = [passed("config", f"{env.target} environment, {layout} layout, {len(rendered.objects)} objects")]
        try:
            kit = self.kit
        except DeployError as exc:  # what needs the target says why it cannot be asked
            found.append(missing(type(exc).__name__.removesuffix("Error").lower() or "target", exc.message, exc.hint))
            failure = exc

            def unreachable(_name: str) -> bytes | None:
                raise failure

            return (*found, *own_findings(env, self.environ, purpose, unreachable))
        found += own_findings(env, self.environ, purpose, kit.tls_certificate)
        try:
            found += kit.doctor(rendered.objects, purpose)
        except DeployError as exc:
            found.append(missing(env.target, exc.message, exc.hint))
        return tuple(found)

    def ready_to_deploy(self, purpose: str) -> None:
        """Before anything is built, pushed or created: the environment's own checks (deploy/doctor.py) pass, or a
        ConfigError names the first that does not (and the others). The signing key is not among them: `--key`
        comes first, and an unsigned image is refused (exit 10) before anything is applied."""
        found = own_findings(self.environment, self.environ, purpose, self.kit.tls_certificate, signing=False)
        failed = failures(found)
        if failed:
            first, *others = failed
            raise ConfigError(
                f"environment {self.environment.name} is not ready to deploy: {first.message}",
                first.fix,
                details="\n".join(finding.line() for finding in others),
            )

    def identity(self, save: bool) -> Identity:
        """The environment's identity keys: those kept, or a first one (saved where the target keeps them apart)."""
        identity = keys.wanted(self.environment.name, self.kit.identity.read(), int(time.time()))
        if save:
            self.kit.identity.save(identity)
        return identity

    def rotate_keys(self) -> Identity:
        """A new identity key, applied with the release that runs: parts sign with it once all can have read it."""
        with self.holding(create=False):
            store, releases = self.kit.identity, self.kit.history.releases()
            current = store.read()
            if current is None or not releases:
                raise ConfigError(
                    f"environment {self.environment.name} has no deployment whose keys could be rotated",
                    f"run `k8sdeploy up --env {self.environment.name}` first (it makes the first key)",
                )
            rotated = current.rotated(int(time.time()), store.propagation_seconds)
            store.save(rotated)
            release = releases[-1]
            rendered = render(
                self.environment, release.layout, release.images, release.version, mysql_secret=self.mysql_secret
            )
            users = wanted(self.environment, self.kit.users.read())
            self.say(describe(self.kit.target.apply(self.applied(rendered.objects, users, rotated))))
            return rotated

    def objects_of(self, result: UpResult) -> tuple[dict, ...]:
        """The objects of a deployed result, rendered again (a template of the gateway changed under `dev`)."""
        rendered = render(
            self.environment, result.layout, result.images, result.version, mysql_secret=self.mysql_secret
        )
        return self.applied(rendered.objects, wanted(self.environment, self.kit.users.read()))

    def rollback(self, version: str | None, restore: bool = False) -> UpResult:
        """Put a recorded release back by its digests, nothing built; waited for, smoke-tested and recorded.
        `restore`: each database ahead of the release's schema gets back the copy kept before its migration."""
        self.admit("rollback")
        release = choose(self.kit.history.releases(), version)
        with self.holding():
            return self._rollback(release, self.users(), restore)

    def diff(self, layout: str) -> Changes:
        """What `up` of `layout` would change: the images built (not published) and asked after, the render
        compared by the target with what runs. Nothing is written, and the lease is not taken."""
        if self.preview is None:
            raise ConfigError("this runner has no preview stage", "make it with compose.make_runner(options=...)")
        version, plans = self.preview()
        images = MappingProxyType({plan.name: plan.image for plan in plans})
        rendered = render(self.environment, layout, images, version.version, mysql_secret=self.mysql_secret)
        # as `up` would keep them, not written; an identity that may not read Secrets (the preview's) makes them
        # anew, and the target names those Secrets as not compared
        users = wanted(self.environment, readable(self.kit.users.read, Stored()))
        identity = keys.wanted(self.environment.name, readable(self.kit.identity.read, None), int(time.time()))
        objects = self.kit.target.diff(self.applied(rendered.objects, users, identity))
        notes = rendered.notes + self.migrations_of_next_up()
        return Changes(self.environment.name, layout, version.version, plans, objects, notes)

    def migrations_of_next_up(self) -> tuple[str, ...]:
        """The migrations `up` of the checkout would run, after those of the release recorded last."""
        if self.source_schemas is None:
            return ()
        try:
            releases = self.kit.history.releases()
        except ForbiddenError:
            return ("the release history could not be read (no permission): migrations not compared",)
        if releases and not releases[-1].schemas:
            return (f"release {releases[-1].version} recorded no schema revisions: migrations not compared",)
        before = releases[-1].schemas if releases else MappingProxyType({})
        return tuple(pending(before, self.source_schemas()))

    def status(self) -> tuple[list[ServiceStatus], Release | None, tuple[str, ...]]:
        """What runs, the release recorded last (None when nothing runs), and one drift line per difference."""
        rows = self.kit.target.status()
        releases = self.kit.history.releases() if rows else []
        release = releases[-1] if releases else None
        drifted = (drift(rows, release) if release else ()) + (self.kit.target.hand_edits() if rows else ())
        return rows, release, drifted

    def backups(self) -> list[Backup]:
        """Each copy the running services kept before migrating, oldest first, with the release that migrated."""
        return backups(self.kit.target, self.kit.history.releases())

    def down(self, volumes: bool) -> tuple[str, ...]:
        with self.holding(create=False):
            return self.kit.target.down(volumes=volumes)

    def change_users(self, change: Callable[[Users], Users]) -> bool:
        """`user add` and `user remove`, under the lease: the kept users as `change` makes them; whether the
        services read them only at the next `up` (the local target's file) rather than now."""
        store = self.kit.users
        if not store.deployed:
            raise ConfigError(
                f"environment {self.environment.name} is not up",
                f"run `k8sdeploy up --env {self.environment.name}` first; its users live in its namespace",
            )
        with self.holding():
            store.write(change(wanted(self.environment, store.read())))
        return store.read_at_next_up

    def kept_users(self) -> Users:
        """The environment's users as the next `up` keeps them (nothing written)."""
        return wanted(self.environment, self.kit.users.read())

    def smoke_test(self, url: str | None = None) -> SmokeReport:
        """`smoke`: the smoke login at `url` (by default the deployed gateway's), whatever the environment's
        `smoke` says of `up`'s."""
        references = reference_keys(readable(self.kit.identity.read, None))  # none: hops told by status only
        smoke = HttpSmoke(
            say=self.say, users=self.kept_users().smoke, host=smoke_host(self.environment), references=references
        )
        return smoke.run(url or self.kit.target.gateway_url())

    def holding(self, create: bool = True) -> AbstractContextManager[object]:
        """The environment's lease, held by this command (user@host or the CI run, and the process id)."""
        return self.kit.lease.hold(f"{who()} (pid {os.getpid()})", create)

    def users(self) -> Users:
        """The environment's users for this deploy (smoke users kept from the last one): the local target keeps
        them in its state file now; on Kubernetes they are applied with the rendered objects."""
        users = wanted(self.environment, self.kit.users.read())
        if self.kit.users.read_at_next_up:
            self.kit.users.write(users)
        return users

    def _up(self, layout: str, users: Callable[[], Users], action: str = "up") -> UpResult:
        if self.build is None:
            raise ConfigError("this runner has no build stage", "make it with compose.make_runner(options=...)")
        watch = Stopwatch()
        self.ready_to_deploy("up")  # before anything is built, pushed or created
        self.kit.preflight()
        with watch.stage("build"):
            record = self.build(self.kit.history)
        self.say(f"version {record.version}")
        releases = self.kit.history.releases()
        if releases and releases[-1].schemas and record.schemas:  # what the services will migrate at start-up
            for line in pending(releases[-1].schemas, record.schemas):
                self.say(line)
        return self._deploy(layout, record, users(), watch, action, known=releases)

    def _rollback(self, release: Release, users: Users, restore: bool = False) -> UpResult:
        self.say(f"rolling back to version {release.version} ({release.layout}, recorded {release.time})")
        self.ready_to_deploy("rollback")  # nothing is built
        self.kit.preflight()
        changed = self.take_schemas_back(release, restore)
        record = BuildRecord(
            version=release.version, commit=release.commit, images=release.images, schemas=release.schemas
        )
        return self._deploy(release.layout, record, users, Stopwatch(), action="rollback", schema_changes=changed)

    def _deploy(
        self,
        layout: str,
        record: BuildRecord,
        users: Users,
        watch: Stopwatch,
        action: str = "up",
        schema_changes: tuple[str, ...] = (),
        promotion: Promotion | None = None,
        known: Sequence[Release] | None = None,
    ) -> UpResult:
        """`known`: the history as read since the lease was taken (no other command writes it while it is held)."""
        target = self.kit.target
        self.verify(record.images)  # refuses (exit 10) before anything is applied
        with watch.stage("render"):
            rendered = render(
                self.environment, layout, record.images, record.version, mysql_secret=self.mysql_secret, keep=True
            )
        for note in rendered.notes:
            self.say(f"note: {note}")
        identity = self.identity(save=True)
        objects = self.applied(rendered.objects, users, identity)
        with watch.stage("apply"):
            applied = self._apply(objects, rendered.layout)
        with watch.stage("wait"):
            target.wait(self.wait_timeout)
        url = target.gateway_url()
        with watch.stage("smoke"):
            unchanged = not applied.changed and promotion is None  # the history is read only then
            if unchanged and known is None:
                known = self.kit.history.releases()
            if unchanged and smoke_tested(known or (), record.version, objects_hash(rendered.objects), layout, action):
                self.say(f"nothing changed since release {record.version} passed its smoke login here; not run again "
                         "(`k8sdeploy smoke` runs it)")  # fmt: skip
                report = None
            else:
                report = self.smoke(users, identity).run(url)
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
            schemas=record.schemas,
            schema_changes=schema_changes,
            promoted_from=promotion.promoted_from if promotion else MappingProxyType({}),
            forced=promotion.forced if promotion else "",
            approved_by=promotion.approved_by if promotion else "",
        )
        with watch.stage("record"):
            record_release(self.kit.history, result, self.say, known)
        return replace(result, durations=MappingProxyType(dict(watch.durations)))

    def _apply(self, objects: Sequence[dict], layout: Layout) -> ApplyResult:
        """What the objects change, said before they are applied; then what applying them did."""
        changes = self.kit.target.diff(objects)
        for line in summary(changes):
            self.say(line)
        for line in data_going(layout, changes):
            self.say(f"note: {line}")
        applied = self.kit.target.apply(objects)
        self.say(describe(applied))
        return applied

    def take_schemas_back(self, release: Release, restore: bool = False) -> tuple[str, ...]:
        """Before the older release is applied: each database's schema within what its code works with
        (deploy/schema_moves.py)."""
        return take_back(self.kit.target, self.kit.history.releases(), release, self.say, restore)

    def _up_or_roll_back(self, layout: str, users: Callable[[], Users]) -> UpResult:
        """Run `up`; when waiting or the smoke test fails, put back the newest recorded release and raise
        RolledBack (or RollbackFailed, naming both failures, when putting it back fails as well)."""
        previous = self.kit.history.releases()
        try:
            return self._up(layout, users)
        except (NotReadyError, SmokeError) as failure:
            if not previous:  # the environment's first up: say so, rather than try a rollback
                raise NoEarlierRelease(failure) from failure
            release = previous[-1]
            self.say(f"version failed ({type(failure).__name__}); rolling back to {release.version}")
            try:
                restored = self._rollback(release, users())
            except DeployError as rollback_failure:
                raise RollbackFailed(failure, release.version, rollback_failure) from rollback_failure
            raise RolledBack(failure, restored) from failure


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
    release = result.release(by=who(), time=now())
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


def data_going(layout: Layout, changes: Sequence[ObjectChange]) -> list[str]:
    """One line per pod this up replaces whose services' data is on emptyDir (ephemeral_data): it goes with it."""
    found = []
    for change in changes:
        if change.kind not in ("Deployment", "Pod") or change.action not in ("update", "replace", "delete"):
            continue
        pod = next((pod for pod in layout.pods if pod.name == change.name), None)
        services = layout.ephemeral_data(pod) if pod else ()
        if services:
            names = ", ".join(services)
            found.append(f"{change.ref} is replaced and the data of {names} goes with it (ephemeral_data)")
    return found
