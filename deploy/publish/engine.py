"""Publish into the local Docker Engine, no registry: load each image (a docker-archive written from
the blob store) under its version tag, or just tag it when the engine already has that image ID."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker
import docker.errors

from deploy.builders.docker_archive import LOCAL_PREFIX, in_engine, load_into_engine
from deploy.builders.oci import OciImage
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step


class EnginePublisher:
    """Publisher for the local Docker Engine; the PublishedImage digest is the image ID."""

    def __init__(self, client: docker.DockerClient, prefix: str = LOCAL_PREFIX, step: Step = silent_step):
        self.client, self.prefix, self.step = client, prefix, step

    def publish(
        self, images: Sequence[OciImage], tag: str, channels: tuple[str, ...] = ()
    ) -> Mapping[str, PublishedImage]:
        for image in images:
            self._refuse_other(image, tag)
        published = {}
        for image in images:
            repository = f"{self.prefix}/{image.name}"
            loaded = not in_engine(self.client, image.config.digest)
            image_id = load_into_engine(self.client, image, [f"{repository}:{t}" for t in (tag, *channels)])
            self.step(image.name, f"{'loaded into' if loaded else 'already in'} the engine as {repository}:{tag}")
            published[image.name] = PublishedImage(repository, tag, image_id, image.size)
        return published

    def _refuse_other(self, image: OciImage, tag: str) -> None:
        ref = f"{self.prefix}/{image.name}:{tag}"
        try:
            existing = self.client.images.get(ref).id
        except docker.errors.ImageNotFound:
            return
        except docker.errors.DockerException as exc:
            raise PublishError(
                f"the Docker Engine did not answer ({exc})", "start it (scripts/ensure-dockerd.sh) or set DOCKER_HOST"
            ) from None
        if existing != image.config.digest:
            raise PublishError(
                f"{ref} is already image {existing} in the engine, and this build is "
                f"{image.config.digest}; version tags are immutable",
                f"commit the change so it gets a new version, or remove the old one: docker rmi {ref}",
            )
