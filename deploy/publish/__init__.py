"""Publish built images under their immutable version tag: to a registry, or into the local Docker Engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from deploy.model.changes import ImagePlan
from deploy.model.images import PublishedImage

Taken = TypeVar("Taken", contravariant=True)  # the image type a publisher takes (deploy/builders/__init__.py)


class Publisher(Protocol[Taken]):
    def publish(
        self, images: Sequence[Taken], tag: str, channels: tuple[str, ...] = ()
    ) -> Mapping[str, PublishedImage]:
        """Each image under `tag` (immutable: the same digest is a no-op, another one is refused), then
        under each channel tag (moving, e.g. `develop`); the result is keyed by image name."""


class Planner(Protocol[Taken]):
    def plan(self, images: Sequence[Taken], tag: str) -> tuple[ImagePlan, ...]:
        """What publish() would do with each image under `tag`, asking only: pushed (how many bytes new) or
        there already; refused as publish() would refuse (a version tag holding another digest)."""
