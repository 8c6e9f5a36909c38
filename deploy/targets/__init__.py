"""Where rendered objects run: the local Docker Engine, GKE, or any kubeconfig context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from deploy.model.changes import ObjectChange
from deploy.model.status import ApplyResult, ServiceStatus


class Target(Protocol):
    """One deployment target; every method works on the objects of one environment only."""

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]: ...  # what apply would do; writes nothing

    def apply(self, objects: Sequence[dict]) -> ApplyResult: ...

    def wait(self, timeout: float) -> None: ...

    def status(self) -> list[ServiceStatus]: ...

    def gateway_url(self) -> str: ...

    def logs(self, service: str, lines: int = 50) -> str: ...

    # a one-off command in the running service's image, with its settings and volumes: (exit code, output)
    def run_in(self, service: str, command: Sequence[str]) -> tuple[int, str]: ...

    def hand_edits(self) -> tuple[str, ...]: ...  # one line per object changed outside k8sdeploy

    def down(self, volumes: bool = False) -> tuple[str, ...]: ...
