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
            if exc.details:
                click.echo(exc.details, err=True)
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


if __name__ == "__main__":
    main()
