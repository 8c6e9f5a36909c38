"""Data outlives the pod on the real Docker Engine, in both layouts: a person added under one version is still
listed after `up` of the next version (a one-line change of notes); with `ephemeral_data = true` it is gone, and
`up` said so before replacing the pod. Before: single-pod kept its SQLite files on emptyDir volumes, so every
`up` of a new version started from empty databases."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from tests.deploy.conftest import clone, git, make_source_repo
from tests.helpers import client, k8sdeploy, login, same_origin
from tests.infra import LocalEnvironment

LOCAL = LocalEnvironment.new("datatest")  # its own name and ports: it runs beside `make demo`'s environment
ENV, OWNED, GATEWAY = LOCAL.name, LOCAL.owned, LOCAL.gateway


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A and B: A with one more file of notes (nothing the images hold changes), a new version. A's version is
    this run's own: the engine is shared, and version tags are immutable in it."""
    work = tmp_path_factory.mktemp("data")
    a = make_source_repo(work / "a")
    git(a, "tag", "-d", "v1.0.0")
    git(a, "tag", f"v0.26.{int(time.time())}")
    b = clone(a, work / "b")
    (b / "NOTES.md").write_text("One more line.\n")
    git(b, "add", "NOTES.md")
    git(b, "commit", "-qm", "notes: one more line")
    return a, b


def people(gateway: str = GATEWAY) -> str:
    with client(gateway) as http:
        assert login(http, "admin@test.com", "admin").status_code == 302
        listed = http.get("/persons")
        assert listed.status_code == 200, listed.text
        return listed.text


def add_person(first: str, last: str, gateway: str = GATEWAY) -> None:
    with client(gateway) as http:
        assert login(http, "admin@test.com", "admin").status_code == 302
        added = http.post("/persons/add", data={"firstName": first, "lastName": last}, headers=same_origin(http))
        assert added.status_code in (302, 303), added.text


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("layout", "ephemeral"), [("single-pod", False), ("split-pods", False), ("single-pod", True)])
def test_a_person_outlives_the_next_up_unless_data_is_ephemeral(
    layout: str,
    ephemeral: bool,
    sources: tuple[Path, Path],
    tmp_path: Path,
    suite_engine: docker.DockerClient,
) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(LOCAL.table(layout, ephemeral_data="true") if ephemeral else LOCAL.table(layout))
    options = {"env": ENV, "config": config, "environ": {"XDG_STATE_HOME": str(tmp_path / "state")}}
    a, b = sources
    try:
        first = k8sdeploy("up", "--source", str(a), **options)
        assert first.exit_code == 0, first.stderr
        add_person("Katherine", f"Johnson-{layout}")
        assert f"Johnson-{layout}" in people()
        second = k8sdeploy("up", "--source", str(b), **options)
        assert second.exit_code == 0, second.stderr
        assert "-1-g" in second.stderr  # a new version: every pod was replaced
        if ephemeral:
            assert f"Johnson-{layout}" not in people()
            assert "the data of authentication, authorisation, session, person goes with it" in second.stderr
        else:
            assert f"Johnson-{layout}" in people()
            assert "goes with it" not in second.stderr
    finally:
        k8sdeploy("down", "--yes", "--volumes", **options)
