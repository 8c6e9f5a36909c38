"""`--builder docker`: publish the engine's images with `docker push` (or keep them in the engine) under the
same immutable version tag."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import docker
import docker.errors

from deploy.builders.docker import EngineImage
from deploy.builders.docker_archive import LOCAL_PREFIX
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step
from deploy.registry.client import RegistryAddress, RegistryClient


class DockerPublisher:
    """Tags images in the engine and, for a registry, pushes them with the engine (`docker push`)."""

    def __init__(
        self,
        client: docker.DockerClient,
        address: RegistryAddress | None,
        registry: Callable[[str], RegistryClient],
        step: Step = silent_step,
    ):
        self.client, self.address, self.registry, self.step = client, address, registry, step

    def publish(
        self, images: Sequence[EngineImage], tag: str, channels: tuple[str, ...] = ()
    ) -> Mapping[str, PublishedImage]:
        existing = {image.name: self._existing(image, tag) for image in images}
        published = {}
        for image in images:
            repository, digest = self._repository(image), existing[image.name]
            for name in channels if digest else (tag, *channels):
                self.client.api.tag(image.image_id, repository, name)
                pushed = self._push(repository, name) if self.address is not None else image.image_id
                digest = pushed if name == tag else digest
            assert digest is not None  # pushed under `tag` above, or found there
            published[image.name] = PublishedImage(repository, tag, digest, image.size)
        return published

    def _repository(self, image: EngineImage) -> str:
        if self.address is None:
            return f"{LOCAL_PREFIX}/{image.name}"
        return f"{self.address.host}/{self.address.repository(image.name)}"

    def _existing(self, image: EngineImage, tag: str) -> str | None:
        """The digest already under `tag` when it is this very image; refused when it is another one."""
        ref = f"{self._repository(image)}:{tag}"
        if self.address is None:
            try:
                found_id, digest = self.client.images.get(ref).id, None
            except docker.errors.ImageNotFound:
                return None
            found = found_id
        else:
            client = self.registry(self.address.host)
            repository = self.address.repository(image.name)
            digest = client.manifest_digest(repository, tag)
            if digest is None:
                return None
            manifest = client.get_manifest(repository, digest)
            if manifest is None:  # deleted since the HEAD a moment ago: not there
                return None
            found = json.loads(manifest[0])["config"]["digest"]
        if found != image.image_id:
            raise PublishError(
                f"{ref} already exists with image {found}, and this build of {image.name} is "
                f"{image.image_id}; version tags are immutable",
                "commit the change so it gets a new version; never overwrite a version",
            )
        self.step(image.name, f"{tag} already published with this image; nothing to push")
        return digest or found

    def _push(self, repository: str, tag: str) -> str:
        self.step(repository.rsplit("/", 1)[-1], f"docker push {repository}:{tag}")
        digest = ""
        for event in self.client.images.push(repository, tag, stream=True, decode=True):
            if "error" in event:
                raise PublishError(
                    f"docker push {repository}:{tag} failed: {event['error']}",
                    "check the registry address and `docker login` for it",
                )
            digest = event.get("aux", {}).get("Digest", digest)
        return digest
