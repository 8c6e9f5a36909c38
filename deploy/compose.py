"""The composition root: the stages wired to the clients deploy/clients.py makes. The commands call these
functions and nothing else builds a stage; what each kind of target needs is its Kind (deploy/targets/kit.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.attest import Attester, Unsigned, same
from deploy.builders.bases import BaseResolver
from deploy.builders.oci import OciBuilder
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.clients import Clients, artifact_repository
from deploy.model.changes import ImagePlan
from deploy.model.environments import TARGET_KINDS, Environment
from deploy.model.errors import ConfigError
from deploy.model.images import BuildRecord, PublishedImage, build_record_path
from deploy.model.progress import Progress, Say, silent
from deploy.model.releases import ReleaseHistory
from deploy.model.schemas import read_schemas
from deploy.model.version import Version
from deploy.output import progress_for
from deploy.publish import release as latest
from deploy.publish.bases import BasePublisher, PublishedBases
from deploy.publish.push import RegistryPublisher
from deploy.publish.release import Moved, registry_of
from deploy.publish.stage import BuildOptions, ImageBuild, SourceFacts
from deploy.registry.client import RegistryAddress
from deploy.render.credentials import mysql_secret
from deploy.runner import Runner, UpResult
from deploy.smoke import smoke_stage
from deploy.targets.kit import Kind, KitOptions, TargetKit

if TYPE_CHECKING:
    from deploy.attest.keys import SigningKey
    from deploy.attest.verify import Verified
    from deploy.dev.loop import DevLoop
    from deploy.model.promotion import Promotion
    from deploy.publish.engine import EnginePublisher
    from deploy.registry.artifact_registry import ArtifactRepository


@contextmanager
def session() -> Iterator[tuple[Clients, Progress]]:
    """The clients of one piece of work and its progress display on stderr, both closed when it ends."""
    clients, progress = Clients(), progress_for()
    try:
        yield clients, progress
    finally:
        progress.close()
        clients.close()


def image_build(
    options: BuildOptions, clients: Clients, progress: Progress, signatures: Callable[[str], str] = same
) -> ImageBuild:
    """The build stage: a builder and the publisher paired with it (both made before anything is built, so a
    missing engine or registry is found first); `signatures` says where an image's signatures go."""
    facts = SourceFacts.ask(options.source)  # git answers while the clients are made
    store = BlobStore(options.store_dir or options.cache_dir)
    bases = BaseResolver(store, options.cache_dir, clients.registry, step=progress.step)
    signer = attester(options, clients, progress, signatures)
    if options.builder == "docker":
        from deploy.builders.docker import DockerBuilder
        from deploy.publish.docker import DockerPublisher

        address = RegistryAddress.parse(options.registry) if options.registry else None
        publisher = DockerPublisher(clients.docker(), address, clients.registry, step=progress.step)
        builder = DockerBuilder(clients.docker(), bases, step=progress.step)
        return ImageBuild(options, bases, builder, publisher, progress.step, signer, facts)
    oci = OciBuilder(store, bases, step=progress.step)
    return ImageBuild(options, bases, oci, oci_publisher(options, clients, progress), progress.step, signer, facts)


def oci_publisher(options: BuildOptions, clients: Clients, progress: Progress) -> RegistryPublisher | EnginePublisher:
    """Where OCI images go: the options' registry, or the local Docker Engine. Either also plans (Planner)."""
    if not options.registry:
        from deploy.publish.engine import EnginePublisher  # docker's client: only where the Engine is used

        return EnginePublisher(clients.docker(), step=progress.step)
    address = RegistryAddress.parse(options.registry)
    return RegistryPublisher(address, clients.registry(address.host), step=progress.step)


def attester(
    options: BuildOptions, clients: Clients, progress: Progress, signatures: Callable[[str], str] = same
) -> Attester:
    """With a signing key, a Signer through the registry the images go to; else nothing is signed."""
    if options.signing_key is None:
        return Unsigned()
    if not options.registry or options.builder != "oci":
        raise ConfigError(
            f"signing ({options.signing_key.origin}) needs a registry and the oci builder: signatures and SBOMs are "
            "kept beside the images and made from the layers k8sdeploy writes",
            "pass --registry (or set the environment's registry) and leave --builder at oci",
        )
    from deploy.attest.sign import Signer  # cryptography is loaded only to sign or verify

    return Signer(options.signing_key, clients.registry, step=progress.step, home=signatures)


def build(
    environment: Environment,
    options: BuildOptions,
    say: Say,
    record_path: Path | None = None,
    keep: ReleaseHistory | None = None,
) -> BuildRecord:
    """`build` and `up`: the images built and published, their record saved. An Artifact Registry repository is
    made first, keeping the releases `keep` records (`up`; `build` leaves its keep policy as it is)."""
    repository = repository_of(environment, say, options.registry)
    if repository is not None:  # before building: a push needs the repository, and it keeps our releases
        repository.refuse_moving(options.channels)
        repository.ensure(environment.name, [r.version for r in keep.releases()] if keep is not None else None)
        if options.signing_key is not None:
            repository.ensure_signatures()
    with session() as (clients, progress):
        record = image_build(options, clients, progress, signatures_home_of(repository)).run()
    record.save(record_path or build_record_path(environment.name))
    return record


def preview_images(options: BuildOptions) -> tuple[Version, tuple[ImagePlan, ...]]:
    """`diff`: build the six images with the OCI builder, whose digests follow from the layers, and ask the
    registry (or engine) which it lacks; nothing is pushed or loaded."""
    with session() as (clients, progress):
        images = image_build(replace(options, builder="oci"), clients, progress)
        return images.plan(oci_publisher(options, clients, progress))


def publish_images(
    options: BuildOptions, names: Collection[str], signatures: Callable[[str], str] = same
) -> Mapping[str, PublishedImage]:
    """`dev` on a cluster: build the six images and push only `names` to the options' registry."""
    with session() as (clients, progress):
        return image_build(options, clients, progress, signatures).publish_some(names)[1]


def verify_images(environment: Environment, images: Mapping[str, PublishedImage]) -> list[Verified]:
    """`verify`, and `up` and `rollback` before they apply: every image against the environment's `verify`."""
    from deploy.attest.verify import ImageVerifier

    home = signatures_home_of(repository_of(environment, silent))
    with session() as (clients, progress):
        return ImageVerifier.of(environment, clients.registry, home).verify(images)


def signatures_home_of(repository: ArtifactRepository | None) -> Callable[[str], str]:
    """Where an image's signatures go: beside it, or for an Artifact Registry repository (immutable tags, cleanup
    policies) in its sibling REPOSITORY-signatures (deploy/registry/artifact_registry.py)."""
    if repository is None:
        return same
    from deploy.registry.artifact_registry import signatures_home  # Google's libraries: only for their registry

    return signatures_home(repository.name)


def promoted(
    source: Environment, target: Environment, say: Say, key: SigningKey | None
) -> Callable[[Promotion, Sequence[str]], BuildRecord]:
    """`promote`'s copy stage: the release's images copied by digest into `target`'s registry with the source's
    signatures and attestations, then (with `key`) signed there with the promotion attested; `kept` are the
    versions an Artifact Registry repository of the target keeps."""
    from deploy.attest.promotion import Endorser, promotion_statement, vouching_key
    from deploy.model.releases import now, who
    from deploy.publish.copy import ImageCopier

    if not target.registry:
        raise ConfigError(
            f"environment {target.name} has no registry: `promote` copies the release's images into it",
            f'set registry = "HOST/PATH" in [environments.{target.name}]',
        )

    def copy(promotion: Promotion, kept: Sequence[str]) -> BuildRecord:
        release = promotion.release
        repository = repository_of(target, say)
        if repository is not None:
            repository.ensure(target.name, kept)
            if key is not None:
                repository.ensure_signatures()
        home = signatures_home_of(repository)
        with session() as (clients, progress):
            copier = ImageCopier(
                clients.registry,
                RegistryAddress.parse(target.registry),
                progress.step,
                signatures_home_of(repository_of(source, silent)),
                home,
            )
            copied = copier.copy(release.images)
            say(f"copied {release.version} of {source.name}: {copied.summary()}")
            if key is not None:
                trusted = vouching_key(source)
                statement = promotion_statement(copied.images, promotion.promoted_from, now(), who())
                Endorser(key, clients.registry, home, trusted, progress.step).endorse(copied.images, statement)
        return BuildRecord(release.version, release.commit, copied.images, schemas=release.schemas)

    return copy


def promote_release(
    source: Environment,
    target: Environment,
    say: Say,
    key: SigningKey | None,
    version: str | None = None,
    force: bool = False,
    approved_by: str = "",
    no_smoke: bool = False,
    wait_timeout: float = 180,
) -> tuple[Promotion, UpResult | None]:
    """`promote`: the target's policy first, then the source's release through its gates, then the Runner."""
    from deploy.model.promotion import gate, route

    runner = make_runner(target, say, no_smoke=no_smoke, wait_timeout=wait_timeout)
    runner.admit("promote")  # before either environment is asked anything
    route(source, target, approved_by)
    releases = history(source, say).releases()
    promotion = gate(source, releases, target, datetime.now(UTC), say, version, force, approved_by)
    return promotion, runner.promote(promotion, promoted(source, target, say, key))


def publish_bases(registry: str) -> PublishedBases:
    """`bases`: build the Debian bases (debootstrap, once; cached) and push them to `registry` by digest."""
    address, cache = RegistryAddress.parse(registry), default_cache_dir()
    with session() as (clients, progress):
        resolver = BaseResolver(BlobStore(cache), cache, clients.registry, step=progress.step)
        publisher = RegistryPublisher(address, clients.registry(address.host), step=progress.step)
        return BasePublisher(resolver, publisher, progress.step).publish()


def release(environment: Environment, version: str, say: Say) -> tuple[Moved, ...]:
    """`release`: move `latest` of the environment's registry to `version`."""
    address = registry_of(environment.registry, environment.name)
    with session() as (clients, progress):
        registry = clients.registry(address.host)
        return latest.release(address, registry, version, say, repository_of(environment, say))


def kind_of(environment: Environment) -> Kind:
    """The environment's target kind (its module loaded only when asked: the cloud libraries take a second)."""
    return importlib.import_module(TARGET_KINDS[environment.target]).KIND


def kit(environment: Environment, say: Say, options: KitOptions | None = None) -> TargetKit:
    """The environment's target and its records (history, lease, users, identity keys)."""
    return kind_of(environment).kit(environment, Clients(), say, options or KitOptions())


def history(environment: Environment, say: Say) -> ReleaseHistory:
    """The environment's release history, read with no more than its kind needs for it."""
    read = kind_of(environment).history
    return read(environment, Clients(), say) if read is not None else kit(environment, say).history


def repository_of(environment: Environment, say: Say, registry: str | None = None) -> ArtifactRepository | None:
    """The Artifact Registry repository the environment (or `registry`) pushes to; None for any other."""
    registry = environment.registry if registry is None else registry
    return artifact_repository(registry, say, kind_of(environment).registry_on_google)


def make_runner(
    environment: Environment,
    say: Say,
    *,
    options: BuildOptions | None = None,
    no_smoke: bool = False,
    wait_timeout: float = 180,
    keep_cluster: bool = False,
    dev_checkout: Path | None = None,
) -> Runner:
    """A Runner for `environment`; `options` make its build stage (`up`, `dev`) and its preview (`diff`), which
    builds the same images and publishes nothing; `dev_checkout` binds that checkout in where the kind can."""
    if keep_cluster and not kind_of(environment).own_cluster:
        raise ConfigError(
            f"--keep-cluster applies to targets that make their cluster; {environment.name} is {environment.target}",
            "leave out --keep-cluster",
        )
    return Runner(
        environment,
        lambda: kit(environment, say, KitOptions(keep_cluster, dev_checkout)),
        say,
        smoke_stage(environment, say, no_smoke, reach_timeout=wait_timeout),
        build=(lambda kept: build(environment, options, say, keep=kept)) if options is not None else None,
        preview=(lambda: preview_images(options)) if options is not None else None,
        source_schemas=(lambda: read_schemas(options.source)) if options is not None else None,
        verify=lambda images: verified(environment, images, say),
        wait_timeout=wait_timeout,
        mysql_secret=mysql_secret(),
    )


def verified(environment: Environment, images: Mapping[str, PublishedImage], say: Say) -> object:
    """What the runner checks before applying: nothing, or the images against the environment's `verify`."""
    if environment.verify is None:
        return None
    found = verify_images(environment, images)
    say(f"verified: {len(found)} images signed with {environment.verify.key}")
    return found


def make_dev(
    environment: Environment, layout: str, say: Say, emit: Callable[[str, str], None],
    serving: Callable[[UpResult], None], options: BuildOptions, no_smoke: bool = False, wait_timeout: float = 180,
) -> DevLoop:  # fmt: skip
    """`dev`: a Runner that builds uncommitted work, and how a saved file reaches what runs: in place where the
    target can (the local one), else by pushing the images a file changed and setting their workloads' image."""
    import watchfiles

    from deploy.dev.loop import DevLoop, Republish, Restart
    from deploy.model.images import IMAGE_NAMES

    checkout = options.source.resolve()
    options = replace(options, source=checkout, allow_dirty=True)
    runner = make_runner(
        environment, say, options=options, no_smoke=no_smoke, wait_timeout=wait_timeout, dev_checkout=checkout
    )
    runner.admit("dev")  # before the target is asked anything
    in_place = runner.kit.in_place
    if in_place is not None:
        restart = Restart(in_place, runner.objects_of, say)
        return DevLoop(
            runner, layout, checkout, restart, in_place.follow(IMAGE_NAMES, emit), say, watchfiles.watch, serving
        )
    if not options.registry:
        raise ConfigError(
            f"environment {environment.name} has no registry: `dev` pushes the images a change makes",
            f'set registry = "HOST/PATH" in [environments.{environment.name}]',
        )
    say(f"logs of environment {environment.name}: `k8sdeploy logs SERVICE --env {environment.name}`")
    home = signatures_home_of(repository_of(environment, say, options.registry))  # made by the first build
    republish = Republish(runner, lambda names: publish_images(options, names, home), say)
    return DevLoop(runner, layout, checkout, republish, None, say, watchfiles.watch, serving)
