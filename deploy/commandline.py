"""What every `k8sdeploy` command shares: the exit codes in its help, a DeployError as one line and its exit
code, --env and --config resolved into an Environment, --output, and --yes for what destroys."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import click

from deploy.model.environments import DEFAULT_CONFIG, LAYOUTS, Environment, load_environment
from deploy.model.errors import DeployError, ExitCode

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {code.value:<4}{text}"
    for code, text in [
        (ExitCode.OK, "success (diff: up would change nothing)"),
        (ExitCode.CHANGES, "diff: up would change something"),
        (ExitCode.USAGE, "bad usage or configuration"),
        (ExitCode.BUILD, "build or publish failed"),
        (ExitCode.APPLY, "apply failed"),
        (ExitCode.NOT_READY, "a service was not ready in time"),
        (ExitCode.SMOKE, "the smoke login failed"),
        (ExitCode.LEFTOVERS, "teardown left something behind"),
        (ExitCode.CLOUD, "a cloud or cluster API refused (credentials, permission, project, zone, operation)"),
        (ExitCode.BUSY, "another up, rollback or down of the environment is running (it holds the lease)"),
        (ExitCode.UNVERIFIED, "an image is unsigned, signed by another key, or its attestations do not match"),
        (ExitCode.INTERRUPTED, "interrupted"),
    ]
)


def reports_errors(command: Callable) -> Callable:
    """Turn a DeployError into one line on stderr and its exit code; bugs keep their traceback.

    With `--output json` the failure is also one JSON document on stdout. Put it above every other
    decorator but the click command's, so option handling is covered too.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DeployError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.details:
                click.echo(exc.details, err=True)
            if kwargs.get("output") == "json":
                from deploy import output as report

                click.echo(report.dumps(report.failed(click.get_current_context().info_name or "", exc)), nl=False)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(ExitCode.INTERRUPTED)

    return wrapper


def environment_options(command: Callable) -> Callable:
    """--env and --config, resolved into an Environment passed as `environment`."""

    @click.option(
        "--env",
        "env_name",
        default="local",
        show_default=True,
        envvar="K8SDEPLOY_ENV",
        help="Environment from the configuration file.",
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_CONFIG,
        show_default="./k8sdeploy.toml",
        envvar="K8SDEPLOY_CONFIG",
        help="Configuration file.",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, env_name: str, config_path: Path, **kwargs: Any) -> Any:
        environment: Environment = load_environment(env_name, config_path)
        return command(*args, environment=environment, **kwargs)

    return wrapper


def output_option(command: Callable) -> Callable:
    """--output text|json: json is one document on stdout (deploy/schemas/output.schema.json)."""
    return click.option(
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: one JSON document on stdout (deploy/schemas/output.schema.json).",
    )(command)


# Options more than one command takes, written once.
source_option = click.option(
    "--source",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default="the working directory",
    help="The git checkout to build.",
)
wait_timeout_option = click.option(
    "--wait-timeout",
    default=180,
    show_default=True,
    type=click.IntRange(1),
    help="Seconds to wait for every service to be ready.",
)
no_smoke_option = click.option("--no-smoke", is_flag=True, help="Skip the smoke login after the services are ready.")
build_record_option = click.option(
    "--build-record",
    "record_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Build record with the images.  [default: .k8sdeploy/builds/ENV.json]",
)
key_option = click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sign the images with this private key (PEM).  [default: $K8SDEPLOY_SIGNING_KEY, or the environment's "
    "signing_key; none: unsigned]",
)


def layout_option(verb: str) -> Callable:
    """--layout, as the Choice of the layouts, defaulting to the environment's."""
    return click.option(
        "--layout", "layout_name", type=click.Choice(LAYOUTS), help=f"Layout to {verb}.  [default: the environment's]"
    )


def interactive(environ: Mapping[str, str] = os.environ, stdin: TextIO | None = sys.stdin) -> bool:
    """Questions may be asked only of a person: stdin is a terminal and CI is not set."""
    return bool(stdin is not None and stdin.isatty() and not environ.get("CI"))


def confirms(question: str) -> Callable:
    """--yes for a destructive command: without it, ask on a terminal and refuse anywhere else (exit 2).

    Put it below @environment_options: the question names the environment.
    """

    def decorate(command: Callable) -> Callable:
        @click.option("--yes", "-y", is_flag=True, help="Do it without asking (required when not interactive).")
        @functools.wraps(command)
        def wrapper(*args: Any, yes: bool, **kwargs: Any) -> Any:
            if not yes:
                environment = kwargs.get("environment")
                text = question.format(env=getattr(environment, "name", "?"))
                if not interactive(os.environ, sys.stdin):
                    raise click.UsageError(
                        f"{text} Not asking: this run is not interactive (no terminal, or CI "
                        "is set); pass --yes to go ahead"
                    )
                if not click.confirm(text, err=True):
                    raise DeployError("not confirmed; nothing was changed", "answer y, or pass --yes")
            return command(*args, **kwargs)

        return wrapper

    return decorate
