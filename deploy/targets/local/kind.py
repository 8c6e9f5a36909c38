"""The local target kind: containers on this machine's Docker Engine, the environment's records in files of its
state directory (stores.py); `dev` changes it in place (live.py)."""

from __future__ import annotations

from deploy.model.environments import Environment
from deploy.model.progress import Say
from deploy.model.releases import ReleaseHistory
from deploy.targets.kit import Connections, Kind, KitOptions, TargetKit
from deploy.targets.local.containers import default_state_dir
from deploy.targets.local.live import LocalLive
from deploy.targets.local.stores import FileHistory, FileIdentity, FileLease, FileUsers
from deploy.targets.local.target import LocalTarget


def history(environment: Environment, _connections: Connections, _say: Say) -> ReleaseHistory:
    """Read without the Docker Engine."""
    return FileHistory(default_state_dir(environment.name) / "releases.json")


def kit(environment: Environment, connections: Connections, say: Say, options: KitOptions) -> TargetKit:
    state, checkout = default_state_dir(environment.name), options.dev_checkout
    target = LocalTarget(connections.docker(), environment.name, say=say, host_paths=(checkout,) if checkout else ())
    return TargetKit(
        environment,
        target,
        history(environment, connections, say),
        FileLease(state / "lease.json", environment.name, say=say),
        FileUsers(state / "users.json"),
        FileIdentity(state / "identity.json", environment.name),
        in_place=LocalLive(target.engine, checkout) if checkout else None,
    )


KIND = Kind(kit, history)
