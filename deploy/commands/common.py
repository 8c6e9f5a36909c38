"""What the `k8sdeploy` commands share: the exit codes in their help, a DeployError as one line and its exit code,
--env and --config resolved into an Environment, --output, --yes for what destroys, progress on stderr (`say`), the
options more than one command takes, and the one place their build flags become BuildOptions."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TextIO

import click

from deploy.model.environments import DEFAULT_CONFIG, LAYOUTS, Environment, load_environment
from deploy.model.errors import DeployError, ExitCode

if TYPE_CHECKING:
    from deploy.publish.stage import BuildOptions

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
        (ExitCode.LACKING, "doctor: something a deploy needs is missing (each named with its fix)"),
        (ExitCode.UNEXPECTED, "unexpected error (a bug): its traceback is in the crash log named"),
        (ExitCode.INTERRUPTED, "interrupted"),
    ]
)


class Entry(click.Group):
    """The `k8sdeploy` group: SIGTERM and SIGHUP stop a command as Ctrl-C does, and each command has one Reporter,
    which says its lines and reports how it fails, in this one place: a DeployError as one line and its exit code,
    an exception that escapes a command as one line, exit 70, with its traceback in a crash log (deploy/crash.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        from deploy.crash import signals_stop, threads_reported

        reporter = begin(ctx.invoked_subcommand or "")  # this command's own lines only (tests run many in one process)
        with signals_stop(), threads_reported(lambda: ctx.invoked_subcommand or ""):
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise  # usage errors: click says them (exit 2)
            except DeployError as exc:
                reporter.failed(exc)
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                sys.exit(ExitCode.INTERRUPTED)
            except Exception as exc:  # noqa: BLE001 - the one place a bug is caught
                reporter.unexpected(exc)


@dataclass
class Reporter:
    """One command's messages and its end. Each line it says goes to stderr (stdout carries only data), and the
    last is named if the command ends unexpectedly; its failure is one line on stderr (with its details) and its
    exit code, and with `--output json` also one document on stdout."""

    command: str = ""  # its path below `k8sdeploy` (`user add`)
    name: str = ""  # its own name, as the JSON document says it
    json: bool = False
    last: str = ""

    def say(self, line: str) -> None:
        self.last = line
        click.echo(line, err=True)

    def failed(self, exc: DeployError) -> NoReturn:
        click.echo(f"error: {exc}", err=True)
        if exc.details:
            click.echo(exc.details, err=True)
        if self.json:
            from deploy import output as report

            print_document(report.failed(self.name, exc))
        sys.exit(exc.exit_code)

    def unexpected(self, exc: Exception) -> NoReturn:
        from deploy.crash import unexpected

        self.failed(unexpected(exc, self.command, self.last))


_reporting = [Reporter()]  # the command running in this process (its stages' threads say through it too)


def begin(command: str) -> Reporter:
    _reporting[0] = Reporter(command=command, name=command)
    return _reporting[0]


def say(line: str) -> None:
    """A line of the running command (its Reporter's)."""
    _reporting[0].say(line)


def print_document(document: Mapping) -> None:
    """`--output json`: the command's one JSON document (made by a function of deploy/output.py) on stdout."""
    from deploy import output as report

    click.echo(report.dumps(document), nl=False)


def reports_errors(command: Callable) -> Callable:
    """Tell the command's Reporter which command fails, if it does, and whether as a JSON document (`--output
    json`): Entry.invoke reports it. Put it above every other decorator but the click command's, so option
    handling is covered too."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx, reporter = click.get_current_context(), _reporting[0]
        reporter.command, reporter.name = ctx.command_path.partition(" ")[2], ctx.info_name or ""
        reporter.json = kwargs.get("output") == "json"
        return command(*args, **kwargs)

    return wrapper


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default="./k8sdeploy.toml",
    envvar="K8SDEPLOY_CONFIG",
    help="Configuration file.",
)


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
    @config_option
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


def builder_option(help: str) -> Callable:
    """--builder oci|docker, `help` saying it for the command."""
    return click.option("--builder", type=click.Choice(["oci", "docker"]), default="oci", show_default=True, help=help)


def allow_dirty_option(help: str) -> Callable:
    """--allow-dirty, `help` saying what the command does with uncommitted changes."""
    return click.option("--allow-dirty", is_flag=True, help=help)


def build_options(
    environment: Environment,
    source: Path,
    *,
    registry: str | None = None,
    builder: Literal["oci", "docker"] = "oci",
    channels: tuple[str, ...] = (),
    allow_dirty: bool = False,
    key_path: Path | None = None,
    signed: bool = True,
) -> BuildOptions:
    """What `build`, `up`, `dev` and `diff` build with: the environment's registry (or `registry`) and bases, and,
    when `signed`, the signing key of --key, $K8SDEPLOY_SIGNING_KEY or the environment's signing_key."""
    from deploy.attest import KEY_VARIABLE
    from deploy.publish.stage import BuildOptions

    key = None
    if signed and (key_path is not None or environment.signing_key or os.environ.get(KEY_VARIABLE)):
        from deploy.attest.keys import signing_key  # cryptography is loaded only when there is a key

        key = signing_key(key_path, environment.signing_key, warn=say, prompt=passphrase_prompt())
    return BuildOptions(
        source=source,
        registry=environment.registry if registry is None else registry,
        builder=builder,
        channels=channels,
        allow_dirty=allow_dirty,
        bases=environment.bases,
        signing_key=key,
    )


def layout_option(verb: str) -> Callable:
    """--layout, as the Choice of the layouts, defaulting to the environment's."""
    return click.option(
        "--layout", "layout_name", type=click.Choice(LAYOUTS), help=f"Layout to {verb}.  [default: the environment's]"
    )


def passphrase_prompt() -> Callable[[str], str] | None:
    """Asking for an encrypted key's passphrase, on a terminal only."""
    return (lambda text: click.prompt(text, hide_input=True, err=True)) if interactive() else None


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
