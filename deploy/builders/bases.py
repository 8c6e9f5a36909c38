"""Base images, pinned by digest: from a registry, or built here from Debian packages with debootstrap.

A base reference is one of
  HOST/REPO@sha256:...            an image in a registry (e.g. a python or openresty image you trust)
  debootstrap:NAME[@sha256:...]   built by k8sdeploy from Debian bookworm packages, cached on disk
`Environment.bases` maps an image name (`person`) or a base name (`python`, `nginx`) to a reference;
without one, an image uses `debootstrap:<its base name>`. The `mariadb` base is an image to run as it is (the MySQL
server of database = "mysql" without a mysql_image; deploy/builders/mariadb.py), not one to build upon.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from deploy.builders.layers import FileEntry, LayerSpec, build_layer
from deploy.builders.mariadb import PACKAGE as MARIADB_PACKAGE
from deploy.builders.mariadb import RUNTIME as MARIADB_RUNTIME
from deploy.builders.mariadb import finish_rootfs, recipe
from deploy.builders.store import (
    DOCKER_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    BlobStore,
    Layer,
    canonical_json,
)
from deploy.model.errors import BuildError, ConfigError
from deploy.model.progress import Step, silent_step
from deploy.registry.client import RegistryClient

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The archive's signing keys (Debian's debian-archive-keyring package): every Release file is checked against
# them, whatever the mirror, and one without a good signature stops the build (--force-check-gpg).
ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBIAN_PACKAGES = {
    "python": ("python3",),  # bookworm's Python 3.11: what requirements/app.lock is resolved for
    "nginx": ("nginx-light", "libnginx-mod-http-lua"),  # modules in /usr/lib/nginx/modules
    "mariadb": (MARIADB_PACKAGE,),  # MariaDB 10.11's server, and its start script (RUNNABLE)
}
TRIMMED = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "var/log",
)
DEFAULT_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
APP_USER = ("app:x:10001:10001:k8sdeploy:/nonexistent:/usr/sbin/nologin\n", "app:x:10001:\n")
LAYER_TYPES = {"application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_LAYER}


@dataclass(frozen=True)
class Runnable:
    """What a base that runs as it is adds: files baked into its root file system before its layer is made, and
    its config's Entrypoint, ExposedPorts and StopSignal."""

    finish: Callable[[Path], None]  # called with the trimmed root file system
    runtime: Mapping[str, object]  # merged into the config's "config"
    recipe: Callable[[], str]  # changes when what `finish` adds changes: the cached base is built again


RUNNABLE = {"mariadb": Runnable(finish_rootfs, MARIADB_RUNTIME, recipe)}


@dataclass(frozen=True)
class BaseImage:
    """A base: its config (JSON bytes) and layers, all present in the build's blob store."""

    reference: str
    config: bytes
    layers: tuple[Layer, ...]
    mount_from: str = ""  # HOST/REPO the layers can be mounted from, for a registry base
    digest: str = ""  # of its manifest

    @property
    def config_json(self) -> dict:
        return json.loads(self.config)


def base_reference(image: str, base_name: str, bases: Mapping[str, str]) -> str:
    return bases.get(image) or bases.get(base_name) or f"debootstrap:{base_name}"


@dataclass
class BaseResolver:
    """Finds (and, for debootstrap bases, builds once) the base images a build needs."""

    store: BlobStore
    cache_dir: Path
    registry: Callable[[str], RegistryClient]  # host -> client, from the composition root
    mirror: str = field(default_factory=lambda: os.environ.get("K8SDEPLOY_DEBIAN_MIRROR", DEFAULT_MIRROR))
    step: Step = silent_step  # called with the subject "bases"
    # one lock per Debian base: two builds of one base wait for each other (threads here, and other processes
    # by a file lock: two environments built at once, parallel tests), the python and nginx bases are
    # debootstrapped side by side (each a minute or more, mostly waiting for the mirror)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, reference: str) -> BaseImage:
        name, _, pinned = reference.partition("@")
        if name.startswith("debootstrap:"):
            return self._debian(name.removeprefix("debootstrap:"), pinned, reference)
        if not pinned.startswith("sha256:"):
            raise ConfigError(
                f"base image {reference!r} is not pinned by digest",
                "write it as HOST/REPO@sha256:... (e.g. from `docker inspect` RepoDigests)",
            )
        return self._pull(name, pinned, reference)

    def _debian(self, name: str, pinned: str, reference: str) -> BaseImage:
        if name not in DEBIAN_PACKAGES:
            raise ConfigError(f"no Debian base named {name!r}", f"use one of: {', '.join(DEBIAN_PACKAGES)}")
        bases = BlobStore(self.cache_dir / "bases")
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        runnable = RUNNABLE.get(name)
        key = f"{name}-{runnable.recipe()}" if runnable else name  # python, nginx: as ever
        with lock, _process_lock(self.cache_dir / f".base-{name}.lock"):
            note = bases.note("built", key)
            if note is None or not bases.has(note["manifest"]):
                note = {"manifest": self._debootstrap(name, bases)}
                bases.note("built", key, note)
        if pinned and note["manifest"] != pinned:
            raise BuildError(
                f"base {reference} is pinned, but the one built here is {note['manifest']}",
                "pin the digest built here, or point the base at a registry image with that digest",
            )
        return self._from_store(bases, note["manifest"], reference)

    def _from_store(self, source: BlobStore, manifest_digest: str, reference: str, mount_from: str = "") -> BaseImage:
        manifest = json.loads(source.read(manifest_digest))
        config = source.read(manifest["config"]["digest"])
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        if len(manifest["layers"]) != len(diff_ids):
            raise BuildError(
                f"base {reference} is malformed: its manifest lists {len(manifest['layers'])} layers, "
                f"its config {len(diff_ids)}",
                "point the base at a well-formed image",
            )
        layers = []
        for descriptor, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            self.store.adopt(source, descriptor["digest"])
            media_type = LAYER_TYPES.get(descriptor["mediaType"], descriptor["mediaType"])
            layers.append(Layer(descriptor["digest"], descriptor["size"], media_type, diff_id))
        return BaseImage(reference, config, tuple(layers), mount_from, manifest_digest)

    def _debootstrap(self, name: str, bases: BlobStore) -> str:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            raise BuildError(
                f"cannot build the Debian base {name!r}: debootstrap needs root and the debootstrap package",
                "run as root after `make system-deps`, or set a registry base in the environment's bases",
            )
        if not ARCHIVE_KEYRING.is_file():
            raise BuildError(
                f"cannot check the Debian archive's signatures: {ARCHIVE_KEYRING} is missing",
                "install the debian-archive-keyring package (`make system-deps`)",
            )
        packages, runnable = DEBIAN_PACKAGES[name], RUNNABLE.get(name)
        self.step("bases", f"building base {name} from Debian {SUITE} ({', '.join(packages)}); once, about a minute")
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".rootfs-") as work:
            rootfs = Path(work) / "rootfs"
            command = self._run_debootstrap(name, packages, rootfs)
            _trim(rootfs)
            if runnable:
                runnable.finish(rootfs)
            layer = build_layer(LayerSpec(f"debian-{name}", tuple(rootfs_entries(rootfs)), int(time.time())), bases)
        runtime = dict(runnable.runtime) if runnable else {}
        digest = _store_image(bases, layer, {**runtime, "Env": list(DEFAULT_ENV)}, " ".join(command[:-2]))
        self.step("bases", f"base {name} is debootstrap:{name}@{digest}")
        return digest

    def _run_debootstrap(self, name: str, packages: tuple[str, ...], rootfs: Path) -> list[str]:
        """The root file system of `packages` (checked against the archive's keys); returns the command run."""
        command = [
            "debootstrap",
            f"--keyring={ARCHIVE_KEYRING}",
            "--force-check-gpg",
            "--variant=minbase",
            f"--include={','.join(packages)}",
            SUITE,
            str(rootfs),
            self.mirror,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join(result.stdout.strip().splitlines()[-5:])
            raise BuildError(
                f"debootstrap of base {name!r} failed:\n{tail}",
                f"check that {self.mirror} is reachable (K8SDEPLOY_DEBIAN_MIRROR)",
            )
        return command

    def _pull(self, name: str, digest: str, reference: str) -> BaseImage:
        host, _, repository = name.partition("/")
        if not repository or "." not in host and ":" not in host and host != "localhost":
            host, repository = "registry-1.docker.io", name if "/" in name else f"library/{name}"
        repository = repository.rsplit(":", 1)[0] if ":" in repository.split("/")[-1] else repository
        client = self.registry(host)
        manifest_digest = self._manifest_for_amd64(client, repository, digest, reference)
        for blob in self._blobs(json.loads(self.store.read(manifest_digest))):
            if not self.store.has(blob):
                self.store.put(client.download_blob(repository, blob))
        return self._from_store(self.store, manifest_digest, reference, mount_from=f"{host}/{repository}")

    def _manifest_for_amd64(self, client: RegistryClient, repository: str, digest: str, reference: str) -> str:
        fetched = client.get_manifest(repository, digest)
        if fetched is None:
            raise BuildError(
                f"base image {reference} is not in its registry",
                "push it there, or fix the base reference in the environment's bases",
            )
        data, media_type = fetched
        self.store.put(data)
        if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in json.loads(data):
            for entry in json.loads(data)["manifests"]:
                platform = entry.get("platform", {})
                if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                    return self._manifest_for_amd64(client, repository, entry["digest"], reference)
            raise BuildError(f"base image {reference} has no linux/amd64 image", "choose a base built for amd64")
        return digest

    @staticmethod
    def _blobs(manifest: dict) -> list[str]:
        return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


def _store_image(bases: BlobStore, layer: Layer, runtime: dict, created_by: str) -> str:
    """The config and manifest of a one-layer base, put in `bases`; returns the manifest's digest."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": created, "created_by": created_by}],
    }
    config_blob = Blob(bases.put(canonical_json(config)), len(canonical_json(config)), OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor()],
    }
    return bases.put(canonical_json(manifest))


@contextmanager
def _process_lock(path: Path) -> Iterator[None]:
    """Held by one process at a time (flock: released when the process ends, however it ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _trim(rootfs: Path) -> None:
    """Drop what an image never needs (docs, man pages, locales, apt lists and caches, logs)."""
    for relative in TRIMMED:
        directory = rootfs / relative
        for child in directory.iterdir() if directory.is_dir() else ():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    with (rootfs / "etc/passwd").open("a") as passwd, (rootfs / "etc/group").open("a") as group:
        passwd.write(APP_USER[0])
        group.write(APP_USER[1])


def rootfs_entries(rootfs: Path) -> list[FileEntry]:
    """Every directory, file and symlink of a root file system, with its own owner, mode and time.

    Device nodes are left out (the runtime provides /dev); hard links become copies.
    """
    entries = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            image_path = "/" + path.relative_to(rootfs).as_posix()
            entry = partial(
                FileEntry,
                image_path,
                mode=info.st_mode & 0o7777,
                uid=info.st_uid,
                gid=info.st_gid,
                mtime=int(info.st_mtime),
            )
            if path.is_symlink():
                entries.append(entry(kind="symlink", link=os.readlink(path)))
            elif path.is_dir():
                entries.append(entry(kind="dir"))
            elif path.is_file():
                entries.append(entry(source=path))
    return entries
