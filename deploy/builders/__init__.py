"""Build the six images from the source tree: the daemonless OCI builder (default) or the Docker Engine."""

from __future__ import annotations

from typing import Any, Protocol

from deploy.builders.spec import ImageSpec


class Builder(Protocol):
    def build(self, spec: ImageSpec) -> Any:  # the image type belongs to the publisher paired with the builder
        """The image described by `spec`, ready for the publisher paired with this builder."""
