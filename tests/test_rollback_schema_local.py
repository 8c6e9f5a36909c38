"""Rollback across migrations on the real Docker Engine, with the suite's real images: deploy A; B adds a person
migration (expand); deploy B, add a person; `rollback --to A` keeps B's schema (A's code works with it), the
person is still listed and the smoke login passes. C adds a contract step; deploy C; `rollback --to B` first runs
C's downgrade in C's running image (said before), and B ends ready; and `rollback --to B --restore` after C again
puts back the copy C's migration kept (a person removed under C is back), and B ends ready. Before: A's image met
a revision it did not know, the rollback exited 5 and the people page answered 503."""

from __future__ import annotations

import re
import time
from pathlib import Path

import docker
import pytest

from tests.deploy.conftest import clone, git, make_source_repo
from tests.helpers import client, k8sdeploy, login, same_origin, valid
from tests.infra import LocalEnvironment
from tests.services.test_migrations import CONTRACT_STEP, EXPAND_STEP
from tests.test_data_local import add_person, people

LOCAL = LocalEnvironment.new("schematest")  # its own name and ports: it runs beside `make demo`'s environment
ENV, OWNED = LOCAL.name, LOCAL.owned
MIGRATIONS = Path("services") / "person" / "migrations" / "versions"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A (a version of this run's own: the engine is shared and version tags are immutable in it), B = A + an
    expand step, C = B + a contract step."""
    work = tmp_path_factory.mktemp("schema")
    a = make_source_repo(work / "a")
    git(a, "tag", "-d", "v1.0.0")
    git(a, "tag", f"v0.27.{int(time.time())}")
    b = clone(a, work / "b")
    (b / MIGRATIONS / "0002_nickname.py").write_text(EXPAND_STEP)
    git(b, "add", "-A")
    git(b, "commit", "-qm", "person: nicknames (expand)")
    c = clone(b, work / "c")
    (c / MIGRATIONS / "0003_nickname_required.py").write_text(CONTRACT_STEP)
    git(c, "add", "-A")
    git(c, "commit", "-qm", "person: nicknames required (contract)")
    return {"a": a, "b": b, "c": c}


def remove_person(last: str, gateway: str) -> None:
    with client(gateway) as http:
        assert login(http, "admin@test.com", "admin").status_code == 302
        found = re.search(
            rf'href="/persons/(\d+)">\d+</a></td>\s*<td>[^<]*</td><td>{last}</td>', http.get("/persons").text
        )
        assert found, f"{last} is not listed"
        removed = http.post(f"/persons/{found[1]}/delete", headers=same_origin(http))
        assert removed.status_code in (302, 303), removed.text


@pytest.mark.timeout(1800)
def test_rollback_keeps_an_expanded_schema_and_downgrades_past_a_contract_step(
    sources: dict[str, Path], tmp_path: Path, suite_engine: docker.DockerClient
) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(LOCAL.table("single-pod"))
    options = {"env": ENV, "config": config, "environ": {"XDG_STATE_HOME": str(tmp_path / "state")}}

    def up(name: str) -> str:
        result = k8sdeploy("up", "--source", str(sources[name]), "--output", "json", **options)
        assert result.exit_code == 0, result.stderr
        return valid(result.stdout)["version"]

    def serving(version: str) -> None:
        status = valid(k8sdeploy("status", "--output", "json", **options).stdout)
        assert status["result"] == "ok" and status["release"] == version

    try:
        a = up("a")
        b = up("b")
        add_person("Dorothy", "Vaughan", LOCAL.gateway)
        back = k8sdeploy("rollback", "--to", a, "--yes", **options)
        assert back.exit_code == 0, back.stderr
        assert f"schema of person: 0002 works with the code of {a} (head 0001; expand steps 0002 only)" in back.stderr
        assert "smoke: " in back.stderr and "Vaughan" in people(LOCAL.gateway)
        serving(a)

        up("b")
        c_up = k8sdeploy("up", "--source", str(sources["c"]), "--output", "json", **options)
        assert c_up.exit_code == 0, c_up.stderr
        assert "migration person 0003 (contract): C: every person has a nickname" in c_up.stderr
        history = valid(k8sdeploy("history", "--output", "json", **options).stdout)["releases"]
        assert history[0]["schemas"]["person"]["head"] == "0003"
        assert history[0]["schemas"]["person"]["works_from"] == "0003"

        down = k8sdeploy("rollback", "--to", b, "--yes", **options)
        assert down.exit_code == 0, down.stderr
        said = down.stderr
        planned = said.index("schema of person: downgrading 0003 -> 0002 with the running image first")
        assert planned < said.index("schema of person: at 0002") < said.index("smoke: ")
        assert "Vaughan" in people(LOCAL.gateway)
        serving(b)
        history = valid(k8sdeploy("history", "--output", "json", **options).stdout)["releases"]
        assert history[0]["action"] == "rollback"
        assert [line for line in history[0]["schema_changes"] if "downgrading 0003 -> 0002" in line], history[0]

        # C again, a person removed under it (C's code adds none: its column is NOT NULL), then back to B from the
        # copy C's migration kept: the rows as they were
        c = up("c")
        remove_person("Vaughan", LOCAL.gateway)
        assert "Vaughan" not in people(LOCAL.gateway)
        listed = k8sdeploy("backups", **options)
        assert listed.exit_code == 0, listed.stderr
        assert any(
            line.split()[:5] == ["person", line.split()[1], "0002", "->", "0003"] and c in line.split()
            for line in listed.stdout.splitlines()
        ), listed.stdout
        restored = k8sdeploy("rollback", "--to", b, "--restore", "--yes", **options)
        assert restored.exit_code == 0, restored.stderr
        said = restored.stderr
        planned = said.index("schema of person: restoring the copy of its database kept before it migrated from 0002")
        assert planned < said.index("schema of person: restored, at 0002") < said.index("smoke: ")
        assert "Vaughan" in people(LOCAL.gateway)
        serving(b)
    finally:
        k8sdeploy("down", "--yes", "--volumes", **options)
