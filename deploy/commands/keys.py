"""`keys rotate` and `keys list`: the keys that prove who calls whom inside the suite."""

from __future__ import annotations

import click

from deploy.commands.common import EXIT_CODES_HELP, environment_options, reports_errors, say
from deploy.model.environments import Environment


@click.group(epilog=EXIT_CODES_HELP)
def keys() -> None:
    """The keys that prove who calls whom inside the suite (internal tokens; kept by k8sdeploy per environment)."""


@keys.command("rotate", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
def keys_rotate(environment: Environment) -> None:
    """Add a new key and apply it to the running deployment; the previous key still verifies, older ones go.

    No part restarts: each reads its key file again. The parts sign with the new key once every part can have read
    it: at once on the local target, after two minutes on Kubernetes (the kubelet's refresh of Secret volumes).
    """
    import time

    from deploy.compose import make_runner

    rotated = make_runner(environment, say).rotate_keys()
    say(f"rotated the identity keys of environment {environment.name}")
    for line in rotated.describe(int(time.time())):
        click.echo(line)


@keys.command("list", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
def keys_list(environment: Environment) -> None:
    """The environment's identity keys, newest first: which signs, which only verifies (no key material)."""
    import time

    from deploy.compose import kit

    identity = kit(environment, say).identity.read()
    if identity is None:
        say(f"environment {environment.name} has no identity keys yet; `k8sdeploy up` makes the first")
        return
    for line in identity.describe(int(time.time())):
        click.echo(line)
