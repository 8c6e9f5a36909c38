"""The `k8sdeploy` command line: parse, make the runner (deploy/compose.py), call it, print. What every command
shares (exit codes, --env/--config, --output, --yes) is in deploy/commandline.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import click

from deploy import __version__
from deploy.commandline import (
    EXIT_CODES_HELP,
    build_record_option,
    confirms,
    environment_options,
    key_option,
    layout_option,
    no_smoke_option,
    output_option,
    reports_errors,
    source_option,
    wait_timeout_option,
)
from deploy.model.environments import LAYOUTS, Environment
from deploy.model.errors import ExitCode
from deploy.model.images import IMAGE_NAMES, BuildRecord, build_record_path
from deploy.model.version import CHANNELS
from deploy.render.diagram import mermaid
from deploy.render.layout import build_layout
from deploy.render.objects import render


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="k8sdeploy")
def main() -> None:
    """Deploy the auth microservice suite (an nginx+Lua gateway and five Python services)."""


def say(line: str) -> None:
    """Progress goes to stderr; stdout carries only data."""
    click.echo(line, err=True)


@main.command(epilog=EXIT_CODES_HELP)
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
        click.echo(report.dumps(report.status(environment.name, rows, release, drifted)), nl=False)
        if not rows or not all(row.ready for row in rows):
            sys.exit(ExitCode.NOT_READY)
        return
    if not rows:
        say(f"nothing of environment {environment.name} is deployed")
        sys.exit(ExitCode.NOT_READY)
    for line in report.status_table(rows):
        click.echo(line)
    for line in drifted:
        click.echo(f"drift: {line}")
    if not all(row.ready for row in rows):
        sys.exit(ExitCode.NOT_READY)


@main.command(epilog=EXIT_CODES_HELP)
@click.argument("service")
@click.option("--lines", "-n", default=50, show_default=True, help="How many of the last lines.")
@reports_errors
@environment_options
def logs(environment: Environment, service: str, lines: int) -> None:
    """Print the recent logs of SERVICE (frontend, person, ..., nginx-lua)."""
    from deploy.compose import stages

    click.echo(stages(environment, say).target.logs(service, lines), nl=False)


@main.command(epilog=EXIT_CODES_HELP)
@click.option("--url", help="The gateway's URL; by default the deployed environment's.")
@reports_errors
@environment_options
def smoke(environment: Environment, url: str | None) -> None:
    """Log in through the gateway as the environment's smoke users and walk the flow; name the hop that fails.

    Exits 6 when a check fails.
    """
    from deploy.compose import stages
    from deploy.smoke import HttpSmoke
    from deploy.users import wanted

    found = stages(environment, say)
    url = url or found.target.gateway_url()
    report = HttpSmoke(say=say, users=wanted(environment, found.users.read()).smoke).run(url)
    click.echo(f"smoke test passed at {report.url}: {len(report.checks)} checks")


@main.command(epilog=EXIT_CODES_HELP)
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
    from deploy.compose import artifact_repository, make_runner
    from deploy.model.errors import ConfigError

    if keep_cluster and environment.target != "gke":
        raise ConfigError(
            f"--keep-cluster applies to gke environments; {environment.name} is {environment.target}",
            "leave out --keep-cluster",
        )
    removed = make_runner(environment, say, keep_cluster=keep_cluster).down(volumes)
    repository = artifact_repository(environment, say)
    if repository is not None:
        name = repository.name
        say(
            f"left Artifact Registry repository {name} and its images: they outlive the environment (delete it "
            f"with `gcloud artifacts repositories delete {name.repository} --location {name.location} "
            f"--project {name.project}`)"
        )
    elif environment.registry:
        say(f"left the images in {environment.registry}: k8sdeploy never deletes what it pushed")
    if output == "json":
        click.echo(report.dumps(report.removed(environment.name, removed)), nl=False)
        return
    for removed_name in removed:
        click.echo(f"removed {removed_name}")
    if not removed:
        say(f"nothing of environment {environment.name} to remove")


@main.command("render", epilog=EXIT_CODES_HELP)
@click.option(
    "--layout", "layout_name", metavar="|".join(LAYOUTS), help="Layout to render.  [default: the environment's]"
)
@build_record_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json", "mermaid"]),
    default="yaml",
    show_default=True,
    help="The objects as YAML or as a JSON List, or the layout as a diagram.",
)
@reports_errors
@environment_options
@output_option
def render_command(
    environment: Environment, layout_name: str | None, record_path: Path | None, output_format: str, output: str
) -> None:
    """Print the Kubernetes objects of a layout, every image pinned by digest.

    \b
    `kubectl apply -f -` takes the output as it is (the environment's namespace
    must exist). With database = "mysql", the passwords of the database users
    are derived from $K8SDEPLOY_MYSQL_SECRET. --output json is --format json.
    """
    if output == "json":
        output_format = "json"
    layout = build_layout(layout_name or environment.layout, environment.database)
    if output_format == "mermaid":
        click.echo(mermaid(layout, environment.service_type, environment.gateway_port), nl=False)
        return
    from deploy.compose import mysql_secret

    record = BuildRecord.load(record_path or build_record_path(environment.name))
    rendered = render(environment, layout.name, record.images, record.version, mysql_secret=mysql_secret())
    for note in rendered.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(rendered.yaml if output_format == "yaml" else rendered.to_json(), nl=False)


@main.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@click.option(
    "--registry",
    metavar="HOST[:PORT]/PATH",
    help="Push here. Default: the environment's registry; none means the local Docker Engine.",
)
@click.option(
    "--builder",
    type=click.Choice(["oci", "docker"]),
    default="oci",
    show_default=True,
    help="oci: daemonless, reproducible layers; docker: the Docker Engine from generated Dockerfiles.",
)
@click.option(
    "--channel",
    "channels",
    type=click.Choice(CHANNELS),
    multiple=True,
    help="Also move this tag to the new images (the version tag is always pushed).",
)
@click.option("--allow-dirty", is_flag=True, help="Publish uncommitted changes to a non-local registry.")
@source_option
@key_option
@click.option(
    "--record",
    "record_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the build record (JSON). Default: .k8sdeploy/builds/ENV.json",
)
@output_option
def build(
    environment: Environment,
    registry: str | None,
    builder: Literal["oci", "docker"],
    channels: tuple[str, ...],
    allow_dirty: bool,
    source: Path,
    key_path: Path | None,
    record_path: Path | None,
    output: str,
) -> None:
    """Build the six images and publish them under the version from git; print their tag@digest.

    With a signing key (--key, $K8SDEPLOY_SIGNING_KEY or the environment's signing_key) each image is signed
    and gets its SPDX SBOM and the build's SLSA provenance as attestations, in cosign's format beside it.
    """
    from deploy import output as report
    from deploy.attest.keys import signing_key
    from deploy.compose import artifact_repository, build_and_record
    from deploy.publish.stage import BuildOptions
    from deploy.runner import Stopwatch

    options = BuildOptions(
        source=source,
        registry=environment.registry if registry is None else registry,
        builder=builder,
        channels=channels,
        allow_dirty=allow_dirty,
        bases=environment.bases,
        signing_key=signing_key(key_path, environment.signing_key),
    )
    repository = artifact_repository(environment, say, options.registry)
    if repository is not None:
        repository.refuse_moving(channels)
        repository.ensure(environment.name)
    watch = Stopwatch()
    with watch.stage("build"):
        record = build_and_record(options, record_path or build_record_path(environment.name))
    if output == "json":
        click.echo(report.dumps(report.built(record, environment.name, watch.durations)), nl=False)
        return
    for name in IMAGE_NAMES:
        click.echo(record.images[name].ref)


@main.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@layout_option("deploy")
@click.option(
    "--builder",
    type=click.Choice(["oci", "docker"]),
    default="oci",
    show_default=True,
    help="How to build the images (see `k8sdeploy build --help`).",
)
@click.option("--allow-dirty", is_flag=True, help="Deploy uncommitted changes to a non-local environment.")
@wait_timeout_option
@no_smoke_option
@source_option
@key_option
@click.option(
    "--rollback-on-failure",
    is_flag=True,
    help="When waiting or the smoke test fails, put the last recorded release back (and still exit 5 or 6).",
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
    from deploy.attest.keys import signing_key
    from deploy.compose import make_runner
    from deploy.model.environments import refuse_plain_http
    from deploy.publish.stage import BuildOptions

    refuse_plain_http(environment, say)  # before make_runner: a refusal reaches neither engine nor cloud
    layout = layout_name or environment.layout
    options = BuildOptions(
        source=source,
        registry=environment.registry,
        builder=builder,
        allow_dirty=allow_dirty,
        bases=environment.bases,
        signing_key=signing_key(key_path, environment.signing_key),
    )
    runner = make_runner(environment, say, options=options, no_smoke=no_smoke, wait_timeout=wait_timeout)
    result, users = runner.up(layout, rollback_on_failure)
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.durations.items())
    say(f"{environment.name}: {layout} version {result.version} is up ({timings})")
    if output == "json":
        click.echo(report.dumps(report.deployed("up", result, environment.name)), nl=False)
        return
    click.echo(f"gateway: {result.url}")
    for user in users.demo:
        click.echo(f"  log in as {user.email} / {user.password}")
    if not users.demo:
        say(
            f"no user of environment {environment.name} has a known password; add one with "
            f"`k8sdeploy user add EMAIL --role admin --env {environment.name}`"
        )


@main.command("dev", epilog=EXIT_CODES_HELP)
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

    from deploy.compose import make_dev, make_runner
    from deploy.output import log_printer
    from deploy.publish.stage import BuildOptions
    from deploy.runner import UpResult

    def serving(result: UpResult) -> None:
        click.echo(f"gateway: {result.url}")

    options = BuildOptions(source=source, registry=environment.registry, allow_dirty=True, bases=environment.bases)
    loop = make_dev(
        environment, layout_name or environment.layout, say, log_printer(), serving, options, no_smoke, wait_timeout
    )
    loop.run()
    if down_on_exit:
        for name in make_runner(environment, say).down(volumes=False):
            say(f"removed {name}")


@main.command("diff", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@layout_option("compare")
@click.option("--allow-dirty", is_flag=True, help="Compare uncommitted changes for a non-local environment.")
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
    from deploy.model.changes import to_dict
    from deploy.publish.stage import BuildOptions

    options = BuildOptions(
        source=source, registry=environment.registry, allow_dirty=allow_dirty, bases=environment.bases
    )
    changes = make_runner(environment, say, options=options).diff(layout_name or environment.layout)
    if output == "json":
        click.echo(report.dumps(to_dict(changes)), nl=False)
    else:
        for line in changes.lines():
            click.echo(line)
        if not changes.changed:
            click.echo(f"{environment.name}: up would change nothing ({changes.layout}, version {changes.version})")
    sys.exit(ExitCode.CHANGES if changes.changed else ExitCode.OK)


@main.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@output_option
def history(environment: Environment, output: str) -> None:
    """List the releases recorded by each successful `up` and `rollback`, newest first."""
    from deploy import output as report
    from deploy.compose import history as history_of

    releases = history_of(environment, say).releases()
    if output == "json":
        click.echo(report.dumps(report.history(environment.name, releases)), nl=False)
        return
    if not releases:
        say(f"no release of environment {environment.name} is recorded")
        return
    for line in report.history_table(releases):
        click.echo(line)


@main.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@click.option(
    "--to",
    "version",
    metavar="VERSION",
    help="The recorded version to put back.  [default: the one before the current]",
)
@wait_timeout_option
@no_smoke_option
@output_option
@confirms("Replace what environment {env} runs with a recorded release?")
def rollback(environment: Environment, version: str | None, wait_timeout: int, no_smoke: bool, output: str) -> None:
    """Put a recorded release back by its image digests (nothing is built), wait and smoke-test it.

    The images must still be where the release found them (the local engine, or the registry). Asks
    first on a terminal; elsewhere (no terminal, or CI set) it needs --yes. Exits 4, 5 or 6 when
    applying, waiting or the smoke test fails, 2 when the version is not recorded, 10 (nothing applied)
    when the environment sets `verify` and an image of the release is not signed by its key.
    """
    from deploy import output as report
    from deploy.compose import make_runner
    from deploy.model.environments import refuse_plain_http

    refuse_plain_http(environment, say)  # before make_runner: a refusal reaches neither engine nor cloud
    result = make_runner(environment, say, no_smoke=no_smoke, wait_timeout=wait_timeout).rollback(version)
    say(f"{environment.name}: rolled back to {result.layout} version {result.version}")
    if output == "json":
        click.echo(report.dumps(report.deployed("rollback", result, environment.name)), nl=False)
        return
    click.echo(f"gateway: {result.url}")


@main.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--prefix",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("cosign"),
    show_default=True,
    help="Write PREFIX.key (private, mode 0600) and PREFIX.pub.",
)
@reports_errors
def keygen(prefix: Path) -> None:
    """Make an ECDSA P-256 key pair to sign images with; the private key is written, never printed.

    \b
    PREFIX.pub is what `cosign verify --key` and the environments' `verify = { key = ... }` read;
    PREFIX.key signs (`build --key`, or its contents in $K8SDEPLOY_SIGNING_KEY). Existing files are refused.
    """
    from deploy.attest.keys import generate, write_pair

    private, public = write_pair(generate(), prefix)
    say(f"wrote {private} (the private key: keep it secret) and {public}")
    click.echo(public)


@main.command("verify", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@build_record_option
@click.option("--release", "running", is_flag=True, help="Check the release recorded last instead (what runs).")
def verify_command(environment: Environment, record_path: Path | None, running: bool) -> None:
    """Check that the six images are signed by the environment's `verify` key, with their attestations.

    Exits 10 naming each image that is unsigned, signed by another key, or lacks an SBOM or provenance
    attestation signed by it; `up` and `rollback` run the same check before they apply.
    """
    from deploy.compose import history as history_of
    from deploy.compose import verify_images
    from deploy.model.releases import choose

    if running:
        releases = history_of(environment, say).releases()
        release = choose(releases, releases[-1].version if releases else None)
        images, what = release.images, f"release {release.version}"
    else:
        record = BuildRecord.load(record_path or build_record_path(environment.name))
        images, what = record.images, f"build {record.version}"
    for checked in verify_images(environment, images):
        click.echo(
            f"{checked.name}  {checked.digest}  signed ({checked.signature}); attested: {len(checked.attestations)}"
        )
    say(f"{what}: all {len(images)} images verified")


@main.group(epilog=EXIT_CODES_HELP)
def user() -> None:
    """The environment's users (kept by k8sdeploy in the Secret k8sdeploy-users; local: a 0600 file)."""


@user.command("add", epilog=EXIT_CODES_HELP)
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["admin", "user"]),
    default="user",
    show_default=True,
    help="admin may add, edit and delete people; user may only view them.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin (else one is generated and printed once)."
)
@reports_errors
@environment_options
def user_add(environment: Environment, email: str, role: str, password_stdin: bool) -> None:
    """Add a user who can log in through the gateway: a real deployment's way in.

    Kubernetes targets: the pods of authentication and authorisation are replaced to read it (the
    environment must be up). Local target: the next `k8sdeploy up` starts the services with it.
    """
    from deploy.compose import make_runner
    from deploy.model.errors import ConfigError
    from deploy.users import Users, new_password, wanted

    password = sys.stdin.readline().rstrip("\n") if password_stdin else new_password()
    if len(password) < 12:
        raise ConfigError(
            "the password is shorter than 12 characters",
            "give a longer one, or leave out --password-stdin to have one generated",
        )
    runner = make_runner(environment, say)
    store = runner.stages.users
    if environment.target != "local" and not store.deployed:
        raise ConfigError(
            f"environment {environment.name} is not up",
            f"run `k8sdeploy up --env {environment.name}` first; its users live in its namespace",
        )
    with runner.holding():
        current = wanted(environment, store.read())
        users: Users = current.add(email, role, password)
        store.write(users)
    say(f"added {email.strip().lower()} ({role}) to environment {environment.name}")
    if environment.target == "local":
        say(f"run `k8sdeploy up --env {environment.name}` to start the services with it")
    if not password_stdin:
        click.echo(f"password: {password}")


@main.command("release", epilog=EXIT_CODES_HELP)
@click.argument("version")
@reports_errors
@environment_options
@output_option
def release_command(environment: Environment, version: str, output: str) -> None:
    """Move the `latest` tag of the six images in the environment's registry to VERSION's digests.

    The only way `latest` moves. Every image must be published under VERSION already; otherwise
    nothing moves and it exits 3.
    """
    from dataclasses import asdict

    from deploy import output as report
    from deploy.compose import release_latest

    moved = release_latest(environment, version, say)
    if output == "json":
        click.echo(
            report.dumps(
                {
                    "command": "release",
                    "result": "ok",
                    "environment": environment.name,
                    "version": version,
                    "images": {m.name: asdict(m) for m in moved},
                }
            ),
            nl=False,
        )
        return
    for m in moved:
        click.echo(f"{m.repository}:latest@{m.digest}")


@main.command("bases", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@click.option(
    "--registry",
    metavar="HOST[:PORT]/PATH",
    required=True,
    help="Push the bases here, as the images PATH/python and PATH/nginx.",
)
@output_option
def bases_command(environment: Environment, registry: str, output: str) -> None:
    """Build the Debian bases (python, nginx) and push them to a registry; print the table that pins them.

    \b
    Run once, as root on a machine with debootstrap (`make system-deps`): the
    bases are built from Debian bookworm the first time (about a minute each)
    and cached in ~/.cache/k8sdeploy. Each is pushed with its config and
    layers, by digest, under the tag bookworm-YYYYMMDD (the day they were built;
    immutable: that tag with another digest is refused, nothing pushed).
    stdout is the [environments.ENV.bases] table for k8sdeploy.toml; with it,
    `build` and `up` pull the bases and need neither root nor debootstrap
    (a CI runner). Pushing them again is a no-op.
    """
    from deploy.compose import publish_bases

    published = publish_bases(registry)
    pinned = {name: ref for name, ref in environment.bases.items() if name in published.pins}
    if pinned and pinned != published.pins:
        say(
            f"environment {environment.name} pins other bases now ({', '.join(sorted(pinned))}); the table "
            "below replaces its entries"
        )
    if output == "json":
        from deploy import output as report

        click.echo(report.dumps(published.to_dict(environment.name)), nl=False)
        return
    say(f"paste into k8sdeploy.toml, below [environments.{environment.name}]:")
    click.echo(published.toml(environment.name), nl=False)


if __name__ == "__main__":
    main()
