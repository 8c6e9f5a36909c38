"""The `k8sdeploy` entry point."""

from click.testing import CliRunner

from cli import main
from deploy import __version__


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"k8sdeploy, version {__version__}\n"


def test_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "auth microservice suite" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["deploy-everything"])
    assert result.exit_code == 2
    assert "No such command" in result.output
