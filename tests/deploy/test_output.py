"""`--output json` against deploy/schemas/output.schema.json, release history on disk, non-interactive runs,
and progress: plain lines when stderr is not a terminal, a live line per image (rich) when it is."""

from __future__ import annotations

import io
from pathlib import Path

import jsonschema
import pytest

from deploy.commands.common import interactive
from deploy.model.images import BuildRecord
from deploy.model.releases import NoRelease, choose, who
from deploy.output import PlainProgress, RichProgress, progress_for
from deploy.targets.local.stores import FileHistory
from tests.deploy.inputs import release, release_images
from tests.helpers import SCHEMA, checked_stderr, k8sdeploy, valid
from tests.infra import ROOT

ENV = "jsonout"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "k8sdeploy" / ENV / "releases.json"


def test_the_schema_is_a_valid_schema_and_rejects_an_image_without_a_digest() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    document = {"command": "history", "result": "ok", "environment": ENV, "releases": [release("1.0.0", "a").to_dict()]}
    jsonschema.validate(document, SCHEMA)
    del document["releases"][0]["images"]["person"]["digest"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_render_output_json_is_a_list(config: Path, tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    BuildRecord("1.0.0", "a" * 40, release_images("1.0.0", "a")).save(record)
    result = k8sdeploy("render", "--build-record", str(record), "--output", "json", env=ENV, config=config)
    assert result.exit_code == 0, result.stderr
    document = valid(result.stdout)
    assert document["kind"] == "List"
    assert {item["kind"] for item in document["items"]} >= {"Deployment", "Service"}


def test_history_lists_releases_newest_first(config: Path, state: Path) -> None:
    empty = k8sdeploy("history", "--output", "json", env=ENV, config=config)
    assert empty.exit_code == 0, empty.stderr
    assert valid(empty.stdout)["releases"] == []
    history = FileHistory(state)
    history.record(release("1.0.0", "a"))
    history.record(release("1.1.0", "b"))
    listed = k8sdeploy("history", "--output", "json", env=ENV, config=config)
    assert [r["version"] for r in valid(listed.stdout)["releases"]] == ["1.1.0", "1.0.0"]
    text = k8sdeploy("history", env=ENV, config=config)
    assert [line.split()[0] for line in text.stdout.splitlines()] == ["VERSION", "1.1.0", "1.0.0"]
    assert history.releases()[0] == release("1.0.0", "a")  # round trip, digests and all


def test_history_lists_each_releases_schema_revisions(config: Path, state: Path) -> None:
    from dataclasses import replace

    from deploy.model.schemas import read_schemas

    FileHistory(state).record(replace(release("1.0.0", "a"), schemas=read_schemas(ROOT)))
    listed = valid(k8sdeploy("history", "--output", "json", env=ENV, config=config).stdout)
    schemas = listed["releases"][0]["schemas"]
    assert schemas["authentication"]["head"] == "0005" and schemas["person"]["head"] == "0001"
    assert [s["compatibility"] for s in schemas["authentication"]["steps"]] == ["expand"] * 3 + ["contract", "expand"]
    text = k8sdeploy("history", env=ENV, config=config).stdout
    assert "authentication 0005, authorisation 0002, person 0001, session 0002" in text


def test_a_damaged_history_is_a_usage_error(config: Path, state: Path) -> None:
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    result = k8sdeploy("history", env=ENV, config=config)
    assert result.exit_code == 2
    assert "is not a k8sdeploy release history" in result.stderr


def test_rollback_with_nothing_recorded_fails_with_a_json_document(config: Path, state: Path) -> None:
    result = k8sdeploy("rollback", "--yes", "--output", "json", env=ENV, config=config)
    assert result.exit_code == 2
    document = valid(result.stdout)
    assert document["result"] == "failed" and document["exit_code"] == 2
    assert document["error"]["message"] == "no release is recorded for this environment"
    FileHistory(state).record(release("1.0.0", "a"))
    unknown = k8sdeploy("rollback", "--yes", "--to", "9.9.9", env=ENV, config=config)
    assert unknown.exit_code == 2
    assert unknown.stderr == "error: no release 9.9.9 is recorded; choose one of: 1.0.0\n"


def test_without_a_terminal_rollback_refuses_unless_yes(config: Path, state: Path) -> None:
    FileHistory(state).record(release("1.0.0", "a"))
    result = k8sdeploy("rollback", "--to", "1.0.0", env=ENV, config=config)
    assert result.exit_code == 2
    assert "pass --yes" in result.stderr and result.stdout == ""


def test_a_failure_is_a_json_document_too(config: Path) -> None:
    result = k8sdeploy("status", "--output", "json", env="nope", config=config)
    assert result.exit_code == 2
    assert valid(result.stdout)["error"]["type"] == "ConfigError"


def test_choose_picks_the_version_before_the_current_one() -> None:
    a, b, a_again = release("1.0.0", "a"), release("1.1.0", "b"), release("1.0.0", "a", action="rollback")
    assert choose([a, b], None) == a
    assert choose([a, b, a_again], None) == b
    assert choose([a, b], "1.1.0") == b
    with pytest.raises(NoRelease, match="nothing older"):
        choose([a], None)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_interactive_only_on_a_terminal_without_ci() -> None:
    assert interactive({}, Terminal())
    assert not interactive({"CI": "true"}, Terminal())
    assert not interactive({}, io.StringIO())
    assert not interactive({}, None)


def test_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = progress_for(stream)
    assert isinstance(progress, PlainProgress)
    progress.step("person", "application layer")
    progress.close()
    assert stream.getvalue() == "person: application layer\n"


def test_a_line_per_image_on_a_terminal() -> None:
    stream = Terminal()
    progress = progress_for(stream)
    assert isinstance(progress, RichProgress)
    progress.step("person", "application layer")
    progress.step("session", "pushed")
    progress.close()
    assert "person" in stream.getvalue() and "session" in stream.getvalue() and "pushed" in stream.getvalue()


def test_who_names_the_ci_run() -> None:
    assert (
        who({"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "o/r", "GITHUB_ACTOR": "bot"})
        == "github-actions o/r run 42 by bot"
    )
    assert who({"CI": "1"}).startswith("ci (")
    assert "@" in who({})


def ask_on_a_terminal(config: Path, answer: bytes, state: Path) -> tuple[int, str]:
    """`k8sdeploy down` as a process whose stdin is a real terminal (a pty), CI unset."""
    import os
    import subprocess
    import sys

    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"XDG_STATE_HOME": str(state)}
    os.write(primary, answer)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "down", "--env", ENV, "--config", str(config)],
        stdin=secondary,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )
    os.close(primary)
    os.close(secondary)
    return done.returncode, checked_stderr(done.stderr, ["down", "--env", ENV])


def test_on_a_terminal_down_asks_first(config: Path, tmp_path: Path) -> None:
    code, stderr = ask_on_a_terminal(config, b"n\n", tmp_path)
    assert code == 2
    assert f"Remove everything environment {ENV} deployed? [y/N]" in stderr
    assert "error: not confirmed; nothing was changed; answer y, or pass --yes" in stderr
    code, stderr = ask_on_a_terminal(config, b"y\n", tmp_path)
    assert code == 0, stderr
    assert f"nothing of environment {ENV} to remove" in stderr


def test_rollback_to_images_that_are_gone_is_an_apply_failure(config: Path, state: Path) -> None:
    from dataclasses import replace

    from tests.infra import free_port_block

    gone = f"127.0.0.1:{free_port_block(1)}"  # no registry answers there
    recorded = release("1.0.0", "a")
    images = {
        name: replace(image, repository=image.repository.replace("127.0.0.1:5000", gone))
        for name, image in recorded.images.items()
    }
    FileHistory(state).record(replace(recorded, images=images))
    result = k8sdeploy("rollback", "--yes", "--to", "1.0.0", "--output", "json", env=ENV, config=config)
    assert result.exit_code == 4, result.stderr
    document = valid(result.stdout)
    assert (
        document["exit_code"] == 4
        and "is not in the local Docker Engine and cannot be pulled" in document["error"]["message"]
    )


def test_an_interrupted_command_exits_130() -> None:
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "smoke", "--url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        silent.settimeout(60)
        connection, _ = silent.accept()  # the smoke login is under way: interrupt it there, not while loading
        with connection:  # open until the command has gone: a reset would end the smoke login first (exit 6)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
    checked_stderr(stderr, ["smoke", "--url", url])
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "interrupted"
