"""Who may log in to an environment: the users k8sdeploy seeds through the Secret k8sdeploy-users, which holds
scrypt hashes only (the services read it as SEED_USERS at start-up: services/common/seed.py).

Every environment gets two smoke users (an admin and a viewer) whose random passwords are generated on its
first `up`; their clear passwords, which the smoke login needs, are kept apart in the Secret k8sdeploy-smoke that
no pod reads (local target: smoke-logins.json beside users.json, both 0600 files in its state directory). The
demo users (admin@test.com / admin, user@test.com / user) are added only where the environment enables them
(`demo_users`, by default on the local target only). `k8sdeploy user add` adds real users, hashing the password
before it is stored (the one it prints is the only clear copy); `user remove` takes one away. authentication gets
ids, addresses, hashes and roles, authorisation ids and roles only. Neither Secret is ever part of `render`'s
output.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deploy.model.cache import cache_home, write_json
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.suite import (
    DEMO_USERS,
    ROLES_KEY,
    SMOKE_KEY,
    SMOKE_SECRET,
    USERS_KEY,
    USERS_SECRET,
    Login,
    User,
)
from deploy.render.layout import PART_OF
from suitekit.emails import normalise_email
from suitekit.passwords import hash_password

SMOKE_ADMIN, SMOKE_USER = 3, 4  # ids of the smoke users (1 and 2 are the demo users')
FIRST_ADDED = 100  # ids of users added with `k8sdeploy user add` start here
ROLES = ("admin", "user")


@dataclass(frozen=True)
class Stored:
    """What an environment keeps: its users (hashes), and the clear passwords of its smoke users."""

    users: dict[int, User] = field(default_factory=dict)
    logins: dict[int, Login] = field(default_factory=dict)


def smoke_logins(stored: Stored) -> tuple[Login, Login]:
    """The environment's smoke users, with the passwords generated on its first `up`."""

    def one(user_id: int, email: str, role: str) -> Login:
        kept, user = stored.logins.get(user_id), stored.users.get(user_id)
        if kept is not None and kept.email == email and user is not None and user.email == email:
            return kept
        return Login(user_id, email, new_password(), role)

    return (
        one(SMOKE_ADMIN, "smoke-admin@k8sdeploy.invalid", "admin"),
        one(SMOKE_USER, "smoke-user@k8sdeploy.invalid", "user"),
    )


def new_password() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


MIN_PASSWORD_LENGTH = 12


def password_for(given: str | None) -> str:
    """The password of a user `user add` adds: the one given (refused when shorter than 12 characters), or, when
    none is given, a new one."""
    if given is None:
        return new_password()
    if len(given) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"the password is shorter than {MIN_PASSWORD_LENGTH} characters",
            "give a longer one, or leave out --password-stdin to have one generated",
        )
    return given


def labels(env_name: str, name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": env_name,
        "app.kubernetes.io/managed-by": "k8sdeploy",
    }


def secret(name: str, namespace: str, env_name: str, data: dict[str, str]) -> dict:
    """A Secret labelled as the environment's (so `down` removes it with everything else)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(env_name, name.removeprefix("k8sdeploy-"))},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


@dataclass(frozen=True)
class Users:
    env_name: str
    users: tuple[User, ...]
    logins: tuple[Login, ...] = ()  # the clear credentials k8sdeploy holds: demo and smoke users

    @property
    def smoke(self) -> tuple[Login, Login]:
        """Who the smoke login logs in as: the demo users where they exist (known anyway, and what a demo's
        visitor uses), else the smoke users."""
        by_id = {login.id: login for login in self.logins}
        demo = self.demo
        return (demo[0], demo[1]) if len(demo) == 2 else (by_id[SMOKE_ADMIN], by_id[SMOKE_USER])

    @property
    def demo(self) -> tuple[Login, ...]:
        return tuple(login for login in self.logins if login in DEMO_USERS)

    def document(self) -> str:
        """authentication's SEED_USERS: ids, addresses, hashes and roles."""
        return json.dumps([user.seed() for user in sorted(self.users, key=lambda u: u.id)])

    def roles_document(self) -> str:
        """authorisation's SEED_USERS: ids and roles only."""
        return json.dumps([user.role_seed() for user in sorted(self.users, key=lambda u: u.id)])

    def smoke_document(self) -> str:
        smoke = [login for login in self.logins if login.id in (SMOKE_ADMIN, SMOKE_USER)]
        return json.dumps([{"id": s.id, "email": s.email, "password": s.password, "role": s.role} for s in smoke])

    def secret(self, namespace: str) -> dict:
        """The Secret the services read: no clear password in it."""
        data = {USERS_KEY: self.document(), ROLES_KEY: self.roles_document()}
        return secret(USERS_SECRET, namespace, self.env_name, data)

    def smoke_secret(self, namespace: str) -> dict:
        """The smoke users' clear passwords, for k8sdeploy's smoke login only: no pod mounts or reads it."""
        return secret(SMOKE_SECRET, namespace, self.env_name, {SMOKE_KEY: self.smoke_document()})

    def add(self, email: str, role: str, password: str) -> Users:
        email = normalise_email(email)
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise ConfigError(f"{email!r} is not an email address", "give the address the user logs in with")
        if role not in ROLES:
            raise ConfigError(f"no role {role!r}", f"choose one of: {', '.join(ROLES)}")
        if any(user.email == email for user in self.users):
            raise ConfigError(f"{email} is already a user of environment {self.env_name}", "choose another address")
        next_id = max([FIRST_ADDED - 1, *(user.id for user in self.users)]) + 1
        return Users(self.env_name, (*self.users, User(next_id, email, hash_password(password), role)), self.logins)

    def remove(self, email: str) -> Users:
        email = normalise_email(email)
        found = [user for user in self.users if user.email == email]
        if not found:
            raise ConfigError(
                f"{email} is not a user of environment {self.env_name}", "see `k8sdeploy user list` for who is"
            )
        if found[0].id < FIRST_ADDED:
            raise ConfigError(
                f"{email} is one of the users environment {self.env_name} makes itself (demo or smoke)",
                "set demo_users = false to remove the demo users; the smoke users stay",
            )
        return Users(self.env_name, tuple(user for user in self.users if user.email != email), self.logins)

    def kind(self, user: User) -> str:
        if user.id >= FIRST_ADDED:
            return "added"
        return "demo" if any(login.id == user.id for login in DEMO_USERS) else "smoke"


def parse(document: str) -> dict[int, User]:
    """The users of the Secret's document. Entries with a clear password (as k8sdeploy kept them before it
    hashed) are hashed here, so the next write leaves no password in clear."""
    try:
        return {
            int(e["id"]): User(
                int(e["id"]), e["email"], e.get("password_hash") or hash_password(e["password"]), e["role"]
            )
            for e in json.loads(document)
        }
    except (ValueError, TypeError, KeyError):
        raise ConfigError(
            f"the Secret {USERS_SECRET} does not hold a list of users",
            "delete it (its users are lost) and run `k8sdeploy up` to make it again",
        ) from None


def parse_logins(document: str) -> dict[int, Login]:
    """The smoke users' clear passwords; from an older users document, the smoke users' entries in it."""
    try:
        entries = json.loads(document)
        return {
            int(e["id"]): Login(int(e["id"]), e["email"], e["password"], e["role"])
            for e in entries
            if "password" in e and int(e["id"]) in (SMOKE_ADMIN, SMOKE_USER)
        }
    except (ValueError, TypeError, KeyError):
        return {}  # new ones are generated


def from_secrets(users: dict | None, smoke: dict | None) -> Stored:
    def text(obj: dict | None, key: str) -> str | None:
        data = (obj or {}).get("data") or {}
        return base64.b64decode(data[key]).decode() if key in data else None

    document, logins = text(users, USERS_KEY), text(smoke, SMOKE_KEY)
    return Stored(
        parse(document) if document is not None else {},
        parse_logins(logins if logins is not None else document or "[]"),
    )


def wanted(environment: Environment, stored: Stored) -> Users:
    """The users the environment has after this `up`: its smoke users (generated once), the demo users where
    enabled, and every user added with `user add` (and not removed)."""
    demo = DEMO_USERS if environment.with_demo_users else ()
    smoke = smoke_logins(stored)
    added = tuple(user for user_id, user in sorted(stored.users.items()) if user_id >= FIRST_ADDED)
    logins = (*demo, *smoke)
    kept = [kept_hash(login, stored) or demo_hash(login) for login in logins]
    with ThreadPoolExecutor(len(logins)) as pool:  # scrypt lets go of the GIL: new logins are hashed side by side
        seeded = tuple(pool.map(Login.user, logins, kept))
    if demo and any(user is None for user in kept[: len(demo)]):
        keep_demo_hashes(seeded[: len(demo)])
    return Users(environment.name, (*seeded, *added), logins)


DEMO_HASHES = "demo-logins.json"  # in the cache: the demo users' hashes, whose passwords are public anyway


def demo_hash(login: Login) -> User | None:
    """A demo user's hash as made once on this machine (Login.user checks that it is k8sdeploy's for it)."""
    if login not in DEMO_USERS:
        return None
    try:
        found = json.loads((cache_home() / DEMO_HASHES).read_text()).get(login.email)
    except (OSError, ValueError, AttributeError):
        return None
    return User(login.id, login.email, found, login.role) if isinstance(found, str) else None


def keep_demo_hashes(users: tuple[User, ...]) -> None:
    """So that a first `up` elsewhere hashes only its new smoke users' passwords (scrypt, 0.2 s each)."""
    try:
        write_json(cache_home() / DEMO_HASHES, {user.email: user.password_hash for user in users})
    except OSError:
        pass  # a cache that cannot be written is only slower


def kept_hash(login: Login, stored: Stored) -> User | None:
    """The user kept under `login`'s id, when it was hashed from this password: a demo user's never changes, a
    smoke user's is the one kept with it (a smoke login generated anew is hashed anew)."""
    if login in DEMO_USERS or stored.logins.get(login.id) == login:
        return stored.users.get(login.id)
    return None


def private_write(path: Path, text: str) -> None:
    """Write `text` to `path` as a 0600 file, atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    temporary.replace(path)


class UsersStore(Protocol):
    """Where an environment's users are kept (targets/local/stores.FileUsers, targets/kube/users.KubeUsers)."""

    def read(self) -> Stored: ...

    def write(self, users: Users) -> None: ...

    # whether the services read these users at the next `up` (the local target's file), not at once from objects
    # applied with them (Kubernetes: the Secret, the pods replaced)
    read_at_next_up: bool

    @property
    def deployed(self) -> bool:
        """Whether the users can be written now (Kubernetes: the environment's namespace holds them)."""
