"""`promote`'s copy: a recorded release's images from the source environment's registry to the target's, by digest.

Nothing is built and nothing goes through an engine: each image's manifest is read by digest, each blob it names
is skipped where the target has it, mounted from the source repository where both are one registry (the
distribution spec's cross-repository mount), else streamed from one to the other, and the manifest is put under
the same version tag. Its cosign signatures and attestations (`.sig`, `.att`) go along into the target's home for
signatures, beside whatever is there already: the source's evidence travels with the image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from deploy.attest import same
from deploy.attest.oci import Attachments
from deploy.builders.store import sha256_digest
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step
from deploy.registry.client import RegistryAddress, RegistryClient


@dataclass(frozen=True)
class Copied:
    images: Mapping[str, PublishedImage]  # as they are in the target's registry
    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    attachments_copied: int = 0  # .sig and .att manifests written

    def summary(self) -> str:
        return (
            f"{self.blobs_copied} blob(s) copied ({self.bytes_copied} bytes), {self.blobs_mounted} mounted, "
            f"{self.blobs_present} already there; {self.attachments_copied} signature/attestation manifest(s) written"
        )


def blobs_of(manifest: bytes, reference: str) -> list[dict]:
    """The config and layer descriptors of an image manifest (what k8sdeploy builds: one platform)."""
    try:
        document = json.loads(manifest)
        if "manifests" in document:
            raise PublishError(
                f"{reference} is an image index; promote copies single-platform images as k8sdeploy builds them",
                "build the images with k8sdeploy",
            )
        return [document["config"], *document["layers"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"{reference}: its manifest cannot be read ({exc})", "check the source registry") from None


class ImageCopier:
    def __init__(
        self,
        registry: Callable[[str], RegistryClient],
        target: RegistryAddress,
        step: Step = silent_step,
        source_home: Callable[[str], str] = same,
        target_home: Callable[[str], str] = same,
    ):
        self.registry, self.target, self.step = registry, target, step
        self.source_home, self.target_home = source_home, target_home
        self.placed: dict[str, str] = {}  # blob digest -> a target repository that has it (mounted from there)

    def copy(self, images: Mapping[str, PublishedImage]) -> Copied:
        counts = {"blobs_copied": 0, "bytes_copied": 0, "blobs_mounted": 0, "blobs_present": 0, "attachments": 0}
        copied = {name: self.copy_one(name, image, counts) for name, image in images.items()}
        return Copied(
            MappingProxyType(copied),
            counts["blobs_copied"],
            counts["bytes_copied"],
            counts["blobs_mounted"],
            counts["blobs_present"],
            counts["attachments"],
        )

    def copy_one(self, name: str, image: PublishedImage, counts: dict[str, int]) -> PublishedImage:
        source_host, _, source_repository = image.repository.partition("/")
        source, target = self.registry(source_host), self.registry(self.target.host)
        repository = self.target.repository(name)
        copy = PublishedImage(f"{self.target.host}/{repository}", image.tag, image.digest, image.size)
        if target.manifest_digest(repository, image.tag) == image.digest:
            self.step(name, f"{copy.ref} is there already")
        else:
            found = source.get_manifest(source_repository, image.digest)
            if found is None:
                raise PublishError(
                    f"{name}: {image.ref} is not in the source registry any more",
                    "promote a release whose images are still there (see `k8sdeploy history`)",
                )
            manifest, media_type = found
            if sha256_digest(manifest) != image.digest:
                raise PublishError(f"{name}: the source registry served {image.ref} with other content", "check it")
            for blob in blobs_of(manifest, image.ref):
                self.copy_blob(blob["digest"], source, source_repository, target, repository, counts)
            target.put_manifest(repository, image.tag, manifest, media_type)
            self.step(name, f"copied to {copy.ref}")
        counts["attachments"] += self.carry(image, copy)
        return copy

    def copy_blob(
        self,
        digest: str,
        source: RegistryClient,
        source_repository: str,
        target: RegistryClient,
        repository: str,
        counts: dict[str, int],
    ) -> None:
        placed = self.placed.get(digest)
        if target.has_blob(repository, digest):
            counts["blobs_present"] += 1
        elif placed is not None and target.mount_blob(repository, digest, placed):
            counts["blobs_mounted"] += 1  # a layer two images share: uploaded once, mounted into the other
        elif source.host == target.host and target.mount_blob(repository, digest, source_repository):
            counts["blobs_mounted"] += 1
        else:
            data = source.download_blob(source_repository, digest)
            if sha256_digest(data) != digest:
                raise PublishError(f"the source registry served blob {digest[:19]} with other content", "check it")
            target.upload_blob(repository, digest, data, len(data))
            counts["blobs_copied"] += 1
            counts["bytes_copied"] += len(data)
        self.placed.setdefault(digest, repository)

    def carry(self, image: PublishedImage, copy: PublishedImage) -> int:
        """The source's `.sig` and `.att` layers added to the copy's (none twice); how many manifests it wrote."""
        written = 0
        for suffix in ("sig", "att"):
            source_host, _, source_home = self.source_home(image.repository).partition("/")
            target_host, _, target_home = self.target_home(copy.repository).partition("/")
            theirs = Attachments(self.registry(source_host), source_home).layers(image.digest, suffix)
            home = Attachments(self.registry(target_host), target_home)
            ours = home.layers(image.digest, suffix)
            known = {layer.digest for layer in ours}
            added = [layer for layer in theirs if layer.digest not in known]
            if added:
                home.put(image.digest, suffix, [*ours, *added])
                written += 1
        return written
