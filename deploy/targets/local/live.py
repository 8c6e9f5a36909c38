"""A running local environment changed in place for `dev` (kit.InPlace): the checkout bound into the containers,
a service's process started again in its own container (the container and its id kept), the gateway's files
written anew and nginx reloaded; each says what went wrong, read by the target's own health check."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx
from docker.models.containers import Container

from deploy.model.suite import GATEWAY, GATEWAY_COMMAND
from deploy.targets.local import labels as L
from deploy.targets.local.containers import LocalEngine
from deploy.targets.local.health import ContainerHealth, Health, probe_container
from deploy.targets.local.logs import LogFollower
from deploy.targets.local.mounts import DEVSERVER, with_sources
from deploy.targets.local.plan import plan

LOG_LINES = 15  # of a service that did not come back


class LocalLive:
    def __init__(self, engine: LocalEngine, checkout: Path, poll: float = 0.05):
        self.engine, self.checkout, self.poll = engine, checkout, poll
        self.health = Health(engine.client, engine.env_name)

    def overlay(self, objects: tuple[dict, ...]) -> tuple[dict, ...]:
        return with_sources(objects, self.checkout)

    def follow(self, names: Iterable[str], emit: Callable[[str, str], None]) -> LogFollower:
        return LogFollower(self.engine.client, self.engine.env_name, names, emit)

    def containers(self, name: str) -> list[Container]:
        return self.engine.owned(**{L.CONTAINER: name, L.ROLE: "app"})

    def restart(self, names: Iterable[str], timeout: float = 30) -> dict[str, str]:
        """Start each service's process again and wait for its readiness probe; name -> diagnosis of those
        that crashed or did not get ready (empty when all serve)."""
        names = sorted(names)
        started, restarts, signalled = int(time.time()), dict[str, int](), list[Container]()
        for name in names:
            for container in self.containers(name):
                container.reload()
                if container.status == "running" and DEVSERVER in (container.attrs["Config"].get("Cmd") or ()):
                    container.kill(signal="SIGHUP")  # a new child of the devserver: the libraries stay imported
                    signalled.append(container)
                else:
                    container.restart(timeout=1)  # crashed, or not under the devserver: the container starts again
                container.reload()
                restarts[container.name or ""] = container.attrs.get("RestartCount", 0)
        self.until_gone(signalled)
        return self.await_ready(names, timeout, started, restarts)

    def until_gone(self, containers: Sequence[Container], timeout: float = 0.5) -> None:
        """Until the signalled services' old processes stop answering, so that readiness is the new one's."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=0.2) as http:
            for container in containers:
                while not probe_container(container, http) and time.monotonic() < deadline:
                    time.sleep(0.01)

    def await_ready(self, names: Sequence[str], timeout: float, since: int, restarts: dict[str, int]) -> dict[str, str]:
        crashed, waiting = self.health.settle(timeout, self.poll, names, restarts, all_of_them=True)
        return {h.name: self.diagnosis(h, "crashed", since) for h in crashed} | {
            h.name: self.diagnosis(h, f"not ready after {timeout:g} s", since) for h in waiting
        }

    def diagnosis(self, health: ContainerHealth, what: str, since: int) -> str:
        return f"{what}; its last log lines:\n" + self.health.last_lines(health, LOG_LINES, since)

    def rewrite_files(self, objects: Sequence[dict]) -> list[str]:
        """Write the ConfigMap and Secret files of the planned pods that differ from what is mounted, in place (a
        file bound on its own keeps its inode); the keys written."""
        written = []
        for pod in plan(objects, self.engine.host_paths).pods:
            for volume in pod.volumes:
                if volume.kind != "files":
                    continue
                directory = self.engine.state_dir / "files" / pod.name / volume.name
                for key, content, _mode in volume.files:
                    path, data = directory / key, base64.b64decode(content)
                    if path.exists() and path.read_bytes() != data:
                        with path.open("r+b") as file:
                            file.truncate(0)
                            file.write(data)
                        written.append(key)
        return written

    def reload_gateway(self) -> str:
        """Check the gateway's configuration, then reload nginx (new workers read the Lua anew); '' when done,
        else what nginx said."""
        for container in self.containers(GATEWAY):
            for args in (("-t",), ("-s", "reload")):
                result = container.exec_run([*GATEWAY_COMMAND, *args], user=container.attrs["Config"].get("User", ""))
                if result.exit_code != 0:
                    said = result.output if isinstance(result.output, bytes) else b""
                    return said.decode(errors="replace").strip() or f"nginx exited {result.exit_code}"
        return ""
