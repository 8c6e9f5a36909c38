"""What an environment runs and ran, and what it lacks: `status`, `logs`, `smoke`, `history`, `backups` and `doctor`
(they change nothing)."""

from __future__ import annotations

import sys

import click

from deploy.commands.common import (
    EXIT_CODES_HELP,
    environment_options,
    layout_option,
    output_option,
    print_document,
    reports_errors,
    say,
)
from deploy.model.environments import Environment
from deploy.model.errors import ExitCode
from deploy.model.schemas import heads


@click.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@output_option
def status(environment: Environment, output: str) -> None:
    """Show each service: its image version and digest, ready or not and why.

    Exits 0 when every service is ready, 5 when any is not (or nothing runs). Each image that differs
    from the release recorded last, and (on Kubernetes) each object whose fields someone else changed
    (kubectl edit, patch, scale), is a `drift:` line; the next `up` puts the rendered fields back.
    """
    from deploy import output as report
    from deploy.compose import make_runner

    rows, release, drifted = make_runner(environment, say).status()
    if output == "json":
        print_document(report.status(environment.name, rows, release, drifted))
        if not rows or not all(row.ready for row in rows):
            sys.exit(ExitCode.NOT_READY)
        return
    if not rows:
        say(f"nothing of environment {environment.name} is deployed")
        sys.exit(ExitCode.NOT_READY)
    for line in report.status_table(rows):
        click.echo(line)
    if release is not None:
        click.echo(f"schemas of release {release.version}: {heads(release.schemas)}")
    for line in drifted:
        click.echo(f"drift: {line}")
    if not all(row.ready for row in rows):
        sys.exit(ExitCode.NOT_READY)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("service")
@click.option("--lines", "-n", default=50, show_default=True, help="How many of the last lines.")
@reports_errors
@environment_options
def logs(environment: Environment, service: str, lines: int) -> None:
    """Print the recent logs of SERVICE (frontend, person, ..., nginx-lua)."""
    from deploy.compose import kit

    click.echo(kit(environment, say).target.logs(service, lines), nl=False)


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--url", help="The gateway's URL; by default the deployed environment's.")
@reports_errors
@environment_options
def smoke(environment: Environment, url: str | None) -> None:
    """Log in through the gateway as the environment's smoke users and walk the flow; name the hop that fails.

    Exits 6 when a check fails.
    """
    from deploy.compose import make_runner

    report = make_runner(environment, say).smoke_test(url)
    click.echo(f"smoke test passed at {report.url}: {len(report.checks)} checks")


@click.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@output_option
def history(environment: Environment, output: str) -> None:
    """List the releases recorded by each successful `up` and `rollback`, newest first."""
    from deploy import output as report
    from deploy.compose import history as history_of

    releases = history_of(environment, say).releases()
    if output == "json":
        print_document(report.history(environment.name, releases))
        return
    if not releases:
        say(f"no release of environment {environment.name} is recorded")
        return
    for line in report.history_table(releases):
        click.echo(line)


@click.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
def backups(environment: Environment) -> None:
    """List the copies of each service's SQLite database kept before each migration (the last five).

    \b
    Each row: the service, when the copy was taken, the migration it was taken before (revisions from
    and to), the release whose `up` migrated, its size in bytes and the file in the service's data volume.
    `rollback --restore` puts the newest copy at the release's revision back. Asked of the running
    services; local target only for now.
    """
    from deploy.compose import make_runner
    from deploy.output import columns

    table = [("SERVICE", "TAKEN", "MIGRATION", "RELEASE", "BYTES", "FILE")]
    for b in make_runner(environment, say).backups():
        table.append((b.service, b.taken, f"{b.before} -> {b.after}", b.release or "-", str(b.size), b.path))
    for line in columns(table):
        click.echo(line)


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--for",
    "purpose",
    type=click.Choice(["up", "diff", "promote"]),
    default="up",
    show_default=True,
    help="What the caller is about to run: the checks and permissions of that command.",
)
@layout_option("check")
@reports_errors
@environment_options
@output_option
def doctor(environment: Environment, purpose: str, layout_name: str | None, output: str) -> None:
    """Check what a deploy of the environment needs, before anything is created; change nothing.

    \b
    One line per check, with its fix: the TLS certificate (and the names of
    `hosts` it must cover), the verify and signing keys, the pinned bases; on
    gke the project's APIs, the caller's permissions (asked of IAM), the
    regional quotas a new cluster takes, the nodes' room for the suite beside
    GKE's own pods, and the CI jobs' workload identity providers. `up` runs the
    first three itself before it builds or creates anything. Exits 0 when a
    deploy can go through, 11 when something is missing.
    """
    from deploy import output as report
    from deploy.compose import make_runner

    findings = make_runner(environment, say).doctor(layout_name or environment.layout, purpose)
    if output == "json":
        print_document(report.doctor(environment.name, purpose, findings))
    else:
        for finding in findings:
            click.echo(finding.line())
    if not all(finding.ok for finding in findings):
        if output != "json":
            lacking = sum(not finding.ok for finding in findings)
            say(f"environment {environment.name} is not ready for `{purpose}`: {lacking} check(s) failed")
        sys.exit(ExitCode.LACKING)
