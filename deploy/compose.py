"""The composition root: one run context per command (deploy/context.py: its clients, progress and each
environment's facts, resolved once), and the Runner made of the stages (deploy/stages.py) and the environment's
kind (deploy/targets/kit.py). The commands call these functions and nothing else builds a stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, overload

import click

from deploy import stages
from deploy.builders.bases import BaseResolver
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.clients import Clients
from deploy.context import RunContext
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.progress import Say
from deploy.model.releases import ReleaseHistory
from deploy.model.schemas import read_schemas
from deploy.publish import release as latest
from deploy.publish.bases import BasePublisher, PublishedBases
from deploy.publish.push import RegistryPublisher
from deploy.publish.release import Moved, registry_of
from deploy.publish.stage import BuildOptions
from deploy.registry.client import RegistryAddress
from deploy.render.credentials import mysql_secret
from deploy.runner import BuildingRunner, Gates, Runner, UpResult
from deploy.smoke import smoke_stage
from deploy.targets.kit import KitOptions, TargetKit

if TYPE_CHECKING:
    from deploy.attest.keys import SigningKey
    from deploy.attest.verify import Verified
    from deploy.dev.loop import DevLoop
    from deploy.model.promotion import Promotion
    from deploy.registry.artifact_registry import ArtifactRepository


def run_context(say: Say) -> RunContext:
    """The run context of the command being run: made at its first call here and kept for the rest of it (in the
    click context), its clients closed when the command ends. Outside a command (a library call), a new one each
    time, which its caller may close()."""
    command = click.get_current_context(silent=True)
    if command is None:
        return RunContext(say, Clients())
    meta = command.find_root().meta
    if RUN_CONTEXT not in meta:
        meta[RUN_CONTEXT] = RunContext(say, Clients())
        command.find_root().call_on_close(meta[RUN_CONTEXT].close)
    return meta[RUN_CONTEXT]


RUN_CONTEXT = "k8sdeploy.run_context"


def build(
    environment: Environment,
    options: BuildOptions,
    say: Say,
    record_path: Path | None = None,
    keep: ReleaseHistory | None = None,
) -> BuildRecord:
    """`build`: the images built and published, their record saved (deploy/stages.py build)."""
    return stages.build(environment, options, run_context(say), record_path, keep)


def verify_images(environment: Environment, images: Mapping[str, PublishedImage], say: Say) -> list[Verified]:
    """`verify`: every image against the environment's `verify`."""
    return stages.verify_images(environment, images, run_context(say))


def database_image(environment: Environment, layout: str, say: Say, publish: bool = True) -> str:
    """The MySQL server's image of `layout` for `environment` ("" for none; deploy/stages.py database_image)."""
    return stages.database_image(environment, layout, run_context(say), publish)


def publish_bases(registry: str, say: Say) -> PublishedBases:
    """`bases`: build the Debian bases (debootstrap, once; cached) and push them to `registry` by digest."""
    address, cache, context = RegistryAddress.parse(registry), default_cache_dir(), run_context(say)
    with context.progress() as progress:
        resolver = BaseResolver(BlobStore(cache), cache, context.clients.registry, step=progress.step)
        publisher = RegistryPublisher(address, context.clients.registry(address.host), step=progress.step)
        return BasePublisher(resolver, publisher, progress.step).publish()


def release(environment: Environment, version: str, say: Say) -> tuple[Moved, ...]:
    """`release`: move `latest` of the environment's registry to `version`."""
    context = run_context(say)
    facts = context.facts(environment)
    address = registry_of(facts.address, environment.name)
    return latest.release(address, context.clients.registry(address.host), version, say, facts.repository)


def repository_of(environment: Environment, say: Say) -> ArtifactRepository | None:
    """The Artifact Registry repository the environment pushes to; None for any other."""
    return run_context(say).facts(environment).repository


def kit(
    environment: Environment, say: Say, options: KitOptions | None = None, context: RunContext | None = None
) -> TargetKit:
    """The environment's target and its records (history, lease, users, identity keys)."""
    context = context or run_context(say)
    return context.facts(environment).kind.kit(environment, context.clients, say, options or KitOptions())


def history(environment: Environment, say: Say, context: RunContext | None = None) -> ReleaseHistory:
    """The environment's release history, read with no more than its kind needs for it."""
    context = context or run_context(say)
    read = context.facts(environment).kind.history
    return read(environment, context.clients, say) if read is not None else kit(environment, say, None, context).history


@overload
def make_runner(
    environment: Environment, say: Say, *, options: BuildOptions, no_smoke: bool = ..., wait_timeout: float = ...,
    dev_checkout: Path | None = ..., context: RunContext | None = ...,
) -> BuildingRunner: ...  # fmt: skip


@overload
def make_runner(
    environment: Environment, say: Say, *, options: None = ..., no_smoke: bool = ..., wait_timeout: float = ...,
    keep_cluster: bool = ..., context: RunContext | None = ...,
) -> Runner: ...  # fmt: skip


def make_runner(
    environment: Environment,
    say: Say,
    *,
    options: BuildOptions | None = None,
    no_smoke: bool = False,
    wait_timeout: float = 180,
    keep_cluster: bool = False,
    dev_checkout: Path | None = None,
    context: RunContext | None = None,
) -> Runner:
    """A Runner for `environment`, its stages made from the command's run context; with `options`, a BuildingRunner
    whose build stage they make (`up`, `dev`), and its preview (`diff`), which builds the same images and publishes
    nothing; `dev_checkout` binds that checkout in where the kind can."""
    context = context or run_context(say)
    if keep_cluster and not context.facts(environment).kind.own_cluster:
        raise ConfigError(
            f"--keep-cluster applies to targets that make their cluster; {environment.name} is {environment.target}",
            "leave out --keep-cluster",
        )
    common = Runner(
        environment,
        lambda: kit(environment, say, KitOptions(keep_cluster, dev_checkout), context),
        say,
        smoke_stage(environment, say, no_smoke, reach_timeout=wait_timeout),
        verify=lambda images: stages.verified(environment, images, context),
        wait_timeout=wait_timeout,
        mysql_secret=mysql_secret(),
        database_image=lambda layout, publish: stages.database_image(environment, layout, context, publish),
    )
    if options is None:
        return common
    return BuildingRunner(  # the same environment, kit and stages, and the build's
        **{field.name: getattr(common, field.name) for field in fields(Runner)},
        build=lambda kept: stages.build(environment, options, context, keep=kept),
        preview=lambda: stages.preview_images(environment, options, context),
        source_schemas=lambda: read_schemas(options.source),
    )


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
    """`promote`: the Runner of `target` takes the release of `source` through its gates and deploys it."""
    context = run_context(say)
    runner = make_runner(target, say, no_smoke=no_smoke, wait_timeout=wait_timeout, context=context)
    return runner.promote_from(
        source,
        lambda: history(source, say, context),
        lambda: stages.PromotedCopy(source, target, key, context),
        Gates(version, force, approved_by),
    )


def make_dev(
    environment: Environment, layout: str, say: Say, emit: Callable[[str, str], None],
    serving: Callable[[UpResult], None], options: BuildOptions, no_smoke: bool = False, wait_timeout: float = 180,
) -> DevLoop:  # fmt: skip
    """`dev`: a Runner that builds uncommitted work, and how a saved file reaches what runs: in place where the
    target can (the local one), else by pushing the images a file changed and setting their workloads' image."""
    import watchfiles

    from deploy.dev.loop import DevLoop, Republish, Restart
    from deploy.model.images import IMAGE_NAMES

    checkout, context = options.source.resolve(), run_context(say)
    options = replace(options, source=checkout, allow_dirty=True)
    runner = make_runner(
        environment,
        say,
        options=options,
        no_smoke=no_smoke,
        wait_timeout=wait_timeout,
        dev_checkout=checkout,
        context=context,
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
    republish = Republish(runner, lambda names: stages.publish_images(environment, options, names, context), say)
    return DevLoop(runner, layout, checkout, republish, None, say, watchfiles.watch, serving)
