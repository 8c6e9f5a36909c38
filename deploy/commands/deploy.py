"""What changes what an environment runs: `up`, `dev`, `diff` (what `up` would change), `rollback` and `down`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from deploy.commands.common import (
    EXIT_CODES_HELP,
    allow_dirty_option,
    build_options,
    builder_option,
    confirms,
    environment_options,
    key_option,
    layout_option,
    no_smoke_option,
    output_option,
    print_document,
    reports_errors,
    say,
    source_option,
    wait_timeout_option,
)
from deploy.model.environments import Environment
from deploy.model.errors import ExitCode

if TYPE_CHECKING:
    from deploy.users import Users


@click.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@layout_option("deploy")
@builder_option("How to build the images (see `k8sdeploy build --help`).")
@allow_dirty_option("Deploy uncommitted changes to a non-local environment.")
@wait_timeout_option
@no_smoke_option
@source_option
@key_option
@click.option(
    "--rollback-on-failure",
    is_flag=True,
    help="When waiting or the smoke test fails, put the last recorded release back (and still exit 5 or 6).",
)
@click.option(
    "--build-in-place",
    is_flag=True,
    help="Build and deploy here although the environment takes releases by `promote` (its promote_from).",
)
@output_option
def up(
    environment: Environment,
    layout_name: str | None,
    builder: Literal["oci", "docker"],
    allow_dirty: bool,
    wait_timeout: int,
    no_smoke: bool,
    source: Path,
    key_path: Path | None,
    rollback_on_failure: bool,
    build_in_place: bool,
    output: str,
) -> None:
    """Build, render, apply, wait and smoke-test, record the release; print the gateway URL and the demo credentials.

    Run again with nothing changed, it changes nothing and says so. Switching --layout removes the
    other layout's objects. Exits 3, 4, 5 or 6 when building, applying, waiting or the smoke test fails
    (with --rollback-on-failure, 5 or 6 after the previous release is back and has passed its checks).
    With the environment's `verify` set, exits 10 before applying anything when an image is not signed by
    its key (see `k8sdeploy verify`).
    """
    from deploy import output as report
    from deploy.compose import make_runner

    layout = layout_name or environment.layout
    options = build_options(environment, source, builder=builder, allow_dirty=allow_dirty, key_path=key_path)
    runner = make_runner(environment, say, options=options, no_smoke=no_smoke, wait_timeout=wait_timeout)
    result, users = runner.up(layout, rollback_on_failure, build_in_place)
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.durations.items())
    say(f"{environment.name}: {layout} version {result.version} is up ({timings})")
    if output == "json":
        print_document(report.deployed("up", result, environment.name))
        return
    print_way_in(environment, result.url, users)


def print_way_in(environment: Environment, url: str, users: Users) -> None:
    """`up`'s text output: the gateway and the demo users' logins, or how to add a user when none is known."""
    click.echo(f"gateway: {url}")
    for user in users.demo:
        click.echo(f"  log in as {user.email} / {user.password}")
    if not users.demo:
        say(
            f"no user of environment {environment.name} has a known password; add one with "
            f"`k8sdeploy user add EMAIL --role admin --env {environment.name}`"
        )


@click.command("dev", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@layout_option("deploy")
@click.option("--down-on-exit", is_flag=True, help="Remove the deployment when watching stops.")
@wait_timeout_option
@no_smoke_option
@source_option
def dev(
    environment: Environment, layout_name: str | None, down_on_exit: bool, wait_timeout: int, no_smoke: bool,
    source: Path,
) -> None:  # fmt: skip
    """Deploy as `up` does, then serve every saved change; on the local engine the logs stream.

    \b
    Local target: a service's code, templates or migrations: that service's
    process starts again in its container (the checkout is bound into it),
    the others keep serving. The gateway's Lua: nginx reloads; its nginx.conf
    template: it is rendered again first.
    Kubernetes targets: the images a saved file changed are built and pushed
    (their new layer, config and manifest) and their workloads' image set by
    digest; the rollout is followed.
    requirements/app.lock: the six images are built again (both).
    A change that breaks a service is diagnosed (its last log lines) and the
    loop keeps watching; the next good save brings it back. Ctrl-C stops
    watching and leaves the deployment running (unless --down-on-exit). The
    deploys are recorded as dev releases; `rollback` never goes back to one
    unless named.
    """

    from deploy.compose import make_dev
    from deploy.output import log_printer
    from deploy.runner import UpResult

    def serving(result: UpResult) -> None:
        click.echo(f"gateway: {result.url}")

    options = build_options(environment, source, allow_dirty=True, signed=environment.dev)  # dev = true: signed
    loop = make_dev(
        environment, layout_name or environment.layout, say, log_printer(), serving, options, no_smoke, wait_timeout
    )
    loop.run()
    if down_on_exit:
        for name in loop.runner.down(volumes=False):
            say(f"removed {name}")


@click.command("diff", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@layout_option("compare")
@allow_dirty_option("Compare uncommitted changes for a non-local environment.")
@source_option
@output_option
def diff_command(
    environment: Environment, layout_name: str | None, allow_dirty: bool, source: Path, output: str
) -> None:
    """Show what `k8sdeploy up` would change, changing nothing.

    \b
    Builds the six images (published nowhere: their digests follow from the
    layers) and says which the registry or engine lacks; renders the layout
    and compares it with what runs: on Kubernetes by server-side apply with
    dryRun=All as k8sdeploy's field manager, locally against the running
    containers. Each object is create, update (the fields, old -> new),
    replace or delete (prune); fields another field manager set are drift,
    said with whether `up` takes them back. A Secret shows its keys, never
    its values. Exits 0 when `up` would change nothing, 1 when it would.
    """
    from deploy import output as report
    from deploy.compose import make_runner

    options = build_options(environment, source, allow_dirty=allow_dirty, signed=False)
    changes = make_runner(environment, say, options=options).diff(layout_name or environment.layout)
    if output == "json":
        print_document(report.changes(changes))
    else:
        for line in changes.lines():
            click.echo(line)
        if not changes.changed:
            click.echo(f"{environment.name}: up would change nothing ({changes.layout}, version {changes.version})")
    sys.exit(ExitCode.CHANGES if changes.changed else ExitCode.OK)


@click.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@click.option(
    "--to",
    "version",
    metavar="VERSION",
    help="The recorded version to put back.  [default: the one before the current]",
)
@click.option(
    "--restore",
    is_flag=True,
    help="Put back each database ahead of the release's schema from the copy kept before its migration (rows "
    "written since are lost), instead of keeping or downgrading it.",
)
@wait_timeout_option
@no_smoke_option
@output_option
@confirms("Replace what environment {env} runs with a recorded release?")
def rollback(
    environment: Environment, version: str | None, restore: bool, wait_timeout: int, no_smoke: bool, output: str
) -> None:
    """Put a recorded release back by its image digests (nothing is built), wait and smoke-test it.

    First each database's schema is brought within what the release's code works with, each step said
    before it runs: kept (expand steps only), downgraded past contract steps with the running image, or
    with --restore put back from the copy kept before its migration.

    The images must still be where the release found them (the local engine, or the registry). Asks
    first on a terminal; elsewhere (no terminal, or CI set) it needs --yes. Exits 4, 5 or 6 when
    applying, waiting or the smoke test fails, 2 when the version is not recorded, 10 (nothing applied)
    when the environment sets `verify` and an image of the release is not signed by its key.
    """
    from deploy import output as report
    from deploy.compose import make_runner

    result = make_runner(environment, say, no_smoke=no_smoke, wait_timeout=wait_timeout).rollback(version, restore)
    say(f"{environment.name}: rolled back to {result.layout} version {result.version}")
    if output == "json":
        print_document(report.deployed("rollback", result, environment.name))
        return
    click.echo(f"gateway: {result.url}")


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--volumes", is_flag=True, help="Also remove persistent volumes (claims), losing their data.")
@click.option(
    "--keep-cluster",
    is_flag=True,
    help="gke: keep the cluster (and, without --volumes, the claims); remove everything else.",
)
@reports_errors
@environment_options
@output_option
@confirms("Remove everything environment {env} deployed?")
def down(environment: Environment, volumes: bool, keep_cluster: bool, output: str) -> None:
    """Remove everything this environment deployed, and only that; print what was removed.

    On gke the cluster goes too, unless --keep-cluster; then Compute is audited for load balancer
    pieces, firewall rules and disks left behind. Running it again is a no-op. Exits 7 when something
    is left behind. Asks first on a terminal; elsewhere (no terminal, or CI set) it needs --yes.
    The release history stays (`k8sdeploy history`), and so do the pushed images and their registry
    (an Artifact Registry repository too).
    """
    from deploy import output as report
    from deploy.compose import make_runner

    removed = make_runner(environment, say, keep_cluster=keep_cluster).down(volumes)
    say_what_stays(environment)
    if output == "json":
        print_document(report.removed(environment.name, removed))
        return
    for removed_name in removed:
        click.echo(f"removed {removed_name}")
    if not removed:
        say(f"nothing of environment {environment.name} to remove")


def say_what_stays(environment: Environment) -> None:
    """After `down`: the images stay, and where (an Artifact Registry repository, with how to delete it)."""
    from deploy.compose import repository_of

    repository = repository_of(environment, say)
    if repository is not None:
        name = repository.name
        say(
            f"left Artifact Registry repository {name} and its images: they outlive the environment (delete it "
            f"with `gcloud artifacts repositories delete {name.repository} --location {name.location} "
            f"--project {name.project}`)"
        )
    elif environment.registry:
        say(f"left the images in {environment.registry}: k8sdeploy never deletes what it pushed")
