"""Build the six images from the source tree: the daemonless OCI builder (default) or the Docker Engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from deploy.builders.bases import BaseImage
from deploy.builders.spec import ImageSpec
from deploy.model.version import Version

# The one image type between a builder and the publishers that take it (ko's build.Result): the OCI builder's
# OciImage (manifest, config and layers in the blob store), which a registry or the Engine takes; the Docker
# builder's EngineImage (an image in the Engine), which `docker push` takes. deploy/publish/stage.py's ImageBuild
# holds a builder and a publisher of the same image type, so a pair that does not meet is a type error.
Image = TypeVar("Image")
Made = TypeVar("Made", covariant=True)


class Builder(Protocol[Made]):
    def build(self, spec: ImageSpec) -> Made:
        """The image described by `spec`, for any publisher that takes its type."""


@dataclass(frozen=True)
class Built(Generic[Image]):
    """The six images of one build (not yet published), and what they were built from."""

    version: Version
    images: Sequence[Image]  # the builder's images, in IMAGE_NAMES order
    bases: Mapping[str, BaseImage]  # by the reference the specs name
    lock: Path  # requirements/app.lock, installed into the dependencies layer
    builder: str = "oci"
