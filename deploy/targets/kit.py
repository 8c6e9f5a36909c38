"""What a target kind gives the Runner: the one seam between the commands and where an environment runs.

Each kind is a package under deploy/targets/ whose `kind.py` holds `KIND`, a `Kind`; the kind's table in the
environment model names that module (deploy/model/kinds.py, TARGET_KINDS) and compose.py imports it by that name.
Nothing outside deploy/targets/ asks which kind an environment is (tests/deploy/test_target_seam.py): what differs
between kinds is a value here, or a method of the kind's table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from deploy.identity import IdentityStore
from deploy.model.doctor import Finding
from deploy.model.environments import Environment
from deploy.model.lease import Lease
from deploy.model.progress import Say
from deploy.model.releases import ReleaseHistory
from deploy.targets import Target
from deploy.users import UsersStore

if TYPE_CHECKING:
    import docker

    from deploy.model.googleapis import GoogleApis

Objects = tuple[dict, ...]


class Following(Protocol):
    """The services' logs followed while `dev` runs."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class InPlace(Protocol):
    """How `dev` changes a running environment without new images (the local target: the checkout is bound into
    the containers, a service's process is started again, the gateway reloaded)."""

    def overlay(self, objects: Objects) -> Objects: ...  # the rendered objects with the checkout bound in

    def restart(self, names: Iterable[str], timeout: float = 30) -> dict[str, str]: ...  # name -> what went wrong

    def rewrite_files(self, objects: Sequence[dict]) -> list[str]: ...  # the mounted files changed in place

    def reload_gateway(self) -> str: ...  # '' when nginx took its new configuration, else what it said

    def follow(self, names: Iterable[str], emit: Callable[[str, str], None]) -> Following: ...


@dataclass(frozen=True)
class TargetKit:
    """An environment's target and where that kind keeps the environment's records: its release history, lease,
    users and identity keys (files in the local target's state directory; objects in a Kubernetes namespace)."""

    environment: Environment
    target: Target
    history: ReleaseHistory
    lease: Lease
    users: UsersStore
    identity: IdentityStore
    # `dev`: the environment changed in place; None where a change is published as new images (needs a registry)
    in_place: InPlace | None = None
    # what a deploy checks before it builds or creates anything (gke: the network exists); raises a DeployError
    preflight: Callable[[], None] = lambda: None
    # `doctor`: the kind's read-only checks of what a deploy of these rendered objects needs (gke: the project's
    # APIs, permissions, quotas, node capacity, CI identities), asking and changing nothing else
    doctor: Callable[[Objects, str], Sequence[Finding]] = lambda objects, purpose: ()
    # a TLS Secret's certificate (PEM) by name, None when it is not there; None where the kind serves no TLS
    tls_certificate: Callable[[str], bytes | None] | None = None


class Connections(Protocol):
    """What the command's clients (deploy/clients.py Clients) give a kind, which makes the clients of its own API
    from them (kube: a kubeconfig context's; gke: GKE's and Compute's with the credentials)."""

    def docker(self) -> docker.DockerClient: ...

    def google(self) -> GoogleApis: ...


@dataclass(frozen=True)
class KitOptions:
    keep_cluster: bool = False  # gke `down`: the cluster stays
    dev_checkout: Path | None = None  # `dev`: the checkout whose files reach what runs


@dataclass(frozen=True)
class Kind:
    """One target kind: how to make an environment's kit, and what commands need before one exists."""

    kit: Callable[[Environment, Connections, Say, KitOptions], TargetKit]
    # the release history alone, where reading it needs less than the whole kit (the local file: no engine)
    history: Callable[[Environment, Connections, Say], ReleaseHistory] | None = None
    # its registry may be Artifact Registry under any host name, so Google is asked (gke has Google credentials)
    registry_on_google: bool = False
    own_cluster: bool = False  # it makes and deletes its cluster (gke): `down --keep-cluster` applies
