"""The `k8sdeploy` command line: parse, assemble the stages, call one, map errors to exit codes."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

import click

from deploy import __version__
from deploy.environments import DEFAULT_CONFIG, Environment, load_environment
from deploy.errors import DeployError, ExitCode
from deploy.images import IMAGE_NAMES, PROJECT_ROOT, default_record_path
from deploy.version import CHANNELS

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {code.value:<4}{text}" for code, text in [
        (ExitCode.OK, "success"),
        (ExitCode.USAGE, "bad usage or configuration"),
        (ExitCode.BUILD, "build or publish failed"),
        (ExitCode.APPLY, "apply failed"),
        (ExitCode.NOT_READY, "a service was not ready in time"),
        (ExitCode.SMOKE, "the smoke login failed"),
        (ExitCode.LEFTOVERS, "teardown left something behind"),
        (ExitCode.INTERRUPTED, "interrupted"),
    ]
)


def reports_errors(command: Callable) -> Callable:
    """Turn a DeployError into one line on stderr and its exit code; bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):  # noqa: ANN202
        try:
            return command(*args, **kwargs)
        except DeployError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(ExitCode.INTERRUPTED)

    return wrapper


def environment_options(command: Callable) -> Callable:
    """--env and --config, resolved into an Environment passed as `environment`."""

    @click.option("--env", "env_name", default="local", show_default=True, envvar="K8SDEPLOY_ENV",
                  help="Environment from the configuration file.")
    @click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                  default=DEFAULT_CONFIG, show_default="k8sdeploy.toml", help="Configuration file.")
    @functools.wraps(command)
    def wrapper(*args, env_name: str, config_path: Path, **kwargs):  # noqa: ANN202
        environment: Environment = load_environment(env_name, config_path)
        return command(*args, environment=environment, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="k8sdeploy")
def main() -> None:
    """Deploy the auth microservice suite (an nginx+Lua gateway and five Python services)."""


@main.command()
@reports_errors
@environment_options
@click.option("--registry", metavar="HOST[:PORT]/PATH",
              help="Push here. Default: the environment's registry; none means the local Docker Engine.")
@click.option("--builder", type=click.Choice(["oci", "docker"]), default="oci", show_default=True,
              help="oci: daemonless, reproducible layers; docker: the Docker Engine from generated Dockerfiles.")
@click.option("--channel", "channels", type=click.Choice(CHANNELS), multiple=True,
              help="Also move this tag to the new images (the version tag is always pushed).")
@click.option("--allow-dirty", is_flag=True, help="Publish uncommitted changes to a non-local registry.")
@click.option("--source", type=click.Path(path_type=Path, file_okay=False, exists=True), default=PROJECT_ROOT,
              show_default="this checkout", help="The git checkout to build.")
@click.option("--record", "record_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the build record (JSON). Default: .k8sdeploy/builds/ENV.json")
def build(environment: Environment, registry: str | None, builder: str, channels: tuple[str, ...],
          allow_dirty: bool, source: Path, record_path: Path | None) -> None:
    """Build the six images and publish them under the version from git; print their tag@digest."""
    from deploy.buildrun import BuildOptions, Clients, run_build
    from deploy.progress import progress_for

    options = BuildOptions(source=source, registry=environment.registry if registry is None else registry,
                           builder=builder, channels=channels, allow_dirty=allow_dirty, bases=environment.bases)
    clients, progress = Clients(), progress_for(sys.stderr)
    try:
        record = run_build(options, clients, progress)
    finally:
        progress.close()
        clients.close()
    record.save(record_path or default_record_path(environment.name))
    for name in IMAGE_NAMES:
        click.echo(record.images[name].ref)


if __name__ == "__main__":
    main()
