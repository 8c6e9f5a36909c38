"""The composition root of `k8sdeploy build`: create the clients once, pair a builder with a publisher, run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Literal, Mapping

import httpx

from deploy.builders.bases import BaseResolver
from deploy.builders.deps import install_dependencies
from deploy.builders.oci import OciBuilder
from deploy.builders.spec import LOCK, suite_specs
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.model.errors import ConfigError, PublishError
from deploy.model.images import IMAGE_NAMES, BuildRecord
from deploy.model.progress import PlainProgress, Progress
from deploy.publish import Publisher
from deploy.registry.auth import Credentials, credentials_for
from deploy.publish.engine import EnginePublisher
from deploy.registry.client import RegistryAddress, RegistryClient, RetryPolicy, Traffic
from deploy.publish.registry import RegistryPublisher
from deploy.model.version import Version, version_of


@dataclass(frozen=True)
class BuildOptions:
    source: Path  # the checkout to build
    registry: str = ""  # HOST[:PORT]/PATH; "" loads the images into the local Docker Engine
    builder: Literal["oci", "docker"] = "oci"
    channels: tuple[str, ...] = ()
    allow_dirty: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)  # Debian bases and dependency trees
    store_dir: Path | None = None  # layers and images; default: cache_dir
    bases: Mapping[str, str] = field(default_factory=dict)  # Environment.bases


class Clients:
    """Every client of a run, created once: HTTP (counted), registry clients by host, the Docker Engine (lazily)."""

    def __init__(self, *, http: httpx.Client | None = None, traffic: Traffic | None = None,
                 credentials: Callable[[str], Credentials] = credentials_for, retry: RetryPolicy = RetryPolicy(),
                 docker_factory: Callable[[], object] | None = None):
        self.traffic = traffic or Traffic()
        self.http = http or httpx.Client(timeout=httpx.Timeout(60, connect=10), follow_redirects=True,
                                         event_hooks={"request": [self.traffic.hook]})
        self._credentials, self._retry = credentials, retry
        self._docker_factory, self._docker = docker_factory, None
        self._registries: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def registry(self, host: str) -> RegistryClient:
        with self._lock:
            if host not in self._registries:
                self._registries[host] = RegistryClient(host, self.http, self._credentials(host), self._retry,
                                                        self.traffic)
            return self._registries[host]

    def docker(self):  # noqa: ANN201 - docker.DockerClient, imported lazily: OCI builds need no engine
        if self._docker is None:
            import docker

            try:
                self._docker = (self._docker_factory or docker.from_env)()
                self._docker.ping()
            except docker.errors.DockerException as exc:
                raise PublishError(f"the Docker Engine did not answer ({exc})",
                                   "start it (scripts/ensure-dockerd.sh) or set DOCKER_HOST") from None
        return self._docker

    def close(self) -> None:
        self.http.close()
        if self._docker is not None:
            self._docker.close()


def check_publishable(version: Version, options: BuildOptions) -> None:
    local = not options.registry or RegistryAddress.parse(options.registry).is_loopback
    if version.dirty and not local and not options.allow_dirty:
        raise ConfigError(f"the checkout has uncommitted changes (version {version.version}) and "
                          f"{options.registry} is not a local registry", "commit them, or pass --allow-dirty")


def _builder(options: BuildOptions, clients: Clients, bases: BaseResolver, progress: Progress):
    if options.builder == "docker":
        from deploy.builders.docker import DockerBuilder

        return DockerBuilder(clients.docker(), bases, log=progress.step)
    return OciBuilder(bases.store, bases, log=progress.step)


def _publisher(options: BuildOptions, clients: Clients, progress: Progress) -> Publisher:
    address = RegistryAddress.parse(options.registry) if options.registry else None
    if options.builder == "docker":
        from deploy.publish.docker import DockerPublisher

        return DockerPublisher(clients.docker(), address, clients.registry, log=progress.step)
    if address is None:
        return EnginePublisher(clients.docker(), log=progress.step)
    return RegistryPublisher(address, clients.registry(address.host), log=progress.step)


def build_images(options: BuildOptions, clients: Clients, progress: Progress) -> tuple[Version, list]:
    """The version of `options.source` and its six images, built (nothing published yet)."""
    version = version_of(options.source)
    check_publishable(version, options)
    progress.step("build", f"version {version.version}")
    store = BlobStore(options.store_dir or options.cache_dir)
    bases = BaseResolver(store, options.cache_dir, clients.registry, log=lambda message: progress.step("bases", message))
    site_packages = install_dependencies(options.source / LOCK, options.cache_dir)
    specs = suite_specs(options.source, version, site_packages, options.bases)
    builder = _builder(options, clients, bases, progress)
    with ThreadPoolExecutor(2) as pool:  # the (at most two) Debian bases are built side by side
        list(pool.map(bases.resolve, sorted({spec.base for spec in specs})))
    return version, [builder.build(spec) for spec in specs]


def run_build(options: BuildOptions, clients: Clients, progress: Progress | None = None) -> BuildRecord:
    """Build the six images from `options.source` and publish them under the source's version."""
    progress = progress or PlainProgress()
    publisher = _publisher(options, clients, progress)
    version, images = build_images(options, clients, progress)
    published = publisher.publish(images, version.version, options.channels)
    return BuildRecord(version.version, version.commit, MappingProxyType({name: published[name] for name in IMAGE_NAMES}))


def build_and_record(options: BuildOptions, record_path: Path) -> BuildRecord:
    """`build` and `up` alike: make the clients, build and publish with progress on stderr, save the record."""
    from deploy.model.progress import progress_for

    clients, progress = Clients(), progress_for()
    try:
        record = run_build(options, clients, progress)
    finally:
        progress.close()
        clients.close()
    record.save(record_path)
    return record
