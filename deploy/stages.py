"""The stages that build, publish, verify and copy images, each made from the command's run context
(deploy/context.py): its clients, its progress, and the environment's facts as resolved once. compose.py hands
them to the Runner."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING

from deploy.attest import Attester, Unsigned
from deploy.builders.bases import BaseResolver
from deploy.builders.oci import OciBuilder
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.context import Facts, RunContext
from deploy.model.changes import ImagePlan
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.images import BuildRecord, PublishedImage, build_record_path
from deploy.model.progress import Progress
from deploy.model.releases import ReleaseHistory
from deploy.model.version import Version
from deploy.publish.bases import SERVER, base_image, base_tag, publish_server
from deploy.publish.push import RegistryPublisher
from deploy.publish.stage import BuildOptions, ImageBuild, SourceFacts

if TYPE_CHECKING:
    from pathlib import Path

    from deploy.attest.keys import SigningKey
    from deploy.attest.verify import Verified
    from deploy.builders.docker import EngineImage
    from deploy.builders.oci import OciImage
    from deploy.model.promotion import Promotion
    from deploy.publish.engine import EnginePublisher


def image_build(
    options: BuildOptions, context: RunContext, progress: Progress, facts: Facts
) -> ImageBuild[OciImage] | ImageBuild[EngineImage]:
    """The build stage: the builder the options name and a publisher that takes its image type (both made before
    anything is built, so a missing engine or registry is found first), publishing where `facts` say."""
    return docker_build(options, context, progress, facts) if options.builder == "docker" else (
        oci_build(options, context, progress, facts)
    )  # fmt: skip


def oci_build(options: BuildOptions, context: RunContext, progress: Progress, facts: Facts) -> ImageBuild[OciImage]:
    """The OCI builder's images, for the registry of `facts` or the local Docker Engine."""
    source, store, bases, signer = build_parts(options, context, progress, facts)
    oci, to = OciBuilder(store, bases, step=progress.step), oci_publisher(context, progress, facts)
    return ImageBuild(options, bases, oci, to, progress.step, signer, source, facts.address)


def docker_build(
    options: BuildOptions, context: RunContext, progress: Progress, facts: Facts
) -> ImageBuild[EngineImage]:
    """The Docker Engine's images (`--builder docker`), pushed with the Engine to the registry of `facts`."""
    from deploy.builders.docker import DockerBuilder
    from deploy.publish.docker import DockerPublisher

    source, _store, bases, signer = build_parts(options, context, progress, facts)
    clients = context.clients
    publisher = DockerPublisher(clients.docker(), facts.address, clients.registry, step=progress.step)
    builder = DockerBuilder(clients.docker(), bases, step=progress.step)
    return ImageBuild(options, bases, builder, publisher, progress.step, signer, source, facts.address)


def build_parts(
    options: BuildOptions, context: RunContext, progress: Progress, facts: Facts
) -> tuple[Future[SourceFacts], BlobStore, BaseResolver, Attester]:
    """What either builder needs: git's answers (asked now, in a thread), the blob store, the bases, the signer."""
    source = SourceFacts.ask(options.source)  # git answers while the clients are made
    store = BlobStore(options.store_dir or options.cache_dir)
    bases = BaseResolver(store, options.cache_dir, context.clients.registry, step=progress.step)
    return source, store, bases, attester(options, context, progress, facts)


def oci_publisher(context: RunContext, progress: Progress, facts: Facts) -> RegistryPublisher | EnginePublisher:
    """Where OCI images go: the registry of `facts`, or the local Docker Engine. Either also plans (Planner)."""
    if facts.address is None:
        from deploy.publish.engine import EnginePublisher  # docker's client: only where the Engine is used

        return EnginePublisher(context.clients.docker(), step=progress.step)
    return RegistryPublisher(facts.address, context.clients.registry(facts.address.host), step=progress.step)


def attester(options: BuildOptions, context: RunContext, progress: Progress, facts: Facts) -> Attester:
    """With a signing key, a Signer through the registry the images go to; else nothing is signed."""
    if options.signing_key is None:
        return Unsigned()
    if facts.address is None or options.builder != "oci":
        raise ConfigError(
            f"signing ({options.signing_key.origin}) needs a registry and the oci builder: signatures and SBOMs are "
            "kept beside the images and made from the layers k8sdeploy writes",
            "pass --registry (or set the environment's registry) and leave --builder at oci",
        )
    from deploy.attest.sign import Signer  # cryptography is loaded only to sign or verify

    return Signer(options.signing_key, context.clients.registry, step=progress.step, home=facts.signatures)


def build(
    environment: Environment,
    options: BuildOptions,
    context: RunContext,
    record_path: Path | None = None,
    keep: ReleaseHistory | None = None,
) -> BuildRecord:
    """`build` and `up`: the images built and published, their record saved. An Artifact Registry repository is
    made first, keeping the releases `keep` records (`up`; `build` leaves its keep policy as it is)."""
    facts = context.facts(environment, options.registry)
    repository = facts.repository
    if repository is not None:  # before building: a push needs the repository, and it keeps our releases
        repository.refuse_moving(options.channels)
        repository.ensure(environment.name, [r.version for r in keep.releases()] if keep is not None else None)
        if options.signing_key is not None:
            repository.ensure_signatures()
    with context.progress() as progress:
        record = image_build(options, context, progress, facts).run()
    record.save(record_path or build_record_path(environment.name))
    return record


def preview_images(
    environment: Environment, options: BuildOptions, context: RunContext
) -> tuple[Version, tuple[ImagePlan, ...]]:
    """`diff`: build the six images with the OCI builder, whose digests follow from the layers, and ask the
    registry (or engine) which it lacks; nothing is pushed or loaded."""
    facts = context.facts(environment, options.registry)
    with context.progress() as progress:
        images = oci_build(replace(options, builder="oci"), context, progress, facts)
        return images.plan(oci_publisher(context, progress, facts))


def publish_images(
    environment: Environment, options: BuildOptions, names: Collection[str], context: RunContext
) -> Mapping[str, PublishedImage]:
    """`dev` on a cluster: build the six images and push only `names` to the options' registry."""
    facts = context.facts(environment, options.registry)
    with context.progress() as progress:
        return image_build(options, context, progress, facts).publish_some(names)[1]


def verify_images(
    environment: Environment, images: Mapping[str, PublishedImage], context: RunContext
) -> list[Verified]:
    """`verify`, and `up` and `rollback` before they apply: every image against the environment's `verify`."""
    from deploy.attest.verify import ImageVerifier

    home = context.facts(environment).signatures
    return ImageVerifier.of(environment, context.clients.registry, home).verify(images)


def verified(environment: Environment, images: Mapping[str, PublishedImage], context: RunContext) -> object:
    """What the runner checks before applying: nothing, or the images against the environment's `verify`."""
    if environment.verify is None:
        return None
    found = verify_images(environment, images, context)
    context.say(f"verified: {len(found)} images signed with {environment.verify.key}")
    return found


class PromotedCopy:
    """`promote`'s copy stage: the release's images copied by digest into the target's registry with the
    source's signatures and attestations, then (with `key`) signed there with the promotion attested; `kept` are
    the versions an Artifact Registry repository of the target keeps."""

    def __init__(self, source: Environment, target: Environment, key: SigningKey | None, context: RunContext):
        if not target.registry:
            raise ConfigError(
                f"environment {target.name} has no registry: `promote` copies the release's images into it",
                f'set registry = "HOST/PATH" in [environments.{target.name}]',
            )
        self.source, self.target, self.key, self.context = source, target, key, context

    def __call__(self, promotion: Promotion, kept: Sequence[str]) -> BuildRecord:
        from deploy.attest.promotion import Endorser, promotion_statement, vouching_key
        from deploy.model.releases import now, who
        from deploy.publish.copy import ImageCopier

        release, context = promotion.release, self.context
        to, source = context.facts(self.target), context.facts(self.source)
        assert to.address is not None  # the target has a registry (__init__)
        if to.repository is not None:
            to.repository.ensure(self.target.name, kept)
            if self.key is not None:
                to.repository.ensure_signatures()
        with context.progress() as progress:
            copier = ImageCopier(context.clients.registry, to.address, progress.step, source.signatures, to.signatures)
            copied = copier.copy(release.images)
            context.say(f"copied {release.version} of {self.source.name}: {copied.summary()}")
            if self.key is not None:
                trusted = vouching_key(self.source)
                statement = promotion_statement(copied.images, promotion.promoted_from, now(), who())
                endorser = Endorser(self.key, context.clients.registry, to.signatures, trusted, progress.step)
                endorser.endorse(copied.images, statement)
        return BuildRecord(release.version, release.commit, copied.images, schemas=release.schemas)


def database_image(environment: Environment, layout: str, context: RunContext, publish: bool = True) -> str:
    """The MySQL server's image of `layout` for an environment with database = "mysql" ("" where there is no
    server): the `mysql_image` it names, else a `mariadb` base it pins in `bases` (e.g. one `k8sdeploy bases`
    published), else k8sdeploy's own MariaDB image (deploy/builders/mariadb.py: built here once, cached), pushed
    to the environment's registry under the bases' immutable tag. `publish=False` (diff, render) pushes nothing:
    the reference it would have."""
    if environment.database != "mysql" or layout != "split-pods" or environment.mysql_server is not None:
        return ""
    if environment.mysql_image:
        return environment.mysql_image
    pinned = environment.bases.get(SERVER, "")
    if "@sha256:" in pinned and not pinned.startswith("debootstrap:"):
        return pinned
    facts = context.facts(environment)
    if facts.address is None:
        raise ConfigError(
            f'environment {environment.name!r}: database = "mysql" needs a registry for its server\'s image',
            'set registry, or mysql_image = "HOST/REPO:TAG@sha256:..."',
        )
    cache = default_cache_dir()
    with context.progress() as progress:
        resolver = BaseResolver(BlobStore(cache), cache, context.clients.registry, step=progress.step)
        publisher = RegistryPublisher(facts.address, context.clients.registry(facts.address.host), step=progress.step)
        if not publish:
            base = resolver.resolve(pinned or f"debootstrap:{SERVER}")
            image = base_image(SERVER, base, resolver.store)
            return f"{facts.address.host}/{facts.address.repository(SERVER)}:{base_tag([base])}@{image.digest}"
        return publish_server(resolver, publisher, progress.step).ref
