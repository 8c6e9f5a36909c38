"""The keys that prove who calls whom inside an environment's suite, kept by k8sdeploy and rotated with an overlap.

Each environment has master keys (a key id, 32 random bytes, and the time from which parts sign with it). From
each master key every (issuer, audience) pair of deploy/model/suite.py's trust_pairs() gets a key of its own
(HMAC-SHA256 of the master over the pair's name), and each part gets a key file with only the pairs it signs or
receives (services/common/identity.py reads it), in the Secret k8sdeploy-identity-PART, mounted as a volume so that
a rotation reaches running pods without a restart. The master keys stay with k8sdeploy: the Secret
k8sdeploy-identity (never mounted) on Kubernetes targets, a 0600 file in the state directory on the local target.

`k8sdeploy keys rotate` adds a new master key that parts start to sign with once every part can have read it (the
target's propagation delay: at once on the local target, whose files are rewritten in place; after the kubelet's
sync on a cluster) and keeps the one before it, so tokens signed just before the switch still verify. Older keys
are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Protocol

from deploy.model.errors import ConfigError
from deploy.model.suite import GATEWAY, IDENTITY_FILE, SERVICES, identity_secret, trust_pairs
from deploy.render.layout import PART_OF

IDENTITY_SECRET = "k8sdeploy-identity"  # the master keys (Kubernetes targets); never mounted by a pod
IDENTITY_KEY = "identity.json"
KEPT = 2  # the newest key and the one before it
PARTS = (GATEWAY, *(service.name for service in SERVICES))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class MasterKey:
    kid: str
    secret: str  # base64url, 32 bytes
    not_before: int  # Unix seconds: parts sign with it from then on

    def pair_key(self, issuer: str, audience: str) -> str:
        raw = base64.urlsafe_b64decode(self.secret + "==")
        return b64(hmac.new(raw, f"k8sdeploy internal token {issuer}>{audience}".encode(), hashlib.sha256).digest())


def new_key(not_before: int) -> MasterKey:
    return MasterKey(kid=secrets.token_hex(4), secret=b64(secrets.token_bytes(32)), not_before=not_before)


@dataclass(frozen=True)
class Identity:
    """An environment's master keys, oldest first."""

    env_name: str
    keys: tuple[MasterKey, ...]

    def key_file(self, part: str) -> str:
        """`part`'s key file: one line per master key and pair that `part` signs or receives."""
        lines = [f"# k8sdeploy internal-token keys of {part}: KID NOT_BEFORE ISSUER>AUDIENCE KEY"]
        for key in self.keys:
            for issuer, audience in trust_pairs():
                if part in (issuer, audience):
                    lines.append(f"{key.kid} {key.not_before} {issuer}>{audience} {key.pair_key(issuer, audience)}")
        return "\n".join(lines) + "\n"

    def secrets(self, namespace: str) -> tuple[dict, ...]:
        """One Secret per part with its key file (labelled as the environment's: `down` removes them)."""
        return tuple(
            secret(namespace, self.env_name, identity_secret(part), "identity", {IDENTITY_FILE: self.key_file(part)})
            for part in PARTS
        )

    def master_secret(self, namespace: str) -> dict:
        return secret(namespace, self.env_name, IDENTITY_SECRET, "identity", {IDENTITY_KEY: self.document()})

    def document(self) -> str:
        return json.dumps([{"kid": k.kid, "secret": k.secret, "not_before": k.not_before} for k in self.keys])

    def rotated(self, now: int, delay: int) -> Identity:
        """A new key that parts sign with from `now + delay`, the newest before it kept for the overlap."""
        return Identity(self.env_name, (*self.keys[-(KEPT - 1) :], new_key(now + delay)))

    def describe(self, now: int) -> list[str]:
        lines = []
        for key in reversed(self.keys):
            state = "signing" if key == self.signing(now) else "verifying only"
            if key.not_before > now:
                state = f"signing in {key.not_before - now} s"
            lines.append(f"{key.kid}  {state}")
        return lines

    def signing(self, now: int) -> MasterKey | None:
        usable = [k for k in self.keys if k.not_before <= now]
        return max(usable, key=lambda k: k.not_before) if usable else None


def secret(namespace: str, env_name: str, name: str, component: str, data: dict[str, str]) -> dict:
    labels = {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": env_name,
        "app.kubernetes.io/managed-by": "k8sdeploy",
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def parse(env_name: str, document: str) -> Identity:
    try:
        keys = tuple(MasterKey(str(e["kid"]), str(e["secret"]), int(e["not_before"])) for e in json.loads(document))
    except (ValueError, TypeError, KeyError):
        keys = ()
    if not keys:
        raise ConfigError(
            f"the identity keys of environment {env_name} are unreadable",
            f"delete them (the Secret {IDENTITY_SECRET}, or identity.json locally) and run `k8sdeploy up` again",
        )
    return Identity(env_name, keys)


def from_secret(env_name: str, obj: dict | None) -> Identity | None:
    data = (obj or {}).get("data") or {}
    return parse(env_name, base64.b64decode(data[IDENTITY_KEY]).decode()) if IDENTITY_KEY in data else None


def wanted(env_name: str, existing: Identity | None, now: int) -> Identity:
    """The environment's keys for this deploy: those kept, or a first key, usable at once (no pod runs yet)."""
    return existing if existing is not None else Identity(env_name, (new_key(now),))


class IdentityStore(Protocol):
    """Where an environment's identity master keys are kept (targets/local/stores.py, targets/kube/identity.py)."""

    propagation_seconds: int  # how long after a rotation every running part has read the new key

    def read(self) -> Identity | None: ...

    def save(self, identity: Identity) -> None:
        """Keep them now (the local target's file); Kubernetes targets keep them with the deploy's objects."""

    def objects(self, identity: Identity) -> tuple[dict, ...]:
        """What the deploy applies to keep them (the Secret k8sdeploy-identity on Kubernetes targets)."""
