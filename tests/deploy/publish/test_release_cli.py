"""`k8sdeploy release VERSION` moves `latest` in a real registry to the version's digests, and only then."""

from __future__ import annotations

from pathlib import Path

from deploy.model.images import IMAGE_NAMES
from tests.deploy.conftest import clone
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry

ENV = "releasecli"


def test_release_moves_latest_to_the_version_digests(
    tmp_path: Path, source_repo: Path, fresh_registry: Registry
) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(f'[environments.{ENV}]\nlocal = {{}}\nregistry = "{fresh_registry.host}/suite"\n')
    checkout = clone(source_repo, tmp_path / "checkout")
    missing = k8sdeploy("release", "1.0.0", "--output", "json", env=ENV, config=config)
    assert missing.exit_code == 3
    assert "version 1.0.0 is not published" in valid(missing.stdout)["error"]["message"]
    built = k8sdeploy(
        "build",
        "--source",
        str(checkout),
        "--record",
        str(tmp_path / "r.json"),
        "--output",
        "json",
        env=ENV,
        config=config,
    )
    assert built.exit_code == 0, built.stderr
    versions = valid(built.stdout)
    assert all(fresh_registry.digest(f"suite/{name}", "latest") is None for name in IMAGE_NAMES)  # build: no
    released = k8sdeploy("release", "1.0.0", "--output", "json", env=ENV, config=config)
    assert released.exit_code == 0, released.stderr
    document = valid(released.stdout)
    for name in IMAGE_NAMES:
        digest = versions["images"][name]["digest"]
        assert document["images"][name]["digest"] == digest and document["images"][name]["previous"] is None
        assert fresh_registry.digest(f"suite/{name}", "latest") == digest
    again = k8sdeploy("release", "1.0.0", env=ENV, config=config)
    assert again.exit_code == 0 and again.stderr.count("latest already is 1.0.0") == 6
    assert (
        again.stdout.splitlines()[0] == f"{fresh_registry.host}/suite/nginx-lua:latest@"
        f"{versions['images']['nginx-lua']['digest']}"
    )


def test_release_needs_a_registry(tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(f"[environments.{ENV}]\nlocal = {{}}\n")
    result = k8sdeploy("release", "1.0.0", env=ENV, config=config)
    assert result.exit_code == 2
    assert "has no registry" in result.stderr
