"""Build the six images from the source tree: the daemonless OCI builder (default) or the Docker Engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deploy.builders.bases import BaseImage
from deploy.builders.spec import ImageSpec
from deploy.model.version import Version


class Builder(Protocol):
    def build(self, spec: ImageSpec) -> Any:  # the image type belongs to the publisher paired with the builder
        """The image described by `spec`, ready for the publisher paired with this builder."""


@dataclass(frozen=True)
class Built:
    """The six images of one build (not yet published), and what they were built from."""

    version: Version
    images: Sequence[Any]  # the builder's images, in IMAGE_NAMES order
    bases: Mapping[str, BaseImage]  # by the reference the specs name
    lock: Path  # requirements/app.lock, installed into the dependencies layer
    builder: str = "oci"
