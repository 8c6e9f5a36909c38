"""The users a deployment seeds, from the SEED_USERS setting (JSON, kept in a Secret by k8sdeploy): who may
log in is configuration of the deployment, never a password written into a migration, and never a password in
clear: k8sdeploy hashes it before it stores it.

For authentication SEED_USERS is a list of {"id": N, "email": "...", "password_hash": "scrypt$...", "role": ...};
for authorisation {"id": N, "role": "admin" | "user"} is enough (it gets nothing else). At every start, after the
migrations, authentication makes each user exist with that hash, and authorisation gives each caller id its role;
every user (or caller's role) not in the list is removed, since the suite has no users but seeded ones. With no
SEED_USERS at all, nothing is seeded and nothing removed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from suitekit.emails import normalise_email

from .config import ConfigError

ROLES = ("admin", "user")


@dataclass(frozen=True)
class SeedUser:
    id: int
    role: str
    email: str = ""  # "" where the service was given roles only
    password_hash: str = ""


def seed_users(env: dict[str, str] | None = None, credentials: bool = True) -> tuple[SeedUser, ...] | None:
    """The users of SEED_USERS (None when it is unset); `credentials`: each needs an email and a password hash."""
    raw = (os.environ if env is None else env).get("SEED_USERS")
    if raw is None or raw == "":
        return None
    try:
        entries = json.loads(raw)
        users = tuple(
            SeedUser(
                int(e["id"]),
                str(e["role"]),
                normalise_email(str(e["email"])) if credentials else "",
                str(e["password_hash"]) if credentials else "",
            )
            for e in entries
        )
    except (ValueError, TypeError, KeyError) as exc:
        wanted = "id, email, password_hash and role" if credentials else "id and role"
        raise ConfigError(f"SEED_USERS is not a JSON list of {wanted} ({exc})") from None
    for user in users:
        if user.id < 1 or user.role not in ROLES:
            raise ConfigError(f"SEED_USERS: user {user.id} needs an id from 1 and a role of {', '.join(ROLES)}")
        if credentials and ("@" not in user.email or not user.password_hash.startswith("scrypt$")):
            raise ConfigError(
                f"SEED_USERS: user {user.id} needs an email address and a password_hash (scrypt$...), never a "
                "password: `k8sdeploy user add` hashes it"
            )
    if len({u.id for u in users}) != len(users) or (credentials and len({u.email for u in users}) != len(users)):
        raise ConfigError("SEED_USERS names an id or an email address twice")
    return users
