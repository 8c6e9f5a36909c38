"""The verbs that change what runs and need no build: `promote` (a release of another environment through its
gates, copied in by digest) and `rollback` (a recorded release put back), and the deploy both end in: verify,
render, apply, wait, smoke, record, each stage timed. `up` and `dev`, which build first, are in building.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType

from deploy.model.changes import ObjectChange, summary
from deploy.model.environments import Environment
from deploy.model.images import BuildRecord
from deploy.model.promotion import Promotion, gate, route
from deploy.model.releases import Release, ReleaseHistory, choose, now, objects_hash, who
from deploy.model.status import ApplyResult
from deploy.render.layout import Layout
from deploy.runner.base import RunnerBase
from deploy.runner.result import Stopwatch, UpResult, describe, record_release, smoke_tested
from deploy.runner.rollout import rollout_line
from deploy.runner.stages import CopyStage
from deploy.schema_moves import take_back
from deploy.users import Users


@dataclass(frozen=True)
class Gates:
    """What `promote` was told of its gates: the version (the source's newest by default), --force past a failed
    gate (recorded), who approved it."""

    version: str | None = None
    force: bool = False
    approved_by: str = ""


class Deploys(RunnerBase):
    def promote_from(
        self,
        source: Environment,
        history: Callable[[], ReleaseHistory],
        copy: Callable[[], CopyStage],
        gates: Gates,
    ) -> tuple[Promotion, UpResult | None]:
        """`promote`: this environment's policy first (before either environment is asked anything), then the
        release of `source` (its `history`) through its gates, then deployed (`promote`) with the `copy` stage."""
        self.admit("promote")
        route(source, self.environment, gates.approved_by)
        releases = history().releases()
        when = datetime.now(UTC)
        promotion = gate(
            source, releases, self.environment, when, self.say, gates.version, gates.force, gates.approved_by
        )
        return promotion, self.promote(promotion, copy())

    def promote(self, promotion: Promotion, copy: CopyStage) -> UpResult | None:
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
            record = watch.timed("copy", lambda: copy(promotion, kept))
            return self._deploy(self.environment.layout, record, users, watch, action="promote", promotion=promotion)

    def rollback(self, version: str | None, restore: bool = False) -> UpResult:
        """Put a recorded release back by its digests, nothing built; waited for, smoke-tested and recorded.
        `restore`: each database ahead of the release's schema gets back the copy kept before its migration."""
        self.admit("rollback")
        release = choose(self.kit.history.releases(), version)
        with self.holding():
            return self._rollback(release, self.users(), restore)

    def _rollback(self, release: Release, users: Users, restore: bool = False) -> UpResult:
        self.say(f"rolling back to version {release.version} ({release.layout}, recorded {release.time})")
        self.ready_to_deploy("rollback")  # nothing is built
        self.kit.preflight()
        changed = self.take_schemas_back(release, restore)
        watch = Stopwatch()
        return self._deploy(release.layout, release.build, users, watch, action="rollback", schema_changes=changed)

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
            rendered = self.render(layout, record.images, record.version, keep=True)
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
        release = Release(
            version=record.version,
            commit=record.commit,
            images=record.images,
            layout=layout,
            objects_hash=objects_hash(rendered.objects),
            time=now(),
            by=who(),
            action=action,
            schemas=record.schemas,
            schema_changes=schema_changes,
            checks=("ready", "smoke") if report is not None else ("ready",),
            promoted_from=promotion.promoted_from if promotion else MappingProxyType({}),
            forced=promotion.forced if promotion else "",
            approved_by=promotion.approved_by if promotion else "",
        )
        result = UpResult(self.environment.name, release, url, applied, report, MappingProxyType(dict(watch.durations)))
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
        cost = rollout_line(layout, objects, self.environment.kind_table.IN_PLACE, changes)
        if cost:
            self.say(cost)
        applied = self.kit.target.apply(objects)
        self.say(describe(applied))
        return applied

    def take_schemas_back(self, release: Release, restore: bool = False) -> tuple[str, ...]:
        """Before the older release is applied: each database's schema within what its code works with
        (deploy/schema_moves.py)."""
        return take_back(self.kit.target, self.kit.history.releases(), release, self.say, restore)


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
