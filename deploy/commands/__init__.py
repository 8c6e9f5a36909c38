"""The `k8sdeploy` command line: the `main` group and its commands, one module per group of commands; what they
share (exit codes, --env/--config, --output, --yes, progress, the build options) is in common.py. A command maps
its flags to a call of the library (deploy/compose.py makes the runner) and prints what it returns.

LOADING (cli.py): these modules make a few hundred thousand objects (pydantic's schemas, click's) that live as long
as the process; the collector would scan them again and again while they load, and once more at exit (40 ms of a
no-change `up`). cli.py loads this package with the collector off, then freezes what it made (`gc.freeze`); what a
command makes is collected as usual."""

from __future__ import annotations

import click

from deploy import __version__
from deploy.commands.common import EXIT_CODES_HELP, Entry
from deploy.commands.deploy import dev, diff_command, down, rollback, up
from deploy.commands.images import bases_command, build, keygen, render_command, verify_command
from deploy.commands.inspect import backups, doctor, history, logs, smoke, status
from deploy.commands.keys import keys
from deploy.commands.release import promote, release_command
from deploy.commands.users import user


@click.group(cls=Entry, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="k8sdeploy")
def main() -> None:
    """Deploy the auth microservice suite (an nginx+Lua gateway and five Python services)."""


COMMANDS = (
    *(status, logs, smoke, history, backups, doctor),
    *(up, dev, diff_command, rollback, down),
    *(build, bases_command, render_command, verify_command, keygen),
    release_command,
    promote,
    user,
    keys,
)
for command in COMMANDS:
    main.add_command(command)
