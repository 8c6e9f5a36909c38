"""The `k8sdeploy` entry point."""

from cli import main
from deploy import __version__
from tests.helpers import k8sdeploy


def test_version() -> None:
    result = k8sdeploy("--version")
    assert result.exit_code == 0
    assert result.output == f"k8sdeploy, version {__version__}\n"


def test_help() -> None:
    result = k8sdeploy("--help")
    assert result.exit_code == 0
    assert "auth microservice suite" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = k8sdeploy("deploy-everything")
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_every_command_explains_its_exit_codes() -> None:
    from deploy.model.errors import ExitCode

    for name in main.list_commands(None):
        result = k8sdeploy(name, "--help")
        assert result.exit_code == 0, name
        assert "Exit codes:" in result.output, name
        for code in ExitCode:
            assert f"\n    {code.value:<4}" in result.output, (name, code)
