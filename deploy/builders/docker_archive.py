"""Put an image of the blob store into the local Docker Engine: a docker-archive written from the store and
loaded, or only tagged when the engine already has that image ID (the docker builder's bases, the engine
publisher's images)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import docker
import docker.errors

from deploy.builders.oci import OciImage

# Images in the local engine are k8sdeploy/NAME:VERSION. $K8SDEPLOY_LOCAL_PREFIX names another namespace: the tests
# take one per checkout, so two checkouts' test runs on one engine never meet on a version tag (tags are immutable).
LOCAL_PREFIX = os.environ.get("K8SDEPLOY_LOCAL_PREFIX") or "k8sdeploy"


def write_docker_archive(image: OciImage, repo_tags: Sequence[str], out: Path) -> None:
    """The `docker save` format that `docker load` reads: manifest.json, the config, the (gzipped) layers."""

    def blob_name(digest: str) -> str:
        return "blobs/sha256/" + digest.split(":", 1)[1]

    manifest = [
        {
            "Config": blob_name(image.config.digest),
            "RepoTags": list(repo_tags),
            "Layers": [blob_name(layer.digest) for layer in image.layers],
        }
    ]
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
