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


def test_every_command_explains_its_exit_codes() -> None:
    from deploy.model.errors import ExitCode

    for name in main.list_commands(None):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Exit codes:" in result.output, name
        for code in ExitCode:
            assert f"\n    {code.value:<4}" in result.output, (name, code)
