"""Two local environments on one Docker Engine at once, with the suite's real images: each on its own ports
(gateway_port and the five after it), with its own containers, volumes and state directory; a login passes
through both gateways; `down` of one leaves the other serving, untouched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.deploy.conftest import make_source_repo
from tests.helpers import client, k8sdeploy, login
from tests.infra import LocalEnvironment, remove_environment

FIRST = LocalEnvironment.new("twofirst")
SECOND = LocalEnvironment.new("twosecond")
# a third whose gateway would take the port of SECOND's authorisation service, and its next four
OVERLAPPING = LocalEnvironment(f"twothird-{os.getpid()}", SECOND.port_base + 3)


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    for environment in (FIRST, SECOND, OVERLAPPING):
        remove_environment(engine, environment.owned)
    yield engine
    for environment in (FIRST, SECOND, OVERLAPPING):
        remove_environment(engine, environment.owned)


def logs_in(gateway: str) -> bool:
    """admin@test.com logs in through `gateway` and sees the people list."""
    with client(gateway) as http:
        response = login(http, "admin@test.com", "admin")
        assert response.status_code in (302, 303), response.text
        return "Hopper" in http.get("/persons").text


def container_ids(engine: docker.DockerClient, environment: LocalEnvironment) -> dict[str, str]:
    return {c.name: c.id for c in engine.containers.list(all=True, filters=environment.owned)}


@pytest.mark.timeout(900)
def test_two_environments_serve_side_by_side_and_down_of_one_leaves_the_other(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(FIRST.table("single-pod") + "\n" + SECOND.table("split-pods"))
    state = tmp_path / "state"
    run = {"config": config, "environ": {"XDG_STATE_HOME": str(state)}}
    source = ("--source", str(make_source_repo(tmp_path / "source")))

    for environment in (FIRST, SECOND):
        up = k8sdeploy("up", *source, env=environment.name, **run)
        assert up.exit_code == 0, up.stderr
        assert up.stdout.splitlines()[0] == f"gateway: {environment.gateway}"
    assert FIRST.port_base != SECOND.port_base and logs_in(FIRST.gateway) and logs_in(SECOND.gateway)

    first, second = container_ids(engine, FIRST), container_ids(engine, SECOND)
    assert len(first) == 7 and len(second) == 12  # an infra container per pod: one pod, then six
    assert all(FIRST.name in name for name in first) and all(SECOND.name in name for name in second)
    for environment in (FIRST, SECOND):
        assert (state / "k8sdeploy" / environment.name / "releases.json").exists()
        status = k8sdeploy("status", env=environment.name, **run)
        assert status.exit_code == 0, status.stderr

    config.write_text(config.read_text() + "\n" + OVERLAPPING.table("single-pod"))
    refused = k8sdeploy("up", *source, env=OVERLAPPING.name, **run)
    assert refused.exit_code == 4, refused.stderr
    taken = f"port {OVERLAPPING.port_base} on 127.0.0.1, needed by auth-suite/nginx-lua, is taken by k8sdeploy"
    assert f"{taken} environment {SECOND.name}" in refused.stderr
    assert f"or `k8sdeploy down --env {SECOND.name}`" in refused.stderr and container_ids(engine, OVERLAPPING) == {}

    down = k8sdeploy("down", "--volumes", "--yes", env=FIRST.name, **run)
    assert down.exit_code == 0, down.stderr
    assert container_ids(engine, FIRST) == {} and engine.volumes.list(filters=FIRST.owned) == []
    assert container_ids(engine, SECOND) == second  # nothing of the other replaced, stopped or removed
    assert engine.volumes.list(filters=SECOND.owned)
    assert logs_in(SECOND.gateway)
    assert k8sdeploy("status", env=SECOND.name, **run).exit_code == 0
    assert k8sdeploy("smoke", env=SECOND.name, **run).exit_code == 0
