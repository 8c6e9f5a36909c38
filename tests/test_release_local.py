"""Releases on the real Docker Engine: up A, up B, history, rollback to A by digest, a failing C rolled back.

The steps run in order against one environment (its own name and state directory), with the
suite's real images built from two git checkouts: A tagged v1.0.0, B tagged v7.7.1 (person changed),
and C, A with person crashing at start-up. Every command runs with `--output json`.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.deploy.conftest import clone, git, make_source_repo
from tests.helpers import digests, k8sdeploy, valid
from tests.infra import LocalEnvironment

LOCAL = LocalEnvironment.new("releasetest")  # its own name and ports: it runs beside `make demo`'s environment
ENV, OWNED = LOCAL.name, LOCAL.owned
SEEN: dict[str, dict] = {}  # what earlier steps printed, by step


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("release")
    (path / "k8sdeploy.toml").write_text(LOCAL.table("single-pod"))
    return path


@pytest.fixture(scope="module")
def local_sources(workdir: Path) -> dict[str, Path]:
    a = make_source_repo(workdir / "a")
    b = clone(a, workdir / "b")
    person = b / "services" / "person" / "__main__.py"
    person.write_text(person.read_text() + "# version B\n")
    git(b, "commit", "-qam", "person: B")
    git(b, "tag", "v7.7.1")  # a version no other test builds: version tags are immutable in the engine
    c = clone(a, workdir / "c")
    (c / "services" / "person" / "__main__.py").write_text("raise RuntimeError('person: C cannot start')\n")
    git(c, "commit", "-qam", "person: broken")
    return {"a": a, "b": b, "c": c}


def in_workdir(workdir: Path) -> dict:
    """The options of `k8sdeploy` for this module's environment: its config and its state in `workdir`."""
    return {"env": ENV, "config": workdir / "k8sdeploy.toml", "environ": {"XDG_STATE_HOME": str(workdir / "state")}}


def running_digests(workdir: Path, release: str) -> dict[str, str]:
    """The digests that run, once status says they are exactly those of the release recorded last."""
    status = k8sdeploy("status", "--output", "json", **in_workdir(workdir))
    assert status.exit_code == 0, status.stderr
    document = valid(status.stdout)
    assert (document["release"], document["drift"]) == (release, [])
    return {row["name"]: row["image"].partition("@")[2] for row in document["services"]}


class TestReleases:
    def test_up_a_prints_one_json_document(
        self, workdir: Path, local_sources: dict, suite_engine: docker.DockerClient
    ) -> None:
        result = k8sdeploy("up", "--source", str(local_sources["a"]), "--output", "json", **in_workdir(workdir))
        assert result.exit_code == 0, result.stderr
        document = valid(result.stdout)  # the whole of stdout is one document
        assert (document["command"], document["result"], document["version"]) == ("up", "ok", "1.0.0")
        assert document["url"] == LOCAL.gateway and document["layout"] == "single-pod"
        assert set(document["durations"]) == {"build", "render", "apply", "wait", "smoke", "record"}
        assert len(document["smoke"]["checks"]) > 1
        SEEN["a"] = document

    def test_up_b(self, workdir: Path, local_sources: dict) -> None:
        result = k8sdeploy("up", "--source", str(local_sources["b"]), "--output", "json", **in_workdir(workdir))
        assert result.exit_code == 0, result.stderr
        document = valid(result.stdout)
        assert document["version"] == "7.7.1"
        assert digests(document)["person"] != digests(SEEN["a"])["person"]
        assert running_digests(workdir, "7.7.1") == digests(document)
        SEEN["b"] = document

    def test_history_lists_both(self, workdir: Path) -> None:
        result = k8sdeploy("history", "--output", "json", **in_workdir(workdir))
        assert result.exit_code == 0, result.stderr
        releases = valid(result.stdout)["releases"]
        assert [(r["version"], r["action"]) for r in releases] == [("7.7.1", "up"), ("1.0.0", "up")]
        assert [digests(r) for r in releases] == [digests(SEEN["b"]), digests(SEEN["a"])]
        assert releases[1]["objects_hash"] == SEEN["a"]["objects_hash"]
        assert releases[1]["commit"] == SEEN["a"]["commit"] != releases[0]["commit"]

    def test_rollback_returns_to_a_by_digest_without_building(self, workdir: Path) -> None:
        result = k8sdeploy("rollback", "--yes", "--output", "json", **in_workdir(workdir))
        assert result.exit_code == 0, result.stderr
        document = valid(result.stdout)
        assert (document["command"], document["action"], document["version"]) == ("rollback", "rollback", "1.0.0")
        assert "build" not in document["durations"]
        assert "building" not in result.stderr.lower() and "already in the engine" not in result.stderr
        assert digests(document) == digests(SEEN["a"])
        assert document["objects_hash"] == SEEN["a"]["objects_hash"]  # the same objects as A's up
        assert running_digests(workdir, "1.0.0") == digests(SEEN["a"])

    def test_a_failing_c_is_rolled_back_and_exits_not_ready(self, workdir: Path, local_sources: dict) -> None:
        result = k8sdeploy(
            "up",
            "--source",
            str(local_sources["c"]),
            "--rollback-on-failure",
            "--wait-timeout",
            "90",
            "--output",
            "json",
            **in_workdir(workdir),
        )
        assert result.exit_code == 5, result.stderr
        document = valid(result.stdout)
        assert document["result"] == "failed" and document["exit_code"] == 5
        assert "person crashed" in document["error"]["message"]
        assert "rolled back to version 1.0.0" in document["error"]["message"]
        assert "RuntimeError: person: C cannot start" in document["error"]["details"]
        assert digests(document["rolled_back_to"]) == digests(SEEN["a"])
        assert running_digests(workdir, "1.0.0") == digests(SEEN["a"])
        assert k8sdeploy("smoke", **in_workdir(workdir)).exit_code == 0
        history = valid(k8sdeploy("history", "--output", "json", **in_workdir(workdir)).stdout)["releases"]
        assert [(r["version"], r["action"]) for r in history[:2]] == [("1.0.0", "rollback"), ("1.0.0", "rollback")]
        assert len(history) == 4  # C was never recorded

    def test_down_refuses_without_yes_then_removes_everything(
        self, workdir: Path, suite_engine: docker.DockerClient
    ) -> None:
        refused = k8sdeploy("down", "--volumes", **in_workdir(workdir))
        assert refused.exit_code == 2 and "pass --yes" in refused.stderr
        assert suite_engine.containers.list(filters=OWNED)
        result = k8sdeploy("down", "--volumes", "--yes", "--output", "json", **in_workdir(workdir))
        assert result.exit_code == 0, result.stderr
        assert f"k8sdeploy-{ENV}-auth-suite-person" in valid(result.stdout)["removed"]
        assert suite_engine.containers.list(all=True, filters=OWNED) == []
