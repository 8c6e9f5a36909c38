"""The `k8sdeploy` command line: parse, assemble the stages, call one, map errors to exit codes."""

from __future__ import annotations

import click

from deploy import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="k8sdeploy")
def main() -> None:
    """Deploy the auth microservice suite (an nginx+Lua gateway and five Python services).

    The deployment commands arrive stage by stage; today the suite itself runs with
    `make run` (see the README).
    """


if __name__ == "__main__":
    main()
