"""`k8sdeploy diff` on the real Docker Engine with the suite's real images: after `up`, nothing to change; after a
one-line change and a migration in the person service, exactly person's image is new content (the five others
only carry the new version), the migration is named, and the containers the next `up` replaces are exactly
those `diff` named."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from tests.deploy.conftest import git, make_source_repo
from tests.helpers import k8sdeploy, valid
from tests.infra import LocalEnvironment
from tests.services.test_migrations import EXPAND_STEP

LOCAL = LocalEnvironment.new("difftest")  # its own name and ports: it runs beside `make demo`'s environment
ENV, OWNED = LOCAL.name, LOCAL.owned
APPS = {"label": [*OWNED["label"], "k8sdeploy.io/role=app"]}


# person's expand step of the migration tests, its description shortened
NICKNAME = EXPAND_STEP.replace(EXPAND_STEP.splitlines()[0], '"""Persons get a nickname.', 1)


def app_containers(engine: docker.DockerClient) -> dict[str, str]:
    return {c.labels["k8sdeploy.io/container"]: c.id for c in engine.containers.list(all=True, filters=APPS)}


@pytest.mark.timeout(900)
def test_diff_names_the_changed_service_and_the_containers_up_replaces(
    suite_engine: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(LOCAL.table("split-pods"))
    source = make_source_repo(tmp_path / "source")
    run = ("--source", str(source))
    up = k8sdeploy("up", *run, "--no-smoke", env=ENV, config=config)
    assert up.exit_code == 0, up.stderr
    try:
        same = k8sdeploy("diff", *run, "--output", "json", env=ENV, config=config)
        assert same.exit_code == 0, same.stderr
        assert valid(same.stdout)["objects"] == [] and not any(i["push"] for i in valid(same.stdout)["images"])

        app = source / "services" / "person" / "app.py"
        app.write_text(app.read_text().replace('"""', '"""A one-line change. ', 1))
        # a line of this run's own: the engine keeps the layers of earlier runs, which would not be new
        migration = NICKNAME + f"# run {uuid.uuid4().hex}\n"
        (source / "services" / "person" / "migrations" / "versions" / "0002_nickname.py").write_text(migration)
        git(source, "add", "-A")
        git(source, "commit", "-qm", "person: a one-line change, and a migration")
        changed = k8sdeploy("diff", *run, "--output", "json", env=ENV, config=config)
        assert changed.exit_code == 1, changed.stderr
        document = valid(changed.stdout)
        assert [i["name"] for i in document["images"] if i["new_layers"]] == ["person"]
        migrations = [note for note in document["notes"] if note.startswith("migration ")]
        assert migrations == ["migration person 0002 (expand): Persons get a nickname."]  # what up will migrate
        assert all(i["push"] for i in document["images"])  # every image carries the new version
        named = sorted(
            c for obj in document["objects"] if obj["action"] in ("replace", "delete") for c in obj["containers"]
        )
        assert "person" in named

        before = app_containers(suite_engine)
        again = k8sdeploy("up", *run, "--no-smoke", env=ENV, config=config)
        assert again.exit_code == 0, again.stderr
        after = app_containers(suite_engine)
        assert sorted(name for name, cid in before.items() if after.get(name) != cid) == named
        for obj in document["objects"]:
            assert f"{obj['action']} {obj['kind']}/{obj['name']}" in again.stderr  # up said it before applying
    finally:
        k8sdeploy("down", "--yes", "--volumes", env=ENV, config=config)
