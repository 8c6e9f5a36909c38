"""k8sdeploy.toml: environments load validated, and each mistake is named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.environments import load_environment
from deploy.errors import ConfigError, ExitCode


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(text)
    return path


def test_shipped_environments_load() -> None:
    local = load_environment("local")
    assert (local.target, local.layout, local.registry) == ("local", "single-pod", "")
    staging = load_environment("staging")
    assert staging.target == "gke" and staging.gke.project and staging.service_type == "LoadBalancer"


@pytest.mark.parametrize("text,message", [
    ("[environments.x]\ntarget='local'\nlayout='nope'\n", "environment 'x': layout: Input should be 'single-pod' or 'split-pods'"),
    ("[environments.x]\ntarget='local'\ncolour='red'\n", "environment 'x': colour: Extra inputs are not permitted"),
    ("[environments.x]\ntarget='gke'\n", "needs an [environments.x.gke] table"),
    ("[environments.x]\nlayout='single-pod'\n", "environment 'x': target: Field required"),
    ("[environments.x\n", "is not valid TOML"),
])
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        load_environment("x", write(tmp_path, text))
    assert message in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "[environments.a]\ntarget='local'\n[environments.b]\ntarget='local'\n")
    with pytest.raises(ConfigError, match="no environment 'c'.*choose one of: a, b"):
        load_environment("c", path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no configuration file"):
        load_environment("local", tmp_path / "none.toml")
