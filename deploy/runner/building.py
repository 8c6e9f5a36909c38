"""The Runner, and the Runner with a build stage: `up` and `dev` build first, `diff` builds and publishes nothing.
compose.make_runner makes the one or the other (with BuildOptions); asking a Runner without a build stage for `up`
is a type error."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import MappingProxyType

from deploy import identity as keys
from deploy.model.changes import Changes
from deploy.model.errors import DeployError, ForbiddenError, NotReadyError, SmokeError
from deploy.model.images import PublishedImage
from deploy.model.schemas import pending
from deploy.runner.base import readable
from deploy.runner.chores import Chores
from deploy.runner.deploys import Deploys
from deploy.runner.result import NoEarlierRelease, RollbackFailed, RolledBack, Stopwatch, UpResult
from deploy.runner.rollout import rollout_line
from deploy.runner.stages import BuildStage, PreviewStage, SchemasStage
from deploy.users import Stored, Users, wanted


@dataclass(frozen=True)
class Runner(Deploys, Chores):
    """One environment's verbs: `promote` and `rollback` (deploy/runner/deploys.py), its chores
    (deploy/runner/chores.py). All but `status` hold the environment's lease; the deploys are admitted by the
    deploy policy first (deploy/model/policy.py) and run their stages in order, timing each."""


@dataclass(frozen=True, kw_only=True)
class BuildingRunner(Runner):
    """A Runner with a build stage, its preview and the checkout's migrations: `up`, `dev` and `diff` too."""

    build: BuildStage
    preview: PreviewStage
    source_schemas: SchemasStage

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

    def dev_up(self, layout: str) -> UpResult:
        """`up` for `dev`, whose caller holds the lease for its whole session and was admitted for it (make_dev):
        recorded as a dev release, which `rollback` never goes back to unless named."""
        return self._up(layout, self.users, action="dev")

    def dev_redeploy(self, result: UpResult, images: Mapping[str, PublishedImage]) -> UpResult:
        """`dev` on a cluster: the deployed `result` with `images` in place of its own, rendered as its version
        (so only the workloads of those images change), applied, waited for and recorded as a dev release."""
        record = replace(result.release.build, images=MappingProxyType({**result.images, **images}))
        return self._deploy(result.layout, record, self.users(), Stopwatch(), action="dev")

    def diff(self, layout: str) -> Changes:
        """What `up` of `layout` would change: the images built (not published) and asked after, the render
        compared by the target with what runs. Nothing is written, and the lease is not taken."""
        version, plans = self.preview()
        images = MappingProxyType({plan.name: plan.image for plan in plans})
        rendered = self.render(layout, images, version.version, publish=False)
        # as `up` would keep them, not written; an identity that may not read Secrets (the preview's) makes them
        # anew, and the target names those Secrets as not compared
        users = wanted(self.environment, readable(self.kit.users.read, Stored()))
        identity = keys.wanted(self.environment.name, readable(self.kit.identity.read, None), int(time.time()))
        applied = self.applied(rendered.objects, users, identity)
        objects = self.kit.target.diff(applied)
        cost = rollout_line(rendered.layout, applied, self.environment.kind_table.IN_PLACE, objects)
        notes = rendered.notes + self.migrations_of_next_up() + ((cost,) if cost else ())
        return Changes(self.environment.name, layout, version.version, plans, objects, notes)

    def migrations_of_next_up(self) -> tuple[str, ...]:
        """The migrations `up` of the checkout would run, after those of the release recorded last."""
        try:
            releases = self.kit.history.releases()
        except ForbiddenError:
            return ("the release history could not be read (no permission): migrations not compared",)
        if releases and not releases[-1].schemas:
            return (f"release {releases[-1].version} recorded no schema revisions: migrations not compared",)
        before = releases[-1].schemas if releases else MappingProxyType({})
        return tuple(pending(before, self.source_schemas()))

    def _up(self, layout: str, users: Callable[[], Users], action: str = "up") -> UpResult:
        watch = Stopwatch()
        self.ready_to_deploy("up")  # before anything is built, pushed or created
        self.kit.preflight()
        record = watch.timed("build", lambda: self.build(self.kit.history))
        self.say(f"version {record.version}")
        releases = self.kit.history.releases()
        if releases and releases[-1].schemas and record.schemas:  # what the services will migrate at start-up
            for line in pending(releases[-1].schemas, record.schemas):
                self.say(line)
        return self._deploy(layout, record, users(), watch, action, known=releases)

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
