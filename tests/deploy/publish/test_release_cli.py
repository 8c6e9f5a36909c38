"""`k8sdeploy release VERSION` moves `latest` in a real registry to the version's digests, and only then."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli import main
from deploy.model.images import IMAGE_NAMES
from tests.deploy.conftest import clone
from tests.deploy.test_output import valid
from tests.registries import Registry

ENV = "releasecli"


def k8sdeploy(config: Path, *args: str):  # noqa: ANN201 - click Result
    return CliRunner().invoke(main, [*args, "--env", ENV, "--config", str(config)])


def test_release_moves_latest_to_the_version_digests(tmp_path: Path, source_repo: Path,
                                                     fresh_registry: Registry) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(f'[environments.{ENV}]\ntarget = "local"\nregistry = "{fresh_registry.host}/suite"\n')
    checkout = clone(source_repo, tmp_path / "checkout")
    missing = k8sdeploy(config, "release", "1.0.0", "--output", "json")
    assert missing.exit_code == 3
    assert "version 1.0.0 is not published" in valid(missing.stdout)["error"]["message"]
    built = k8sdeploy(config, "build", "--source", str(checkout), "--record", str(tmp_path / "r.json"),
                      "--output", "json")
    assert built.exit_code == 0, built.stderr
    versions = valid(built.stdout)
    assert all(fresh_registry.digest(f"suite/{name}", "latest") is None for name in IMAGE_NAMES)  # build: no
    released = k8sdeploy(config, "release", "1.0.0", "--output", "json")
    assert released.exit_code == 0, released.stderr
    document = valid(released.stdout)
    for name in IMAGE_NAMES:
        digest = versions["images"][name]["digest"]
        assert document["images"][name]["digest"] == digest and document["images"][name]["previous"] is None
        assert fresh_registry.digest(f"suite/{name}", "latest") == digest
    again = k8sdeploy(config, "release", "1.0.0")
    assert again.exit_code == 0 and again.stderr.count("latest already is 1.0.0") == 6
    assert again.stdout.splitlines()[0] == f"{fresh_registry.host}/suite/nginx-lua:latest@" \
                                           f"{versions['images']['nginx-lua']['digest']}"


def test_release_needs_a_registry(tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(f'[environments.{ENV}]\ntarget = "local"\n')
    result = k8sdeploy(config, "release", "1.0.0")
    assert result.exit_code == 2
    assert "has no registry" in result.stderr
