"""`--builder docker`: the same image specs built by the Docker Engine from generated Dockerfiles, and
published with `docker push` (or kept in the engine) under the same immutable version tag."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import docker
import docker.errors

from ..errors import BuildError, PublishError
from ..images import PublishedImage
from ..publish.engine import LOCAL_PREFIX, load_into_engine
from ..publish.registry import RegistryAddress, RegistryClient
from .bases import BaseImage, BaseResolver
from .layers import build_layer
from .oci import OciImage
from .spec import ImageSpec
from .store import OCI_CONFIG, Blob, sha256_digest

Log = Callable[[str, str], None]


@dataclass(frozen=True)
class EngineImage:
    name: str
    image_id: str
    size: int


def dockerfile(spec: ImageSpec, base_tag: str, layer_files: Sequence[str]) -> str:
    """A Dockerfile equivalent to `spec`: each layer is ADDed from its reproducible tar (owners and modes kept)."""
    def pairs(items: Sequence[tuple[str, str]], quote_keys: bool) -> str:
        return " ".join(f"{json.dumps(key) if quote_keys else key}={json.dumps(value)}" for key, value in items)

    lines = [f"FROM {base_tag}", *(f"ADD {name} /" for name in layer_files)]
    lines += [f"ENV {pairs(spec.env, False)}"] if spec.env else []
    lines += [f"LABEL {pairs(spec.labels, True)}", f"EXPOSE {' '.join(str(port) for port in spec.ports)}",
              f"USER {spec.user}", f"WORKDIR {spec.workdir}", "ENTRYPOINT []", f"CMD {json.dumps(list(spec.cmd))}"]
    return "\n".join(lines) + "\n"


class DockerBuilder:
    """Builds through the engine (the classic builder, its layer cache included); no registry needed."""

    def __init__(self, client: docker.DockerClient, bases: BaseResolver, log: Log = lambda image, message: None):
        self.client, self.bases, self.log = client, bases, log

    def build(self, spec: ImageSpec) -> EngineImage:
        base_tag = self.base_in_engine(self.bases.resolve(spec.base))
        store = self.bases.store
        with tempfile.TemporaryDirectory(prefix="k8sdeploy-docker-") as context:
            names = []
            for index, layer_spec in enumerate(spec.layers):
                layer = build_layer(layer_spec, store)
                names.append(f"{index}-{layer_spec.name}.tar.gz")
                shutil.copyfile(store.path(layer.digest), Path(context) / names[-1])
            (Path(context) / "Dockerfile").write_text(dockerfile(spec, base_tag, names))
            self.log(spec.name, "docker build")
            try:
                image, _ = self.client.images.build(path=context, rm=True, forcerm=True, network_mode="host")
            except (docker.errors.BuildError, docker.errors.APIError) as exc:
                raise BuildError(f"docker build of {spec.name} failed: {exc}", "see the Docker Engine's log") from None
        return EngineImage(spec.name, image.id, image.attrs.get("Size", 0))

    def base_in_engine(self, base: BaseImage) -> str:
        config = Blob(sha256_digest(base.config), len(base.config), OCI_CONFIG)
        self.bases.store.put(base.config)
        tag = f"k8sdeploy-base:{config.digest.split(':')[1][:16]}"
        load_into_engine(self.client, OciImage("base", b"", config, base.layers, self.bases.store), [tag])
        return tag


class DockerPublisher:
    """Tags images in the engine and, for a registry, pushes them with the engine (`docker push`)."""

    def __init__(self, client: docker.DockerClient, address: RegistryAddress | None,
                 registry: Callable[[str], RegistryClient], log: Log = lambda image, message: None):
        self.client, self.address, self.registry, self.log = client, address, registry, log

    def publish(self, images: Sequence[EngineImage], tag: str, channels: tuple[str, ...] = ()) -> Mapping[str, PublishedImage]:
        existing = {image.name: self._existing(image, tag) for image in images}
        published = {}
        for image in images:
            repository, digest = self._repository(image), existing[image.name]
            for name in channels if digest else (tag, *channels):
                self.client.api.tag(image.image_id, repository, name)
                pushed = self._push(repository, name) if self.address is not None else image.image_id
                digest = pushed if name == tag else digest
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
            found = json.loads(client.get_manifest(repository, digest)[0])["config"]["digest"]
        if found != image.image_id:
            raise PublishError(f"{ref} already exists with image {found}, and this build of {image.name} is "
                               f"{image.image_id}; version tags are immutable",
                               "commit the change so it gets a new version; never overwrite a version")
        self.log(image.name, f"{tag} already published with this image; nothing to push")
        return digest or found

    def _push(self, repository: str, tag: str) -> str:
        self.log(repository.rsplit("/", 1)[-1], f"docker push {repository}:{tag}")
        digest = ""
        for event in self.client.images.push(repository, tag, stream=True, decode=True):
            if "error" in event:
                raise PublishError(f"docker push {repository}:{tag} failed: {event['error']}",
                                   "check the registry address and `docker login` for it")
            digest = event.get("aux", {}).get("Digest", digest)
        return digest
