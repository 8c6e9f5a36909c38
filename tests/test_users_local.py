"""Who may log in follows what k8sdeploy keeps, on the local target with the suite's real images (issue 24): a user
added with `user add` logs in after the next `up` and no longer after `user remove` and an `up`; `demo_users =
false` on an environment that had the demo users removes them at the next `up`; no password is kept in clear."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.deploy.conftest import make_source_repo
from tests.helpers import client, k8sdeploy, login
from tests.infra import LocalEnvironment, remove_environment

LOCAL = LocalEnvironment.new("userstest")


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    remove_environment(engine, LOCAL.owned)
    yield engine
    remove_environment(engine, LOCAL.owned)


def status_of_login(email: str, password: str) -> int:
    with client(LOCAL.gateway) as http:
        return login(http, email, password).status_code


@pytest.mark.timeout(900)
def test_added_removed_and_demo_users_follow_the_next_up(engine: docker.DockerClient, tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(LOCAL.table("single-pod"))
    state = tmp_path / "state"
    run = {"config": config, "environ": {"XDG_STATE_HOME": str(state)}}
    source = ("--source", str(make_source_repo(tmp_path / "source")))
    assert k8sdeploy("up", *source, env=LOCAL.name, **run).exit_code == 0
    assert status_of_login("admin@test.com", "admin") == 302

    password = "a long enough password, 1"
    added = k8sdeploy(
        "user",
        "add",
        "ada@example.org",
        "--role",
        "user",
        "--password-stdin",
        env=LOCAL.name,
        stdin=password + "\n",
        **run,
    )
    assert added.exit_code == 0, added.stderr
    kept = (state / "k8sdeploy" / LOCAL.name / "users.json").read_text()
    assert "ada@example.org" in kept and password not in kept and '"password"' not in kept  # hashes only
    assert k8sdeploy("up", *source, env=LOCAL.name, **run).exit_code == 0
    assert status_of_login("ada@example.org", password) == 302

    removed = k8sdeploy("user", "remove", "ada@example.org", env=LOCAL.name, **run)
    assert removed.exit_code == 0, removed.stderr
    assert k8sdeploy("up", *source, env=LOCAL.name, **run).exit_code == 0
    assert status_of_login("ada@example.org", password) == 401

    config.write_text(LOCAL.table("single-pod", demo_users="false"))
    up = k8sdeploy("up", *source, env=LOCAL.name, **run)
    assert up.exit_code == 0, up.stderr  # its smoke login used the smoke users
    assert status_of_login("admin@test.com", "admin") == 401
    assert status_of_login("user@test.com", "user") == 401
    assert k8sdeploy("down", "--volumes", "--yes", env=LOCAL.name, **run).exit_code == 0
