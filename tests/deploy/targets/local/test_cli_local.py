"""status, logs, smoke and down from the command line, on the real Docker Engine and the real suite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from deploy.loopback import LocalSuite
from deploy.model.images import PublishedImage
from deploy.model.releases import Release
from deploy.targets.local.stores import FileHistory
from deploy.targets.local.target import LocalTarget
from tests.deploy.targets.local.conftest import ENV
from tests.deploy.targets.local.objects import objects
from tests.helpers import k8sdeploy, valid
from tests.infra import free_port_block


@pytest.fixture
def deployed(docker_client: docker.DockerClient, busybox: str, tmp_path: Path) -> Iterator[LocalTarget]:
    target = LocalTarget(docker_client, ENV, state_dir=tmp_path / "state")
    target.apply(objects(busybox, [free_port_block(1), free_port_block(1)]))
    target.wait(timeout=30)
    yield target
    target.down(volumes=True)


def test_status_table_and_exit_codes(deployed: LocalTarget, config: Path, busybox: str) -> None:
    result = k8sdeploy("status", env=ENV, config=config)
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["SERVICE", "VERSION", "DIGEST", "READY", "REASON"]
    assert [row.split()[0] for row in rows] == ["first", "second"]
    assert all(row.split()[1] == "1" and row.split()[3] == "yes" for row in rows)
    deployed.container("second").stop()
    result = k8sdeploy("status", env=ENV, config=config)
    assert result.exit_code == 5
    assert "exited" in result.stdout.splitlines()[2]


def test_logs_of_a_service(deployed: LocalTarget, config: Path) -> None:
    assert k8sdeploy("logs", "first", env=ENV, config=config).exit_code == 0
    missing = k8sdeploy("logs", "third", env=ENV, config=config)
    assert missing.exit_code == 2
    assert missing.stderr == f"error: no service 'third' in environment {ENV}; choose one of: first, second\n"


def test_down_prints_what_it_removed_then_is_a_no_op(deployed: LocalTarget, config: Path) -> None:
    first = k8sdeploy("down", "--yes", env=ENV, config=config)
    assert first.exit_code == 0
    assert f"removed k8sdeploy-{ENV}-web-first\n" in first.stdout
    assert "kept 1 claim volume(s) with their data; `down --volumes` removes them too" in first.stderr
    second = k8sdeploy("down", "-y", env=ENV, config=config)
    assert second.exit_code == 0 and second.stdout == ""
    assert second.stderr.endswith(f"nothing of environment {ENV} to remove\n")  # after: kept 1 claim volume


def test_without_a_terminal_down_refuses_unless_yes(deployed: LocalTarget, config: Path) -> None:
    refused = k8sdeploy("down", env=ENV, config=config)  # CliRunner's stdin is not a terminal
    assert refused.exit_code == 2
    assert "not interactive" in refused.stderr and "pass --yes" in refused.stderr
    assert refused.stdout == ""
    assert [row.ready for row in deployed.status()] == [True, True]


def test_status_and_down_as_json(deployed: LocalTarget, config: Path, busybox: str) -> None:
    status = k8sdeploy("status", "--output", "json", env=ENV, config=config)
    assert status.exit_code == 0, status.stderr
    document = valid(status.stdout)
    assert document["result"] == "ok"
    assert [(s["name"], s["ready"]) for s in document["services"]] == [("first", True), ("second", True)]
    deployed.container("second").stop()
    not_ready = k8sdeploy("status", "--output", "json", env=ENV, config=config)
    assert not_ready.exit_code == 5
    assert valid(not_ready.stdout)["result"] == "not-ready"
    down = k8sdeploy("down", "--yes", "--output", "json", env=ENV, config=config)
    assert down.exit_code == 0, down.stderr
    assert f"k8sdeploy-{ENV}-web-first" in valid(down.stdout)["removed"]


def test_status_names_drift_from_the_recorded_release(
    deployed: LocalTarget, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    running = {row.name: row.image for row in deployed.status()}
    recorded = {
        name: PublishedImage(ref.partition("@")[0].rsplit(":", 1)[0], "1", ref.partition("@")[2])
        for name, ref in running.items()
    }
    recorded["second"] = replace(recorded["second"], digest="sha256:" + "0" * 64)  # not what runs
    history = FileHistory(tmp_path / "xdg" / "k8sdeploy" / ENV / "releases.json")
    history.record(Release("1", "c" * 40, recorded, "single-pod", "sha256:" + "1" * 64, "2026-01-01T00:00:00Z", "t"))
    result = k8sdeploy("status", env=ENV, config=config)
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("drift:")] == [
        f"drift: second runs {running['second']}, release 1 recorded {recorded['second'].ref}"
    ]
    document = valid(k8sdeploy("status", "--output", "json", env=ENV, config=config).stdout)
    assert document["release"] == "1" and len(document["drift"]) == 1


def test_smoke_against_a_url(sqlite_suite: LocalSuite) -> None:
    result = k8sdeploy("smoke", "--url", sqlite_suite.url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"smoke test passed at {sqlite_suite.url}")
    failed = k8sdeploy("smoke", "--url", f"http://127.0.0.1:{free_port_block(1)}")
    assert failed.exit_code == 6
    assert failed.stderr.splitlines()[-1].startswith("error: smoke test failed at the gateway while connecting")


def test_unknown_environment_is_a_usage_error(config: Path) -> None:
    result = k8sdeploy("status", env="nope", config=config)
    assert result.exit_code == 2
    assert result.stderr == f"error: no environment 'nope' in {config}; choose one of: {ENV}\n"
