"""The build stage of `build` and `up`: the source's version, its six images built by a builder and published
by a publisher that takes their image type. The builder, the publisher and their clients come from deploy/stages.py."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, Literal

from deploy.attest import Attester, Unsigned
from deploy.builders import Builder, Built, Image
from deploy.builders.bases import BaseResolver
from deploy.builders.deps import install_dependencies
from deploy.builders.spec import LOCK, layer_times, suite_specs
from deploy.builders.store import default_cache_dir
from deploy.model.changes import ImagePlan
from deploy.model.errors import ConfigError
from deploy.model.images import IMAGE_NAMES, BuildRecord, PublishedImage
from deploy.model.progress import Step
from deploy.model.schemas import read_schemas
from deploy.model.version import Version, version_of
from deploy.publish import Planner, Publisher
from deploy.registry.client import RegistryAddress

if TYPE_CHECKING:
    from deploy.attest.keys import SigningKey  # cryptography is loaded only to sign


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
    signing_key: SigningKey | None = field(default=None, repr=False)  # sign what is published (deploy/attest)


def check_publishable(version: Version, options: BuildOptions, address: RegistryAddress | None = None) -> None:
    """A dirty checkout is published only to the local engine, a registry on loopback, or with --allow-dirty.
    `address`: the options' registry, when the caller has it parsed already."""
    if address is None and options.registry:
        address = RegistryAddress.parse(options.registry)
    local = address is None or address.is_loopback
    if version.dirty and not local and not options.allow_dirty:
        raise ConfigError(
            f"the checkout has uncommitted changes (version {version.version}) and "
            f"{options.registry} is not a local registry",
            "commit them, or pass --allow-dirty",
        )


@dataclass(frozen=True)
class SourceFacts:
    """What git says of the checkout: its version and the time of each layer's sources."""

    version: Version
    layer_times: Mapping[str, int]

    @classmethod
    def of(cls, source: Path) -> SourceFacts:
        return cls(version_of(source), MappingProxyType(layer_times(source)))

    @classmethod
    def ask(cls, source: Path) -> Future[SourceFacts]:
        """SourceFacts.of(source), asked in a thread of its own: git runs in processes of its own, beside what this
        one does meanwhile (making the registry's client, the base images' lookup)."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="git")
        try:
            return pool.submit(cls.of, source)
        finally:
            pool.shutdown(wait=False)  # the answer is taken when the build needs it


@dataclass(frozen=True)
class ImageBuild(Generic[Image]):
    """The build stage: a builder and a publisher of one image type (deploy/builders/__init__.py Image)."""

    options: BuildOptions
    bases: BaseResolver
    builder: Builder[Image]
    publisher: Publisher[Image]
    step: Step
    attester: Attester = field(default_factory=Unsigned)  # signs what was published, or does nothing
    facts: Future[SourceFacts] | None = None  # what git says of the source, when already asked (SourceFacts.ask)
    address: RegistryAddress | None = None  # the options' registry, parsed (run context's Facts)

    def built(self) -> Built[Image]:
        """The version of the source and its six images, built (nothing published yet)."""
        facts = self.facts.result() if self.facts is not None else SourceFacts.of(self.options.source)
        version = facts.version
        check_publishable(version, self.options, self.address)
        self.step("build", f"version {version.version}")
        site_packages = install_dependencies(self.options.source / LOCK, self.options.cache_dir)
        specs = suite_specs(self.options.source, version, site_packages, self.options.bases, facts.layer_times)
        references = sorted({spec.base for spec in specs})
        with ThreadPoolExecutor(2) as pool:  # the (at most two) Debian bases are built side by side
            bases = dict(zip(references, pool.map(self.bases.resolve, references), strict=True))
        images = [self.builder.build(spec) for spec in specs]
        return Built(version, images, bases, self.options.source / LOCK, self.options.builder)

    def images(self) -> tuple[Version, Sequence[Image]]:
        built = self.built()
        return built.version, built.images

    def plan(self, planner: Planner[Image]) -> tuple[Version, tuple[ImagePlan, ...]]:
        """Build the six images and ask `planner` what publishing them would do; nothing is published."""
        version, images = self.images()
        return version, planner.plan(images, version.version)

    def publish_some(self, names: Collection[str]) -> tuple[Version, Mapping[str, PublishedImage]]:
        """`dev` on a cluster: build the six, publish only `names` (the images a saved file changed), and attest
        those (or not: with no signing key)."""
        built = self.built()
        chosen = [image for name, image in zip(IMAGE_NAMES, built.images, strict=True) if name in names]
        published = self.publisher.publish(chosen, built.version.version)
        record = BuildRecord(built.version.version, built.version.commit, MappingProxyType(dict(published)))
        return built.version, self.attester.attest(built, record).images

    def run(self) -> BuildRecord:
        """Build the six images, publish them under the source's version, then attest them (or not)."""
        built = self.built()
        version = built.version
        published = self.publisher.publish(built.images, version.version, self.options.channels)
        record = BuildRecord(
            version.version,
            version.commit,
            MappingProxyType({name: published[name] for name in IMAGE_NAMES}),
            schemas=read_schemas(self.options.source),  # the revision files baked into the images
        )
        return self.attester.attest(built, record)
