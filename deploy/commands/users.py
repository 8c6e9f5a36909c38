"""`user add`, `user remove` and `user list`: who may log in to an environment."""

from __future__ import annotations

import sys

import click

from deploy.commands.common import EXIT_CODES_HELP, environment_options, reports_errors, say
from deploy.model.environments import Environment


@click.group(epilog=EXIT_CODES_HELP)
def user() -> None:
    """The environment's users (kept by k8sdeploy in the Secret k8sdeploy-users as scrypt hashes; local: a 0600
    file)."""


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
    from deploy.users import password_for
    from suitekit.emails import normalise_email

    password = password_for(sys.stdin.readline().rstrip("\n") if password_stdin else None)
    later = make_runner(environment, say).change_users(lambda users: users.add(email, role, password))
    say(f"added {normalise_email(email)} ({role}) to environment {environment.name}")
    if later:
        say(f"run `k8sdeploy up --env {environment.name}` to start the services with it")
    if not password_stdin:
        click.echo(f"password: {password}")


@user.command("remove", epilog=EXIT_CODES_HELP)
@click.argument("email")
@reports_errors
@environment_options
def user_remove(environment: Environment, email: str) -> None:
    """Remove a user added with `user add`: its logins fail once the services have read the users again.

    Kubernetes targets: the pods of authentication and authorisation are replaced to read them (the
    environment must be up). Local target: the next `k8sdeploy up` removes it from the database.
    """
    from deploy.compose import make_runner
    from suitekit.emails import normalise_email

    later = make_runner(environment, say).change_users(lambda users: users.remove(email))
    say(f"removed {normalise_email(email)} from environment {environment.name}")
    if later:
        say(f"run `k8sdeploy up --env {environment.name}` to remove it from the running services")


@user.command("list", epilog=EXIT_CODES_HELP)
@reports_errors
@environment_options
def user_list(environment: Environment) -> None:
    """Print the environment's users, one a line: id, address, role and kind (demo, smoke or added)."""
    from deploy.compose import make_runner

    users = make_runner(environment, say).kept_users()
    for found in sorted(users.users, key=lambda u: u.id):
        click.echo(f"{found.id}\t{found.email}\t{found.role}\t{users.kind(found)}")
