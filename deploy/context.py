"""One command's run context: its clients (one `Clients`), its progress and messages, and the facts of each
environment it works on, each resolved once (the kind, the registry's address, the Artifact Registry repository
and where signatures live). compose.py makes one per command; the stages (deploy/stages.py) take what they need
from it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from deploy.attest import same
from deploy.clients import Clients, artifact_repository
from deploy.model.environments import TARGET_KINDS, Environment
from deploy.model.progress import Progress, Say
from deploy.output import progress_for
from deploy.registry.client import RegistryAddress
from deploy.targets.kit import Kind

if TYPE_CHECKING:
    from deploy.model.googleapis import GoogleApis
    from deploy.registry.artifact_registry import ArtifactRepository


@dataclass(frozen=True, eq=False)
class Facts:
    """What one command knows of an environment, each asked once: its kind, the registry it pushes to (the
    environment's, or the one `build --registry` names), that registry's Artifact Registry repository (None for
    any other registry) and where its images' signatures go."""

    environment: Environment
    registry: str
    say: Say
    google: Callable[[], GoogleApis]  # the command's Google credentials and endpoints (Clients.google)

    @cached_property
    def kind(self) -> Kind:
        """The environment's target kind (its module loaded only when asked: the cloud libraries take a second)."""
        return importlib.import_module(TARGET_KINDS[self.environment.target]).KIND

    @cached_property
    def address(self) -> RegistryAddress | None:
        return RegistryAddress.parse(self.registry) if self.registry else None

    @cached_property
    def repository(self) -> ArtifactRepository | None:
        """The Artifact Registry repository the registry is; Google is asked only where it may be one."""
        if self.address is None:
            return None
        return artifact_repository(self.address, self.say, self.kind.registry_on_google, self.google)

    @cached_property
    def signatures(self) -> Callable[[str], str]:
        """Where an image's signatures go: beside it, or for an Artifact Registry repository (immutable tags,
        cleanup policies) in its sibling REPOSITORY-signatures (deploy/registry/artifact_registry.py)."""
        if self.repository is None:
            return same
        from deploy.registry.artifact_registry import signatures_home  # Google's libraries: only for their registry

        return signatures_home(self.repository.name)


@dataclass
class RunContext:
    """What one command runs with: `say` for its messages, one `Clients` (closed with the context), a progress
    display on stderr for each stage that has steps, and each environment's Facts."""

    say: Say
    clients: Clients = field(default_factory=Clients)
    _facts: dict[tuple[str, str], Facts] = field(default_factory=dict)

    def facts(self, environment: Environment, registry: str | None = None) -> Facts:
        """The environment's facts, for its own registry or `registry` (`build --registry`)."""
        registry = environment.registry if registry is None else registry
        key = (environment.name, registry)
        if key not in self._facts:
            self._facts[key] = Facts(environment, registry, self.say, self.clients.google)
        return self._facts[key]

    @contextmanager
    def progress(self) -> Iterator[Progress]:
        """A stage's progress display (a live line per image on a terminal), closed when the stage ends."""
        progress = progress_for()
        try:
            yield progress
        finally:
            progress.close()

    def close(self) -> None:
        self.clients.close()
