"""The chores of an environment: what runs (`status`), the backups its services kept, `down`, its users, the
smoke login on demand, a new identity key, `doctor`'s checks. All but `status`, `doctor` and reading the users
hold the environment's lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import MappingProxyType

from deploy.doctor import own_findings
from deploy.identity import Identity
from deploy.model.doctor import Finding, missing, passed
from deploy.model.errors import ConfigError, DeployError
from deploy.model.images import IMAGE_NAMES, PublishedImage
from deploy.model.releases import Release, drift
from deploy.model.status import ServiceStatus
from deploy.render.objects import render
from deploy.runner.base import RunnerBase, readable
from deploy.runner.result import UpResult, describe
from deploy.schema_moves import Backup, backups
from deploy.smoke import HttpSmoke, SmokeReport, reference_keys, smoke_host
from deploy.users import Users, wanted


class Chores(RunnerBase):
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

    def smoke_test(self, url: str | None = None) -> SmokeReport:
        """`smoke`: the smoke login at `url` (by default the deployed gateway's), whatever the environment's
        `smoke` says of `up`'s."""
        references = reference_keys(readable(self.kit.identity.read, None))  # none: hops told by status only
        smoke = HttpSmoke(
            say=self.say, users=self.kept_users().smoke, host=smoke_host(self.environment), references=references
        )
        return smoke.run(url or self.kit.target.gateway_url())

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
            rendered = self.render(release.layout, release.images, release.version)
            users = wanted(self.environment, self.kit.users.read())
            self.say(describe(self.kit.target.apply(self.applied(rendered.objects, users, rotated))))
            return rotated

    def objects_of(self, result: UpResult) -> tuple[dict, ...]:
        """The objects of a deployed result, rendered again (a template of the gateway changed under `dev`)."""
        rendered = self.render(result.layout, result.images, result.version)
        return self.applied(rendered.objects, wanted(self.environment, self.kit.users.read()))

    def doctor(self, layout: str, purpose: str) -> tuple[Finding, ...]:
        """`doctor`: the environment's own checks and its kind's, against the objects `up` of `layout` would apply
        (rendered with stand-in image references: nothing is built); nothing is created or changed. A check that
        cannot ask what it needs (no credentials, say) is a failed finding too."""
        env, stand_in = self.environment, "sha256:" + "0" * 64
        images = {name: PublishedImage(f"{env.registry}/{name}", "doctor", stand_in) for name in IMAGE_NAMES}
        server = f"{env.registry}/mariadb:doctor@{stand_in}"  # the MySQL server's, when it is k8sdeploy's
        rendered = render(
            env, layout, MappingProxyType(images), "doctor", mysql_secret=self.mysql_secret, database_image=server
        )
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
