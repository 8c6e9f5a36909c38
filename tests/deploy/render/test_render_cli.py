"""`k8sdeploy render`: YAML, JSON or a diagram on stdout; a bad input is one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import Result

import deploy.model.images
from deploy.model.environments import load_environment
from deploy.render.objects import render
from tests.deploy.inputs import MYSQL_IMAGE, MYSQL_SECRET, VERSION, fake_images, fake_record
from tests.helpers import k8sdeploy

CONFIG = f"""
[environments.dev]
local = {{}}
replicas = {{ frontend = 2 }}

[environments.db]
local = {{}}
layout = "split-pods"
database = "mysql"
mysql_image = "{MYSQL_IMAGE}"

[environments.broken]
local = {{}}
layout = "split-pods"
database = "mysql"
"""
NO_MYSQL_SECRET = {"K8SDEPLOY_MYSQL_SECRET": ""}  # what render reads the secret from: empty unless a test sets it


@pytest.fixture
def render_config(tmp_path: Path) -> Path:
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(CONFIG)
    return path


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    return result.stderr


def test_an_unknown_layout_names_the_valid_ones(render_config: Path, tmp_path: Path) -> None:
    result = k8sdeploy(
        "render",
        "--layout",
        "nope",
        "--build-record",
        str(fake_record(tmp_path / "b.json")),
        env="dev",
        config=render_config,
        environ=NO_MYSQL_SECRET,
    )
    assert one_error_line(result) == "error: unknown layout 'nope'; choose one of: single-pod, split-pods\n"


def test_a_missing_build_record_says_how_to_make_one(render_config: Path, tmp_path: Path) -> None:
    result = k8sdeploy(
        "render",
        "--build-record",
        str(tmp_path / "none.json"),
        env="dev",
        config=render_config,
        environ=NO_MYSQL_SECRET,
    )
    assert "no build record at" in one_error_line(result) and "run `k8sdeploy build`" in result.stderr


def test_mysql_with_neither_a_registry_nor_an_image_names_both(render_config: Path, tmp_path: Path) -> None:
    """The server's image is k8sdeploy's own, pushed to the environment's registry, unless mysql_image names one;
    the local Docker Engine has no registry to push it to."""
    result = k8sdeploy(
        "render",
        "--build-record",
        str(fake_record(tmp_path / "b.json")),
        env="broken",
        config=render_config,
        environ=NO_MYSQL_SECRET,
    )
    line = one_error_line(result)
    assert "environment 'broken': database = \"mysql\" needs a registry for its server's image" in line, line
    assert "or mysql_image = " in line


def test_mysql_without_its_secret_names_the_variable(render_config: Path, tmp_path: Path) -> None:
    result = k8sdeploy(
        "render",
        "--build-record",
        str(fake_record(tmp_path / "b.json")),
        env="db",
        config=render_config,
        environ=NO_MYSQL_SECRET,
    )
    assert "K8SDEPLOY_MYSQL_SECRET, which is not set" in one_error_line(result)


def test_yaml_on_stdout_is_what_render_returns(render_config: Path, tmp_path: Path) -> None:
    result = k8sdeploy(
        "render",
        "--build-record",
        str(fake_record(tmp_path / "b.json")),
        env="db",
        config=render_config,
        environ={"K8SDEPLOY_MYSQL_SECRET": MYSQL_SECRET},
    )
    assert result.exit_code == 0 and result.stderr == ""
    expected = render(
        load_environment("db", render_config), "split-pods", fake_images(), VERSION, mysql_secret=MYSQL_SECRET
    )
    assert list(yaml.safe_load_all(result.stdout)) == list(expected.objects)


def test_json_is_a_list_and_notes_go_to_stderr(render_config: Path, tmp_path: Path) -> None:
    result = k8sdeploy(
        "render",
        "--layout",
        "single-pod",
        "--format",
        "json",
        "--build-record",
        str(fake_record(tmp_path / "b.json")),
        env="dev",
        config=render_config,
        environ=NO_MYSQL_SECRET,
    )
    assert result.exit_code == 0
    document = yaml.safe_load(result.stdout)
    assert document["kind"] == "List" and {item["kind"] for item in document["items"]} >= {"Deployment", "Service"}
    assert result.stderr == "note: single-pod runs one of each part; replicas of frontend apply to split-pods\n"


def test_the_record_is_read_from_the_environments_default_place(
    render_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy.model.images, "STATE_DIR", tmp_path / "state")
    fake_record(deploy.model.images.build_record_path("dev"))
    result = k8sdeploy("render", "--layout", "split-pods", env="dev", config=render_config, environ=NO_MYSQL_SECRET)
    assert result.exit_code == 0, result.output
    assert 'image: "127.0.0.1:5000/suite/person:' in result.stdout


def test_the_diagram_needs_no_build_record(render_config: Path) -> None:
    result = k8sdeploy("render", "--format", "mermaid", env="db", config=render_config, environ=NO_MYSQL_SECRET)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart LR\n") and 'person -->|"mysql:3306"| mysql' in result.stdout
