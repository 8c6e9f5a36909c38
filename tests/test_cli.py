"""The `k8sdeploy` entry point."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main
from deploy import __version__
from deploy.model.errors import ExitCode
from tests.helpers import checked_stderr, k8sdeploy, valid
from tests.infra import ROOT


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


def boom(*_args: object, **_kwargs: object) -> str:
    raise ZeroDivisionError("a bug the code did not expect")


def local_config(tmp_path: Path) -> Path:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text('[environments.crash]\nlocal = {}\nlayout = "single-pod"\n')
    return config


def test_an_unexpected_exception_is_one_line_exit_70_and_a_crash_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deploy.commands.images.mermaid", boom)
    state = tmp_path / "state"
    result = k8sdeploy(
        "render",
        "--format",
        "mermaid",
        env="crash",
        config=local_config(tmp_path),
        environ={"XDG_STATE_HOME": str(state)},
    )
    assert result.exit_code == ExitCode.UNEXPECTED == 70
    line, *more = result.stderr.splitlines()
    assert more == [] and "Traceback" not in result.stderr
    assert line.startswith(
        "error: unexpected ZeroDivisionError while running `k8sdeploy render`: a bug the code did not expect; "
        f"the traceback is in {state}/k8sdeploy/crash-"
    ), line
    logged = Path(re.search(r"the traceback is in (\S+\.log);", line)[1]).read_text()
    assert "Traceback (most recent call last)" in logged and 'raise ZeroDivisionError("a bug' in logged
    assert "k8sdeploy" in logged.splitlines()[0]


def test_an_unexpected_exception_with_output_json_is_a_failed_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deploy.compose.history", boom)
    result = k8sdeploy(
        "history", "--output", "json", env="crash", config=local_config(tmp_path),
        environ={"XDG_STATE_HOME": str(tmp_path / "state")},
    )  # fmt: skip
    assert result.exit_code == 70
    document = valid(result.stdout)
    assert document["exit_code"] == 70 and document["error"]["type"] == "UnexpectedError"
    assert document["error"]["message"].startswith("unexpected ZeroDivisionError while running `k8sdeploy history`")


def render_with(program: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`k8sdeploy render --format mermaid` by `program` (cli.main() with something replaced), in a process of its
    own; its stderr checked for a traceback."""
    args = ["render", "--format", "mermaid", "--env", "crash", "--config", str(local_config(tmp_path))]
    done = subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    checked_stderr(done.stderr, args)
    return done


def test_an_unexpected_exception_in_a_process_of_its_own_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point, in its own process: the exception is raised after a progress line was said."""
    program = (
        "import cli\n"
        "from deploy.commands import common, images\n"
        "def boom(*args, **kwargs):\n"
        "    common.say('drawing the layout')\n"
        "    raise KeyError('no-such-key')\n"
        "images.mermaid = boom\n"
        "cli.main()\n"
    )
    done = render_with(program, tmp_path)
    assert done.returncode == 70, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "error: unexpected KeyError while running `k8sdeploy render` (last step: drawing the layout): 'no-such-key'; "
    )
    assert len(list((tmp_path / "state" / "k8sdeploy").glob("crash-*.log"))) == 1


def test_an_exception_that_ends_a_thread_is_one_line_too(tmp_path: Path) -> None:
    program = (
        "import threading, cli\n"
        "from deploy.commands import images\n"
        "def boom(*args, **kwargs):\n"
        "    def fail():\n"
        "        raise RuntimeError('in a thread')\n"
        "    thread = threading.Thread(target=fail, name='worker')\n"
        "    thread.start()\n"
        "    thread.join()\n"
        "    return 'graph'\n"
        "images.mermaid = boom\n"
        "cli.main()\n"
    )
    done = render_with(program, tmp_path)
    assert done.stderr.startswith(
        "error: unexpected RuntimeError while running `k8sdeploy render (in worker)`: in a thread; the traceback is in "
    ), done.stderr
