"""The images and what is made of them: `build`, `bases`, `render`, `verify` and `keygen` (the key that signs them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from deploy.commands.common import (
    EXIT_CODES_HELP,
    allow_dirty_option,
    build_options,
    build_record_option,
    builder_option,
    environment_options,
    key_option,
    output_option,
    print_document,
    reports_errors,
    say,
    source_option,
)
from deploy.model.environments import LAYOUTS, Environment
from deploy.model.images import IMAGE_NAMES, BuildRecord, build_record_path
from deploy.model.version import CHANNELS
from deploy.render.diagram import mermaid
from deploy.render.layout import build_layout
from deploy.render.objects import external_server, render


@click.command(epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
@click.option(
    "--registry",
    metavar="HOST[:PORT]/PATH",
    help="Push here. Default: the environment's registry; none means the local Docker Engine.",
)
@builder_option("oci: daemonless, reproducible layers; docker: the Docker Engine from generated Dockerfiles.")
@click.option(
    "--channel",
    "channels",
    type=click.Choice(CHANNELS),
    multiple=True,
    help="Also move this tag to the new images (the version tag is always pushed).",
)
@allow_dirty_option("Publish uncommitted changes to a non-local registry.")
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
    from deploy.compose import build as build_images
    from deploy.runner import Stopwatch

    options = build_options(
        environment,
        source,
        registry=registry,
        builder=builder,
        channels=channels,
        allow_dirty=allow_dirty,
        key_path=key_path,
    )
    watch = Stopwatch()
    with watch.stage("build"):
        record = build_images(environment, options, say, record_path)
    if output == "json":
        print_document(report.built(record, environment.name, watch.durations))
        return
    for name in IMAGE_NAMES:
        click.echo(record.images[name].ref)


@click.command("render", epilog=EXIT_CODES_HELP)
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
    layout = build_layout(
        layout_name or environment.layout,
        environment.database,
        ephemeral=environment.ephemeral_data,
        port_base=environment.kind_table.port_base(environment.gateway_port),
        server=external_server(environment),
    )
    if output_format == "mermaid":
        click.echo(mermaid(layout, environment.service_type, environment.gateway_port), nl=False)
        return
    from deploy.compose import database_image
    from deploy.render.credentials import mysql_secret

    record = BuildRecord.load(record_path or build_record_path(environment.name))
    server = database_image(environment, layout.name, say, publish=False)
    rendered = render(
        environment, layout.name, record.images, record.version, mysql_secret=mysql_secret(), database_image=server
    )
    for note in rendered.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(rendered.yaml if output_format == "yaml" else rendered.to_json(), nl=False)


@click.command("verify", epilog=EXIT_CODES_HELP)
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
    found = verify_images(environment, images, say)
    for checked in found:
        promoted = f"; promoted from {checked.promoted_from}" if checked.promoted_from else ""
        click.echo(
            f"{checked.name}  {checked.digest}  signed ({checked.signature}); attested: {len(checked.attestations)}"
            + promoted
        )
    say(f"{what}: all {len(images)} images verified")
    elsewhere = [checked for checked in found if checked.home != images[checked.name].repository]
    if elsewhere and environment.verify is not None:  # how cosign finds them: its COSIGN_REPOSITORY convention
        first = elsewhere[0]
        say(
            "their signatures are kept apart from the images; cosign finds them with COSIGN_REPOSITORY, e.g. "
            f"COSIGN_REPOSITORY={first.home} cosign verify --key {environment.verify.key} "
            f"{images[first.name].repository}@{first.digest}"
        )


@click.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--prefix",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("cosign"),
    show_default=True,
    help="Write PREFIX.key (private, mode 0600) and PREFIX.pub.",
)
@click.option(
    "--in-work-tree", is_flag=True, help="Write the private key into a git work tree even where git does not ignore it."
)
@reports_errors
def keygen(prefix: Path, in_work_tree: bool) -> None:
    """Make an ECDSA P-256 key pair to sign images with; the private key is written, never printed.

    \b
    PREFIX.pub is what `cosign verify --key` and the environments' `verify = { key = ... }` read;
    PREFIX.key signs (`build --key`, or its contents in $K8SDEPLOY_SIGNING_KEY). Existing files are refused, and so
    is a private key in a git work tree that git does not ignore (the checkout ignores *.key).
    """
    from deploy.attest.keys import generate, write_pair

    private, public = write_pair(generate(), prefix, in_work_tree)
    say(f"wrote {private} (the private key: keep it secret) and {public}")
    click.echo(public)


@click.command("bases", epilog=EXIT_CODES_HELP)
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

    published = publish_bases(registry, say)
    pinned = {name: ref for name, ref in environment.bases.items() if name in published.pins}
    if pinned and pinned != published.pins:
        say(
            f"environment {environment.name} pins other bases now ({', '.join(sorted(pinned))}); the table "
            "below replaces its entries"
        )
    if output == "json":
        from deploy import output as report

        print_document(report.bases(published, environment.name))
        return
    say(f"paste into k8sdeploy.toml, below [environments.{environment.name}]:")
    click.echo(published.toml(environment.name), nl=False)
