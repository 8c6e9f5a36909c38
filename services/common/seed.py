"""The users a deployment seeds, from the SEED_USERS setting (JSON, kept in a Secret by k8sdeploy): who may
log in is configuration of the deployment, never a password written into a migration.

SEED_USERS is a list of {"id": N, "email": "...", "password": "...", "role": "admin" | "user"}. At every
start, after the migrations, authentication makes each user exist with that password, and authorisation
gives each caller id its role. Users not in the list are left as they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .config import ConfigError

ROLES = ("admin", "user")


@dataclass(frozen=True)
class SeedUser:
    id: int
    email: str
    password: str
    role: str


def seed_users(env: dict[str, str] | None = None) -> tuple[SeedUser, ...]:
    raw = (os.environ if env is None else env).get("SEED_USERS", "")
    if not raw:
        return ()
    try:
        entries = json.loads(raw)
        users = tuple(
            SeedUser(int(e["id"]), str(e["email"]).strip().lower(), str(e["password"]), str(e["role"])) for e in entries
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"SEED_USERS is not a JSON list of id, email, password and role ({exc})") from None
    for user in users:
        if user.id < 1 or "@" not in user.email or not user.password or user.role not in ROLES:
            raise ConfigError(
                f"SEED_USERS: user {user.id} needs an id from 1, an email address, a password and "
                f"a role of {', '.join(ROLES)}"
            )
    if len({u.id for u in users}) != len(users) or len({u.email for u in users}) != len(users):
        raise ConfigError("SEED_USERS names an id or an email address twice")
    return users
