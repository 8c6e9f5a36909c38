"""The services' logs on one terminal while `dev` runs: a follower per container name, which finds the
container again after a restart or a replacement and goes on from there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import docker
from docker.errors import DockerException

from deploy.targets.local import labels as L

Emit = Callable[[str, str], None]  # (service, line)


class LogFollower:
    """Streams the logs of the environment's app containers named in `names` to `emit`, until stopped."""

    def __init__(self, client: docker.DockerClient, env_name: str, names: Iterable[str], emit: Emit):
        self.client, self.env_name, self.names, self.emit = client, env_name, tuple(names), emit
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for name in self.names:
            thread = threading.Thread(target=self.follow, args=(name,), name=f"logs-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopped.set()

    def follow(self, name: str) -> None:
        since = int(time.time())
        selector = L.selector(self.env_name, **{L.CONTAINER: name, L.ROLE: "app"})
        while not self.stopped.is_set():
            try:
                found = self.client.containers.list(filters=selector)
                if not found:
                    self.stopped.wait(0.2)
                    continue
                for chunk in found[0].logs(stream=True, follow=True, since=since):
                    for line in chunk.decode(errors="replace").splitlines():
                        self.emit(name, line)
                    if self.stopped.is_set():
                        return
                since = int(time.time())  # the stream ended: the container stopped, or was replaced
            except DockerException:
                self.stopped.wait(0.2)
