"""Publish OCI images to a registry: check tags, push blobs in parallel (mounting shared ones), then
manifests by digest, and the version tag last, so nothing is ever half-published under a tag."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from deploy.builders.oci import OciImage
from deploy.builders.store import OCI_MANIFEST, Blob
from deploy.model.changes import ImagePlan
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step
from deploy.registry.client import RegistryAddress, RegistryClient


class _BlobPusher:
    """Pushes each blob to each repository once; a blob already pushed elsewhere in the run is mounted."""

    def __init__(self, client: RegistryClient):
        self.client = client
        self._first: dict[str, Future[str]] = {}  # digest -> Future of the HOST/REPO that has it
        self._lock = threading.Lock()

    def push(self, repository: str, blob: Blob, image: OciImage) -> None:
        with self._lock:
            first = self._first.get(blob.digest)
            if first is None:
                self._first[blob.digest] = mine = Future[str]()
        if first is None:
            try:
                self._ensure(repository, blob, image, image.mount_from.get(blob.digest, ""))
                mine.set_result(f"{self.client.host}/{repository}")
            except BaseException as exc:
                mine.set_exception(exc)
                raise
        else:
            source = first.result()
            if source != f"{self.client.host}/{repository}":
                self._ensure(repository, blob, image, source)

    def _ensure(self, repository: str, blob: Blob, image: OciImage, source: str) -> None:
        if self.client.has_blob(repository, blob.digest):
            return
        source_host, _, source_repository = source.partition("/")  # source: HOST/REPO or ""
        if source_host == self.client.host and self.client.mount_blob(repository, blob.digest, source_repository):
            return
        self.client.upload_blob(repository, blob.digest, image.store.path(blob.digest), blob.size)


class RegistryPublisher:
    """Publisher for a registry, speaking the OCI distribution API through one RegistryClient."""

    def __init__(self, address: RegistryAddress, client: RegistryClient, *, workers: int = 4, step: Step = silent_step):
        self.address, self.client, self.workers, self.step = address, client, workers, step

    def publish(
        self, images: Sequence[OciImage], tag: str, channels: tuple[str, ...] = ()
    ) -> Mapping[str, PublishedImage]:
        self.client.check()
        pending = self.untagged(images, tag)
        self._push_blobs(pending)
        for image in pending:
            self.client.put_manifest(self._repository(image), image.digest, image.manifest, OCI_MANIFEST)
        for image in pending:  # last: the version tag appears only once everything it names is there
            self.client.put_manifest(self._repository(image), tag, image.manifest, OCI_MANIFEST)
            self.step(image.name, f"pushed {self._repository(image)}:{tag}")
        for channel in channels:
            self._move(images, channel)
        return {
            image.name: PublishedImage(f"{self.address.host}/{self._repository(image)}", tag, image.digest, image.size)
            for image in images
        }

    def plan(self, images: Sequence[OciImage], tag: str) -> tuple[ImagePlan, ...]:
        """What publish() would push, asking the registry only: an image already under `tag` is not pushed, the
        others bring the blobs their repository lacks (a blob shared by several counted once)."""
        self.client.check()
        pending = {image.name for image in self.untagged(images, tag)}
        counted: set[str] = set()
        plans = []
        for image in images:
            push = image.name in pending
            missing = (
                [b for b in image.blobs if not self.client.has_blob(self._repository(image), b.digest)] if push else []
            )
            new_layers = len({layer.digest for layer in image.layers} & {blob.digest for blob in missing})
            new_bytes = sum(blob.size for blob in missing if blob.digest not in counted)
            counted.update(blob.digest for blob in missing)
            published = PublishedImage(f"{self.address.host}/{self._repository(image)}", tag, image.digest, image.size)
            plans.append(ImagePlan(image.name, published, push, new_layers, new_bytes, str(self.address)))
        return tuple(plans)

    def _repository(self, image: OciImage) -> str:
        return self.address.repository(image.name)

    def untagged(self, images: Sequence[OciImage], tag: str) -> list[OciImage]:
        """The images not yet under `tag`; refused, before anything is pushed, if any tag holds another digest."""
        pending, conflicts = [], []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ask") as pool:  # the registry asked side by side
            found = list(pool.map(lambda image: self.client.manifest_digest(self._repository(image), tag), images))
        for image, existing in zip(images, found, strict=True):
            if existing is None:
                pending.append(image)
            elif existing != image.digest:
                conflicts.append(f"{image.name} is {existing} there, {image.digest} here")
            else:
                self.step(image.name, f"{tag} already published with this digest; nothing to push")
        if conflicts:
            raise PublishError(
                f"version {tag} already exists in {self.address} with other content ({'; '.join(conflicts)}); "
                "version tags are immutable, nothing was pushed",
                "commit the change so it gets a new version (or tag a new release); never overwrite a version",
            )
        return pending

    def _push_blobs(self, images: list[OciImage]) -> None:
        pusher = _BlobPusher(self.client)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="push") as pool:
            # Largest first, so that a shared layer is uploaded once and mounted by the images after it.
            jobs = sorted(((blob, image) for image in images for blob in image.blobs), key=lambda job: -job[0].size)
            futures = [pool.submit(pusher.push, self._repository(image), blob, image) for blob, image in jobs]
            for future in futures:
                future.result()

    def _move(self, images: Sequence[OciImage], channel: str) -> None:
        for image in images:
            if self.client.manifest_digest(self._repository(image), channel) != image.digest:
                self.client.put_manifest(self._repository(image), channel, image.manifest, OCI_MANIFEST)
                self.step(image.name, f"moved {channel}")
