"""Who may log in to an environment: the users k8sdeploy seeds through the Secret k8sdeploy-users.

Every environment gets two smoke users (an admin and a viewer) whose random passwords are generated on its
first `up` and kept in that Secret, so the smoke login needs no known password. The demo users
(admin@test.com / admin, user@test.com / user) are added only where the environment enables them
(`demo_users`, by default on the local target only). `k8sdeploy user add` adds real users. The Secret
lives in the environment's namespace (local target: a 0600 file in its state directory) and is never
part of `render`'s output: the services read it as SEED_USERS at start-up (services/common/seed.py).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.suite import DEMO_USERS, USERS_KEY, USERS_SECRET, User
from deploy.render.layout import PART_OF

SMOKE_ADMIN, SMOKE_USER = 3, 4  # ids of the smoke users (1 and 2 are the demo users')
FIRST_ADDED = 100  # ids of users added with `k8sdeploy user add` start here
ROLES = ("admin", "user")


def smoke_users(existing: dict[int, User]) -> tuple[User, User]:
    """The environment's smoke users, with the passwords generated on its first `up`."""

    def one(user_id: int, email: str, role: str) -> User:
        kept = existing.get(user_id)
        return kept if kept is not None and kept.email == email else User(user_id, email, new_password(), role)

    return (
        one(SMOKE_ADMIN, "smoke-admin@k8sdeploy.invalid", "admin"),
        one(SMOKE_USER, "smoke-user@k8sdeploy.invalid", "user"),
    )


def new_password() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


@dataclass(frozen=True)
class Users:
    env_name: str
    users: tuple[User, ...]

    @property
    def smoke(self) -> tuple[User, User]:
        """Who the smoke login logs in as: the demo users where they exist (known anyway, and what a demo's
        visitor uses), else the smoke users."""
        by_id = {user.id: user for user in self.users}
        demo = self.demo
        return (demo[0], demo[1]) if len(demo) == 2 else (by_id[SMOKE_ADMIN], by_id[SMOKE_USER])

    @property
    def demo(self) -> tuple[User, ...]:
        return tuple(user for user in self.users if user in DEMO_USERS)

    def document(self) -> str:
        return json.dumps([user.seed() for user in sorted(self.users, key=lambda u: u.id)])

    def secret(self, namespace: str) -> dict:
        """The Secret object, labelled as the environment's (so `down` removes it with everything else)."""
        labels = {
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/name": "users",
            "app.kubernetes.io/instance": self.env_name,
            "app.kubernetes.io/managed-by": "k8sdeploy",
        }
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": USERS_SECRET, "namespace": namespace, "labels": labels},
            "data": {USERS_KEY: base64.b64encode(self.document().encode()).decode()},
        }

    def add(self, email: str, role: str, password: str) -> Users:
        email = email.strip().lower()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise ConfigError(f"{email!r} is not an email address", "give the address the user logs in with")
        if role not in ROLES:
            raise ConfigError(f"no role {role!r}", f"choose one of: {', '.join(ROLES)}")
        if any(user.email == email for user in self.users):
            raise ConfigError(f"{email} is already a user of environment {self.env_name}", "choose another address")
        next_id = max([FIRST_ADDED - 1, *(user.id for user in self.users)]) + 1
        return Users(self.env_name, (*self.users, User(next_id, email, password, role)))


def parse(document: str) -> dict[int, User]:
    try:
        return {int(e["id"]): User(int(e["id"]), e["email"], e["password"], e["role"]) for e in json.loads(document)}
    except (ValueError, TypeError, KeyError):
        raise ConfigError(
            f"the Secret {USERS_SECRET} does not hold a list of users",
            "delete it (its users are lost) and run `k8sdeploy up` to make it again",
        ) from None


def from_secret(obj: dict | None) -> dict[int, User]:
    data = (obj or {}).get("data") or {}
    return parse(base64.b64decode(data[USERS_KEY]).decode()) if USERS_KEY in data else {}


def wanted(environment: Environment, existing: dict[int, User]) -> Users:
    """The users the environment has after this `up`: its smoke users (generated once), the demo users where
    enabled, and every user added with `user add`."""
    demo = DEMO_USERS if environment.with_demo_users else ()
    added = tuple(user for user_id, user in sorted(existing.items()) if user_id >= FIRST_ADDED)
    return Users(environment.name, (*demo, *smoke_users(existing), *added))


class FileUsers:
    """The local target's users: a 0600 file in its state directory."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def deployed(self) -> bool:
        return True  # the file is made by the next `up`, which reads it

    def read(self) -> dict[int, User]:
        try:
            return parse(self.path.read_text())
        except FileNotFoundError:
            return {}

    def write(self, users: Users) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".new")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(users.document())
        temporary.replace(self.path)
