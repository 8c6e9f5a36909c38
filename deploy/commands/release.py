"""`release`: move the `latest` tag of the environment's registry to a version's images."""

from __future__ import annotations

import click

from deploy.commands.common import (
    EXIT_CODES_HELP,
    environment_options,
    output_option,
    print_document,
    reports_errors,
    say,
)
from deploy.model.environments import Environment


@click.command("release", epilog=EXIT_CODES_HELP)
@click.argument("version")
@reports_errors
@environment_options
@output_option
def release_command(environment: Environment, version: str, output: str) -> None:
    """Move the `latest` tag of the six images in the environment's registry to VERSION's digests.

    The only way `latest` moves. Every image must be published under VERSION already; otherwise
    nothing moves and it exits 3.
    """
    from deploy import output as report
    from deploy.compose import release

    moved = release(environment, version, say)
    if output == "json":
        print_document(report.released(environment.name, version, moved))
        return
    for m in moved:
        click.echo(f"{m.repository}:latest@{m.digest}")
