"""`release`: move the `latest` tag of the environment's registry to a version's images; `promote`: deploy a release
recorded in one environment to another, by digest."""

from __future__ import annotations

from pathlib import Path

import click

from deploy.commands.common import (
    EXIT_CODES_HELP,
    config_option,
    environment_options,
    key_option,
    no_smoke_option,
    output_option,
    passphrase_prompt,
    print_document,
    reports_errors,
    say,
    wait_timeout_option,
)
from deploy.model.environments import Environment, load_environment


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


@click.command("promote", epilog=EXIT_CODES_HELP)
@reports_errors
@click.option("--from", "source_name", required=True, help="The environment whose recorded release is promoted.")
@click.option("--to", "target_name", required=True, help="The environment it is deployed to.")
@config_option
@click.option("--version", "version", help="The version to promote.  [default: the source's newest release]")
@click.option("--force", is_flag=True, help="Promote although the release failed a gate of the source (recorded).")
@click.option("--approved-by", default="", help="Who approved it: one of the target's `approvers`, where it has them.")
@key_option
@wait_timeout_option
@no_smoke_option
@output_option
def promote(
    source_name: str,
    target_name: str,
    config_path: Path,
    version: str | None,
    force: bool,
    approved_by: str,
    key_path: Path | None,
    wait_timeout: int,
    no_smoke: bool,
    output: str,
) -> None:
    """Deploy a release recorded in --from to --to: exactly its images, by digest, nothing rebuilt.

    The images are copied into --to's registry under their version tags (blobs it has are skipped, blobs
    of the same registry mounted) with their signatures and attestations, signed there with --to's
    signing key (--key, $K8SDEPLOY_SIGNING_KEY or its signing_key) and attested as a promotion, checked
    against --to's `verify`, then rendered for --to, applied, waited for and smoke-tested as `up` does,
    and recorded with where they came from. The release must have passed its checks in --from (ready,
    and the smoke login where --from runs it) and, with --to's `promote_after`, served that long there;
    --force goes past those (recorded). A promote of the release --to runs already does nothing.
    """
    from deploy import output as report
    from deploy.attest.keys import signing_key
    from deploy.compose import promote_release

    source, target = load_environment(source_name, config_path), load_environment(target_name, config_path)
    key = signing_key(key_path, target.signing_key, warn=say, prompt=passphrase_prompt())
    promotion, result = promote_release(source, target, say, key, version, force, approved_by, no_smoke, wait_timeout)
    if result is None:
        if output == "json":
            print_document(report.unchanged(target.name, promotion.release.version, promotion.promoted_from))
        return
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.durations.items())
    say(f"{target.name}: {result.version} of {source.name} is up ({timings})")
    if output == "json":
        print_document(report.deployed("promote", result, target.name))
        return
    click.echo(f"gateway: {result.url}")
