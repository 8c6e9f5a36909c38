"""Readiness on the local target: container states and HTTP probes, and a diagnosis when not ready."""

from __future__ import annotations

import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import docker
import httpx
from docker.models.containers import Container as DockerContainer

from deploy.model.errors import NotReadyError
from deploy.model.progress import Say, silent
from deploy.model.status import ServiceStatus
from deploy.targets.local import labels as L

EVENTS_SECONDS = 3600  # how far back the engine's events are asked for a restarted container's last exit


@dataclass(frozen=True)
class ContainerHealth:
    pod: str
    name: str
    image: str
    state: str  # running, exited, restarting, ...
    restarts: int
    exit_code: int
    probe: str  # "" when the readiness probe passes, else what it saw
    crashed: bool  # exited or restarted: waiting longer will not help
    container: str = ""  # the engine's name of the container

    @property
    def ready(self) -> bool:
        return self.state == "running" and not self.probe and not self.crashed

    @property
    def reason(self) -> str:
        if self.crashed:
            return f"{self.state}, exit code {self.exit_code}, {self.restarts} restarts"
        if self.state != "running":
            return self.state
        return self.probe


def probe_container(container: DockerContainer, http: httpx.Client) -> str:
    """'' when the readiness probe answers 2xx/3xx; otherwise what it saw."""
    spec = container.labels.get("k8sdeploy.io/readiness", "")
    if not spec:
        return ""
    kind, _, address = spec.partition(":")
    if kind == "tcp":
        try:
            socket.create_connection(("127.0.0.1", int(address)), timeout=2).close()
        except OSError as exc:
            return f"readiness probe tcp 127.0.0.1:{address}: {exc.strerror or type(exc).__name__}"
        return ""
    port, _, path = address.partition("/")
    url = f"http://127.0.0.1:{port}/{path}"
    try:
        answer = http.get(url)
    except httpx.HTTPError as exc:
        return f"readiness probe {url}: {type(exc).__name__}"
    if 200 <= answer.status_code < 400:
        return ""
    return f"readiness probe {url}: {answer.status_code} {answer.text[:120].strip()}"


class Health:
    """What the engine's containers of one environment are doing right now."""

    def __init__(self, client: docker.DockerClient, env_name: str, say: Say = silent):
        self.client = client
        self.env_name = env_name
        self.say = say

    def containers(self) -> list:
        found = self.client.containers.list(all=True, filters=L.selector(self.env_name, **{L.ROLE: "app"}))
        return sorted(found, key=lambda c: (c.labels.get(L.POD, ""), c.labels.get(L.CONTAINER, "")))

    def check(
        self, restarts: Mapping[str, int] | None = None, names: Collection[str] | None = None
    ) -> list[ContainerHealth]:
        """Each container (of the services `names`, by default all) now; one that restarted more often than
        `restarts` counted (container name -> count; by default never) crashed."""
        results = []
        with httpx.Client(timeout=2) as http:
            for container in self.containers():
                if names is not None and container.labels.get(L.CONTAINER) not in names:
                    continue
                container.reload()
                state = container.attrs["State"]
                count = container.attrs.get("RestartCount", 0)
                status = state.get("Status", "unknown")
                before = (restarts or {}).get(container.name or "", 0)
                crashed = status in ("exited", "dead") or count > before or state.get("Restarting", False)
                exit_code = state.get("ExitCode", 0)
                if crashed and count and status in ("running", "restarting"):  # started again: its code is 0
                    exit_code = self.last_exit(container, exit_code)
                results.append(
                    ContainerHealth(
                        pod=container.labels.get(L.POD, ""),
                        name=container.labels.get(L.CONTAINER, container.name),
                        image=container.labels.get(L.IMAGE, ""),
                        state=status,
                        restarts=count,
                        exit_code=exit_code,
                        probe=probe_container(container, http) if status == "running" else "",
                        crashed=crashed,
                        container=container.name or "",
                    )
                )
        return results

    def last_exit(self, container: DockerContainer, otherwise: int) -> int:
        """The exit code of a restarted container's last run, from the engine's `die` event of it (its state
        holds the running one's 0); `otherwise` when the engine kept none."""
        now = int(time.time()) + 1
        events = self.client.api.events(
            since=now - EVENTS_SECONDS, until=now, filters={"container": container.id, "event": "die"}, decode=True
        )
        codes = [event.get("Actor", {}).get("Attributes", {}).get("exitCode") for event in events]
        known = [int(code) for code in codes if code is not None and str(code).lstrip("-").isdigit()]
        return known[-1] if known else otherwise

    def status(self) -> list[ServiceStatus]:
        return [ServiceStatus(h.name, h.image, h.ready, "" if h.ready else h.reason) for h in self.check()]

    def last_lines(self, health: ContainerHealth, lines: int = 15, since: int | None = None) -> str:
        """The container's last log lines (since the time `since`, when given), indented."""
        logs = self.client.containers.get(health.container).logs(tail=lines, since=since)
        text = logs.decode(errors="replace").rstrip() or "(no output)"
        return "\n".join(f"    {line}" for line in text.splitlines())

    def diagnose(self, unhealthy: list[ContainerHealth], lines: int = 15) -> str:
        return "\n".join(
            f"{h.name} ({h.pod}): {h.reason}\n  last log lines:\n{self.last_lines(h, lines)}" for h in unhealthy
        )

    def settle(
        self,
        timeout: float,
        interval: float = 0.5,
        names: Collection[str] | None = None,
        restarts: Mapping[str, int] | None = None,
        all_of_them: bool = False,
    ) -> tuple[list[ContainerHealth], list[ContainerHealth]]:
        """Until the containers of `names` (default: all) are ready, one crashed (with `all_of_them`: until each
        is ready or crashed), or `timeout` passed: (those crashed, those still not ready). `restarts` as in
        check()."""
        deadline = time.monotonic() + timeout
        reported: set[str] = set()
        while True:
            results = self.check(restarts, names)
            if not results and names is None:
                raise NotReadyError(f"no containers of environment {self.env_name} are running", "run `k8sdeploy up`")
            for health in results:
                if health.ready and health.name not in reported:
                    reported.add(health.name)
                    self.say(f"{health.name} ready")
            crashed = [h for h in results if h.crashed]
            waiting = [h for h in results if not h.ready and not h.crashed]
            if (crashed and not all_of_them) or not waiting or time.monotonic() > deadline:
                return crashed, waiting
            time.sleep(interval)

    def wait(self, timeout: float, interval: float = 0.5) -> None:
        """Return when every container runs and passes its readiness probe; raise NotReadyError otherwise."""
        crashed, waiting = self.settle(timeout, interval)
        if crashed:
            raise NotReadyError(
                f"{', '.join(h.name for h in crashed)} crashed",
                "fix the cause shown below and run `k8sdeploy up` again",
                details=self.diagnose(crashed),
            )
        if waiting:
            raise NotReadyError(
                f"{', '.join(h.name for h in waiting)} not ready after {timeout:.0f}s",
                "see below; `k8sdeploy logs SERVICE` shows more",
                details=self.diagnose(waiting),
            )
