"""The release stage: move `latest` to a published version's six images, by digest — the only way `latest` moves.

`build` never moves it (its --channel takes only `develop`). Every image must already be published
under the version tag; nothing moves unless all six are there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from deploy.model.errors import ConfigError, PublishError
from deploy.model.images import IMAGE_NAMES
from deploy.model.progress import Say, silent
from deploy.registry.client import RegistryAddress, RegistryClient

LATEST = "latest"


@dataclass(frozen=True)
class Moved:
    name: str
    repository: str  # HOST/PATH/NAME
    digest: str  # what `latest` names now: the version's manifest
    previous: str | None  # what it named before (None: it did not exist)


def registry_of(environment_registry: str, env_name: str) -> RegistryAddress:
    if not environment_registry:
        raise ConfigError(
            f"environment {env_name} has no registry; `latest` is a tag in a registry",
            "release from an environment with `registry` set in k8sdeploy.toml",
        )
    return RegistryAddress.parse(environment_registry)


def move_latest(address: RegistryAddress, client: RegistryClient, version: str, say: Say = silent) -> tuple[Moved, ...]:
    """Point `latest` of each image at its `version` manifest; refuse before moving any if one is missing."""
    client.check()
    manifests, missing = {}, []
    for name in IMAGE_NAMES:
        found = client.get_manifest(address.repository(name), version)
        if found is None:
            missing.append(name)
        else:
            manifests[name] = found
    if missing:
        raise PublishError(
            f"version {version} is not published in {address} (missing: {', '.join(missing)}); latest was not moved",
            f"publish it first: `k8sdeploy build` on the commit tagged v{version}",
        )
    moved = []
    for name, (data, media_type) in manifests.items():
        repository = address.repository(name)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        previous = client.manifest_digest(repository, LATEST)
        if previous != digest:
            client.put_manifest(repository, LATEST, data, media_type)
            say(f"{name}: latest -> {version} ({digest[:19]})")
        else:
            say(f"{name}: latest already is {version}")
        moved.append(Moved(name, f"{address.host}/{repository}", digest, previous))
    return tuple(moved)
