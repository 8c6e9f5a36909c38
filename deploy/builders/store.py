"""A content-addressed blob store on disk (like an OCI image layout) and the descriptors of what is in it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from deploy.model.cache import cache_home, write_json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def default_cache_dir() -> Path:
    """Where built layers, dependency trees and base images are kept between runs."""
    return cache_home()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    """The one serialisation of configs and manifests: same value, same bytes, same digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """A descriptor: what a manifest says about a config or a layer."""

    digest: str
    size: int
    media_type: str

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Layer(Blob):
    diff_id: str = ""  # digest of the uncompressed tar, as listed in the config's rootfs


class BlobStore:
    """Blobs by digest under ROOT/blobs/sha256/HEX; writes are atomic, so a blob present is complete."""

    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has(digest):
            with self.writer() as handle:
                handle.write(data)
                self.commit(handle, digest)
        return digest

    def adopt(self, other: BlobStore, digest: str) -> None:
        """Make a blob of another store present here: a hard link where possible, else a copy."""
        if self.has(digest) or other.root == self.root:
            return
        target = self.path(digest)
        try:
            os.link(other.path(digest), target)
        except FileExistsError:
            pass
        except OSError:
            with self.writer() as handle, other.path(digest).open("rb") as source:
                shutil.copyfileobj(source, handle)
                self.commit(handle, digest)

    @contextmanager
    def writer(self) -> Iterator[IO[bytes]]:
        """A temporary file in the store; `commit` it under its digest, or it is removed."""
        handle = tempfile.NamedTemporaryFile(dir=self.root, prefix=".incoming-", delete=False)
        try:
            yield handle
        finally:
            handle.close()
            Path(handle.name).unlink(missing_ok=True)

    def commit(self, handle: IO[bytes], digest: str) -> None:
        handle.flush()
        os.replace(handle.name, self.path(digest))

    def note(self, kind: str, key: str, value: dict | None = None) -> dict | None:
        """A small JSON memo beside the blobs (e.g. diff_id -> compressed layer); read if `value` is None."""
        path = self.root / kind / f"{key.replace(':', '-')}.json"
        if value is None:
            return json.loads(path.read_text()) if path.exists() else None
        write_json(path, value)
        return value
