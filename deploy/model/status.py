"""What a target reports: the outcome of an apply, and the state of each service."""

from __future__ import annotations

from dataclasses import dataclass


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
