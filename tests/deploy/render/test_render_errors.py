"""What render refuses, and how it says so: the template and variable, the value, the key to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, ExitCode, RenderError
from deploy.render.objects import render, render_templates
from tests.deploy.inputs import MYSQL_IMAGE, VERSION, fake_images

MACROS = "{% macro name_of(item) -%}\n{{ item.name }}-{{ suffix }}\n{%- endmacro %}\n"


def templates(tmp_path: Path, **files: str) -> Path:
    for name, text in {"common/macros.j2": MACROS, **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_an_undefined_variable_names_the_template_line_and_variable(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: Pod\nspec:\n  n: {{ replica_count }}\n"
    root = templates(tmp_path, **{"single-pod/pod.yaml.j2": text})
    with pytest.raises(RenderError) as caught:
        render_templates(root, "single-pod", {})
    assert str(caught.value).startswith(
        "rendering single-pod/pod.yaml.j2: single-pod/pod.yaml.j2:4: 'replica_count' is undefined; "
    )
    assert caught.value.exit_code == ExitCode.USAGE


def test_an_undefined_variable_in_a_macro_names_the_macros_file(tmp_path: Path) -> None:
    text = (
        '{% import "common/macros.j2" as k8s with context %}\n'
        "apiVersion: v1\nkind: Pod\nname: {{ k8s.name_of(item) }}\n"
    )
    root = templates(tmp_path, **{"split-pods/pod.yaml.j2": text})
    with pytest.raises(RenderError, match=r"split-pods/pod.yaml.j2: common/macros.j2:2: 'suffix' is undefined"):
        render_templates(root, "split-pods", {"item": {"name": "a"}})


@pytest.mark.parametrize(
    "text,message",
    [
        ("apiVersion: v1\nkind: Pod\n{% if %}\n", r"single-pod/x.yaml.j2:3: Expected an expression"),
        ("apiVersion: v1\nkind: [Pod\n", r"x.yaml.j2 rendered invalid YAML at line 3 of its output"),
        ("apiVersion: v1\nkind: Pod\n---\nname: stray\n", r"x.yaml.j2: document 2 has no apiVersion and kind"),
        ("- not\n- a mapping\n", r"x.yaml.j2: document 1 has no apiVersion and kind"),
    ],
)
def test_what_is_not_a_kubernetes_object_is_named(tmp_path: Path, text: str, message: str) -> None:
    root = templates(tmp_path, **{"single-pod/x.yaml.j2": text})
    with pytest.raises(RenderError, match=message):
        render_templates(root, "single-pod", {})


def test_a_layout_without_templates_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no templates for layout split-pods"):
        render_templates(templates(tmp_path), "split-pods", {})


def local(**settings) -> Environment:
    return Environment(name="local", target="local", **settings)


def test_an_image_missing_from_the_build_record_says_how_to_build_it() -> None:
    images = fake_images()
    del images["session"]
    with pytest.raises(ConfigError, match=r"the build record has no image for session; run `k8sdeploy build`"):
        render(local(), "single-pod", images, VERSION)


def test_a_version_that_cannot_be_a_label_is_refused() -> None:
    with pytest.raises(RenderError, match=r"version '1.0.0\+dirty' cannot be an app.kubernetes.io/version label"):
        render(local(), "single-pod", fake_images(), "1.0.0+dirty")


def test_a_service_on_sqlite_cannot_scale_in_split_pods() -> None:
    with pytest.raises(
        ConfigError,
        match=r"replicas.person = 2, but its SQLite file is on a ReadWriteOnce volume"
        r".*set replicas.person = 1, or database = \"mysql\"",
    ):
        render(local(replicas={"person": 2}), "split-pods", fake_images(), VERSION)


def test_single_pod_says_that_replicas_do_not_apply() -> None:
    rendered = render(local(replicas={"person": 2, "frontend": 3}), "single-pod", fake_images(), VERSION)
    assert rendered.notes == ("single-pod runs one of each part; replicas of frontend, person apply to split-pods",)


@pytest.mark.parametrize(
    "secret,state",
    [
        ("", "which is not set"),
        ("0123456789abcdef0123456789abcde", "which holds at most 124 bits of entropy, fewer than 128"),  # 31 hex digits
        ("a" * 64, "which holds at most 4 bits of entropy"),  # one repeated character counts once
        ("correcthorsebatterystaple", "which holds at most 119 bits"),  # 25 lower-case letters
    ],
)
def test_mysql_needs_the_secret_its_passwords_come_from(secret: str, state: str) -> None:
    environment = local(database="mysql", mysql_image=MYSQL_IMAGE)
    with pytest.raises(ConfigError, match=f"derives its passwords from K8SDEPLOY_MYSQL_SECRET, {state}"):
        render(environment, "split-pods", fake_images(), VERSION, mysql_secret=secret)


@pytest.mark.parametrize(
    "secret", ["0123456789abcdef" * 2, "Zm9vYmFyYmF6cXV4cXV1eHF1dXg", "x7-Kq_2mP9vL4nR8sT1wY6zB3c"]
)
def test_a_secret_of_128_bits_or_more_is_taken(secret: str) -> None:
    environment = local(database="mysql", mysql_image=MYSQL_IMAGE)
    assert render(environment, "split-pods", fake_images(), VERSION, mysql_secret=secret).objects
