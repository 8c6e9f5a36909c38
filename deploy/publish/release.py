"""The release stage: move `latest` to a published version's six images, by digest — the only way `latest` moves.

`build` never moves it (its --channel takes only `develop`). Every image must already be published
under the version tag; nothing moves unless all six are there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deploy.model.errors import ConfigError, PublishError
from deploy.model.images import IMAGE_NAMES
from deploy.model.progress import Say, silent
from deploy.registry.client import RegistryAddress, RegistryClient

if TYPE_CHECKING:  # google's libraries load only where a repository is Artifact Registry
    from deploy.registry.artifact_registry import ArtifactRepository

LATEST = "latest"


@dataclass(frozen=True)
class Moved:
    name: str
    repository: str  # HOST/PATH/NAME
    digest: str  # what `latest` names now: the version's manifest
    previous: str | None  # what it named before (None: it did not exist)


def registry_of(address: RegistryAddress | None, env_name: str) -> RegistryAddress:
    """The environment's registry (as its run context parsed it), where `latest` moves; none is an error."""
    if address is None:
        raise ConfigError(
            f"environment {env_name} has no registry; `latest` is a tag in a registry",
            "release from an environment with `registry` set in k8sdeploy.toml",
        )
    return address


def release(
    address: RegistryAddress,
    client: RegistryClient,
    version: str,
    say: Say = silent,
    repository: ArtifactRepository | None = None,
) -> tuple[Moved, ...]:
    """`release`: point `latest` of each image at its `version` manifest; refuse before moving any if one is
    missing, or where tags are immutable (`repository`: the Artifact Registry repository of `address`)."""
    if repository is not None:
        repository.refuse_moving([LATEST])
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
        path = address.repository(name)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        previous = client.manifest_digest(path, LATEST)
        if previous != digest:
            client.put_manifest(path, LATEST, data, media_type)
            say(f"{name}: latest -> {version} ({digest[:19]})")
        else:
            say(f"{name}: latest already is {version}")
        moved.append(Moved(name, f"{address.host}/{path}", digest, previous))
    return tuple(moved)
