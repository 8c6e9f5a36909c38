"""Publish into the local Docker Engine, no registry: load each image (a docker-archive written from
the blob store) under its version tag, or just tag it when the engine already has that image ID."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import docker
import docker.errors

from ..build.oci import OciImage
from ..errors import PublishError
from ..images import PublishedImage

LOCAL_PREFIX = "k8sdeploy"  # images in the local engine are k8sdeploy/NAME:VERSION
Log = Callable[[str, str], None]


def write_docker_archive(image: OciImage, repo_tags: Sequence[str], out: Path) -> None:
    """The `docker save` format that `docker load` reads: manifest.json, the config, the (gzipped) layers."""
    def blob_name(digest: str) -> str:
        return "blobs/sha256/" + digest.split(":", 1)[1]

    manifest = [{"Config": blob_name(image.config.digest), "RepoTags": list(repo_tags),
                 "Layers": [blob_name(layer.digest) for layer in image.layers]}]
    data = json.dumps(manifest).encode()
    with tarfile.open(out, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, fileobj=io.BytesIO(data))
        for blob in dict.fromkeys((image.config, *image.layers)):
            tar.add(image.store.path(blob.digest), arcname=blob_name(blob.digest))


def in_engine(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


def load_into_engine(client: docker.DockerClient, image: OciImage, repo_tags: Sequence[str]) -> str:
    """Put `image` into the engine under `repo_tags`; returns its image ID. Loads nothing it already has."""
    image_id = image.config.digest  # the engine's image ID is the digest of the config
    if not in_engine(client, image_id):
        with tempfile.TemporaryDirectory(prefix="k8sdeploy-load-") as work:
            archive = Path(work) / "image.tar"
            write_docker_archive(image, repo_tags, archive)
            with archive.open("rb") as handle:
                client.images.load(handle)
    for ref in repo_tags:
        repository, _, tag = ref.rpartition(":")
        client.api.tag(image_id, repository, tag)
    return image_id


class EnginePublisher:
    """Publisher for the local Docker Engine; the PublishedImage digest is the image ID."""

    def __init__(self, client: docker.DockerClient, prefix: str = LOCAL_PREFIX, log: Log = lambda i, m: None):
        self.client, self.prefix, self.log = client, prefix, log

    def publish(self, images: Sequence[OciImage], tag: str, channels: tuple[str, ...] = ()) -> Mapping[str, PublishedImage]:
        for image in images:
            self._refuse_other(image, tag)
        published = {}
        for image in images:
            repository = f"{self.prefix}/{image.name}"
            loaded = not in_engine(self.client, image.config.digest)
            image_id = load_into_engine(self.client, image, [f"{repository}:{t}" for t in (tag, *channels)])
            self.log(image.name, f"{'loaded into' if loaded else 'already in'} the engine as {repository}:{tag}")
            published[image.name] = PublishedImage(repository, tag, image_id, image.size)
        return published

    def _refuse_other(self, image: OciImage, tag: str) -> None:
        ref = f"{self.prefix}/{image.name}:{tag}"
        try:
            existing = self.client.images.get(ref).id
        except docker.errors.ImageNotFound:
            return
        except docker.errors.DockerException as exc:
            raise PublishError(f"the Docker Engine did not answer ({exc})",
                               "start it (scripts/ensure-dockerd.sh) or set DOCKER_HOST") from None
        if existing != image.config.digest:
            raise PublishError(f"{ref} is already image {existing} in the engine, and this build is "
                               f"{image.config.digest}; version tags are immutable",
                               f"commit the change so it gets a new version, or remove the old one: docker rmi {ref}")
