"""Publish into the local Docker Engine, no registry: load each image (a docker-archive written from
the blob store) under its version tag, or just tag it when the engine already has that image ID."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker
import docker.errors

from deploy.builders.docker_archive import LOCAL_PREFIX, in_engine, load_into_engine
from deploy.builders.oci import OciImage
from deploy.model.changes import ImagePlan
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step

ENGINE = "the local Docker Engine"


class EnginePublisher:
    """Publisher for the local Docker Engine; the PublishedImage digest is the image ID."""

    def __init__(self, client: docker.DockerClient, prefix: str = LOCAL_PREFIX, step: Step = silent_step):
        self.client, self.prefix, self.step = client, prefix, step

    def publish(
        self, images: Sequence[OciImage], tag: str, channels: tuple[str, ...] = ()
    ) -> Mapping[str, PublishedImage]:
        for image in images:
            self.refuse_other(image, tag)
        published = {}
        for image in images:
            repository = f"{self.prefix}/{image.name}"
            loaded = not in_engine(self.client, image.config.digest)
            image_id = load_into_engine(self.client, image, [f"{repository}:{t}" for t in (tag, *channels)])
            self.step(image.name, f"{'loaded into' if loaded else 'already in'} the engine as {repository}:{tag}")
            published[image.name] = PublishedImage(repository, tag, image_id, image.size)
        return published

    def plan(self, images: Sequence[OciImage], tag: str) -> tuple[ImagePlan, ...]:
        """What publish() would load: an image the engine has (by its ID) is only tagged, the others are loaded
        whole; their new layers are those no image of the same repository in the engine has."""
        for image in images:
            self.refuse_other(image, tag)
        plans = []
        for image in images:
            load = not in_engine(self.client, image.config.digest)
            known = self.layers_of(f"{self.prefix}/{image.name}") if load else set()
            new_layers = sum(layer.diff_id not in known for layer in image.layers) if load else 0
            published = PublishedImage(f"{self.prefix}/{image.name}", tag, image.config.digest, image.size)
            plans.append(ImagePlan(image.name, published, load, new_layers, image.size if load else 0, ENGINE))
        return tuple(plans)

    def layers_of(self, repository: str) -> set[str]:
        """The diff IDs of every layer of the engine's images of `repository`."""
        found: set[str] = set()
        for engine_image in self.client.images.list(name=repository):
            found.update((engine_image.attrs.get("RootFS") or {}).get("Layers") or [])
        return found

    def refuse_other(self, image: OciImage, tag: str) -> None:
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
