"""The local target: the Target protocol over LocalEngine (apply, down) and Health (wait, status)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import docker
from docker.models.containers import Container as DockerContainer

from deploy.model.changes import ObjectChange
from deploy.model.errors import DeployError
from deploy.model.progress import Say, silent
from deploy.model.status import ApplyResult, ServiceStatus
from deploy.model.suite import GATEWAY
from deploy.targets.local import labels as L
from deploy.targets.local.containers import LocalEngine
from deploy.targets.local.diff import LocalDiffer
from deploy.targets.local.health import Health


class NotDeployed(DeployError):
    pass


class LocalTarget:
    def __init__(
        self,
        client: docker.DockerClient,
        env_name: str,
        state_dir: Path | None = None,
        say: Say = silent,
        host_paths: Sequence[Path] = (),
    ):
        self.client = client
        self.env_name = env_name
        self.engine = LocalEngine(client, env_name, state_dir, say, host_paths=host_paths)
        self.health = Health(client, env_name, say)

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]:
        return LocalDiffer(self.engine).diff(objects)

    def apply(self, objects: Sequence[dict]) -> ApplyResult:
        return self.engine.apply(objects)

    def wait(self, timeout: float) -> None:
        self.health.wait(timeout)

    def status(self) -> list[ServiceStatus]:
        return self.health.status()

    def container(self, service: str) -> DockerContainer:
        found = self.engine.owned(**{L.CONTAINER: service, L.ROLE: "app"})
        if not found:
            known = sorted({c.labels[L.CONTAINER] for c in self.engine.owned(**{L.ROLE: "app"})})
            if not known:
                raise NotDeployed(f"nothing of environment {self.env_name} runs here", "run `k8sdeploy up`")
            raise NotDeployed(
                f"no service {service!r} in environment {self.env_name}", f"choose one of: {', '.join(known)}"
            )
        return found[0]

    def gateway_url(self) -> str:
        ports = self.container(GATEWAY).labels.get("k8sdeploy.io/ports", "")
        return f"http://127.0.0.1:{ports.split(',')[0]}"

    def logs(self, service: str, lines: int = 50) -> str:
        return self.container(service).logs(tail=lines).decode(errors="replace")

    def run_in(self, service: str, command: Sequence[str]) -> tuple[int, str]:
        """In the running container of `service`: its image, environment, user and volumes."""
        code, output = self.container(service).exec_run(list(command), demux=False)
        text = output.decode(errors="replace") if isinstance(output, bytes) else ""
        return (code if code is not None else -1), text

    def hand_edits(self) -> tuple[str, ...]:
        """None to find: a container cannot be edited in place; one replaced by hand runs another image
        (a drift line of its own) or no longer runs (not ready)."""
        return ()

    def down(self, volumes: bool = False) -> tuple[str, ...]:
        return self.engine.down(volumes)
