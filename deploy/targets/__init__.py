"""Where rendered objects run: the local Docker Engine, GKE, or any kubeconfig context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class ApplyResult:
    created: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()  # deleted and created again (an immutable field changed)
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()  # changed in place (Kubernetes targets)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.replaced or self.removed or self.updated)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    image: str  # the reference it runs, repository:version@digest
    ready: bool
    reason: str = ""  # why not ready; empty when ready


class Target(Protocol):
    """One deployment target; every method works on the objects of one environment only."""

    def apply(self, objects: Sequence[dict]) -> ApplyResult: ...

    def wait(self, timeout: float) -> None: ...

    def status(self) -> list[ServiceStatus]: ...

    def gateway_url(self) -> str: ...

    def logs(self, service: str, lines: int = 50) -> str: ...

    def hand_edits(self) -> tuple[str, ...]: ...  # one line per object changed outside k8sdeploy

    def down(self, volumes: bool = False) -> tuple[str, ...]: ...
