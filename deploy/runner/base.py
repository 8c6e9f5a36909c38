"""What every verb of a Runner shares: the environment, its kind's kit (made when first needed, after the deploy
policy), the lease, the users and identity keys applied beside the rendered objects, and the environment's own
checks before a deploy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

from deploy import identity as keys
from deploy.doctor import own_findings
from deploy.identity import Identity
from deploy.model import policy
from deploy.model.doctor import failures
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, ForbiddenError
from deploy.model.images import PublishedImage
from deploy.model.progress import Say
from deploy.model.releases import who
from deploy.render.objects import Rendered, render
from deploy.runner.stages import DatabaseImageStage, SmokeStage, VerifyStage, no_database_image, no_verify
from deploy.targets.kit import TargetKit
from deploy.tls import TlsMaterial
from deploy.users import Users, labels, wanted

T = TypeVar("T")


def readable(read: Callable[[], T], otherwise: T) -> T:
    """What `read` answers, or `otherwise` where this identity may not read it."""
    try:
        return read()
    except ForbiddenError:
        return otherwise


@dataclass(frozen=True)
class RunnerBase:
    """One environment's verbs share these; made by compose.make_runner()."""

    environment: Environment
    make_kit: Callable[[], TargetKit]  # made when first needed: after the policy, which asks no cluster or cloud
    say: Say
    smoke: SmokeStage
    # before anything is applied: the images against the environment's `verify` (deploy/stages.py verified)
    verify: VerifyStage = no_verify
    wait_timeout: float = 180
    mysql_secret: str = ""  # $K8SDEPLOY_MYSQL_SECRET, read by compose.py
    database_image: DatabaseImageStage = no_database_image  # the MySQL server's (deploy/stages.py)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)  # the TLS certificate, the signing key

    @cached_property
    def kit(self) -> TargetKit:
        """The environment's target and its records."""
        return self.make_kit()

    def render(
        self, layout: str, images: Mapping[str, PublishedImage], version: str, keep: bool = False, publish: bool = True
    ) -> Rendered:
        """The objects of `layout` for this environment, running `images` of `version`; with database = "mysql" in
        split-pods, its server's image made ready first (`publish=False`: only named, nothing pushed)."""
        server = self.database_image(layout, publish)
        return render(
            self.environment,
            layout,
            images,
            version,
            mysql_secret=self.mysql_secret,
            keep=keep,
            database_image=server,
        )

    def admit(self, action: str, build_in_place: bool = False) -> None:
        """Refuse a deploy the environment's policy does not allow, before anything is asked or changed."""
        policy.admit(self.environment, action, self.say, build_in_place)

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

    def kept_users(self) -> Users:
        """The environment's users as the next `up` keeps them (nothing written)."""
        return wanted(self.environment, self.kit.users.read())

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

    def identity(self, save: bool) -> Identity:
        """The environment's identity keys: those kept, or a first one (saved where the target keeps them apart)."""
        identity = keys.wanted(self.environment.name, self.kit.identity.read(), int(time.time()))
        if save:
            self.kit.identity.save(identity)
        return identity

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
