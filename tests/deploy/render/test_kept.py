"""Renders kept by what they are made of (deploy/render/kept.py): the same inputs give the render back without
running the templates; a changed template, setting or image renders again; nothing secret is written."""

from __future__ import annotations

import dataclasses
import shutil
import stat
from pathlib import Path

import pytest

from deploy.render import kept, objects
from deploy.render.objects import render
from tests.deploy.inputs import MYSQL_SECRET, VARIANTS, VERSION, fake_images


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("K8SDEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "renders"


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the manifests to change."""
    copy = tmp_path / "manifests"
    shutil.copytree(objects.MANIFESTS_DIR, copy)
    monkeypatch.setattr(objects, "MANIFESTS_DIR", copy)
    return copy


def templates_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The layouts whose templates run from now on."""
    ran: list[str] = []
    real = objects.render_templates

    def counting(root: Path, layout: str, context: dict) -> tuple[str, tuple[dict, ...]]:
        ran.append(layout)
        return real(root, layout, context)

    monkeypatch.setattr(objects, "render_templates", counting)
    return ran


@pytest.mark.usefixtures("templates")
def test_the_same_inputs_are_not_rendered_twice(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = templates_run(monkeypatch)
    environment, layout = VARIANTS["split-pods"]
    first = render(environment, layout, fake_images(), VERSION, keep=True)
    again = render(environment, layout, fake_images(), VERSION, keep=True)
    assert ran == ["split-pods"] and again == first  # the layout, objects, YAML and notes alike
    (only,) = cache.glob("*.json")
    assert stat.S_IMODE(only.stat().st_mode) == 0o600


def test_a_changed_template_setting_image_or_version_renders_again(
    cache: Path, templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = templates_run(monkeypatch)
    environment, layout = VARIANTS["split-pods"]
    first = render(environment, layout, fake_images(), VERSION, keep=True)
    images = fake_images()
    images["person"] = dataclasses.replace(images["person"], digest="sha256:" + "9" * 64)
    by_image = render(environment, layout, images, VERSION, keep=True)
    assert "sha256:" + "9" * 64 in by_image.yaml and by_image.objects != first.objects
    scaled = environment.model_copy(update={"replicas": {"frontend": 4}})
    by_setting = render(scaled, layout, fake_images(), VERSION, keep=True)
    frontend = next(o for o in by_setting.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "frontend")
    assert frontend["spec"]["replicas"] == 4
    by_version = render(environment, layout, fake_images(), "1.2.4", keep=True)
    assert by_version.objects != first.objects
    services = templates / "split-pods" / "services.yaml.j2"
    services.write_text(services.read_text() + "# changed\n")
    by_template = render(environment, layout, fake_images(), VERSION, keep=True)
    assert "# changed" in by_template.yaml
    assert ran == ["split-pods"] * 5
    assert render(environment, layout, fake_images(), VERSION, keep=True) == by_template and len(ran) == 5


@pytest.mark.usefixtures("templates")
def test_a_render_holding_a_secret_is_never_written(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = templates_run(monkeypatch)
    environment, layout = VARIANTS["split-pods-mysql"]
    for _ in range(2):
        rendered = render(environment, layout, fake_images(), VERSION, mysql_secret=MYSQL_SECRET, keep=True)
        assert any(obj["kind"] == "Secret" for obj in rendered.objects)
    assert ran == ["split-pods", "split-pods"] and not list(cache.glob("*"))
    kept.keep("k", ({"kind": "Secret", "data": {"password": "c2VjcmV0"}},), "kind: Secret\n")
    assert not list(cache.glob("*"))


@pytest.mark.usefixtures("templates")
def test_a_render_not_asked_to_keep_is_made_each_time(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = templates_run(monkeypatch)
    environment, layout = VARIANTS["single-pod"]
    assert render(environment, layout, fake_images(), VERSION) == render(environment, layout, fake_images(), VERSION)
    assert ran == ["single-pod", "single-pod"] and not cache.exists()


def test_only_the_newest_renders_are_kept(cache: Path) -> None:
    for number in range(kept.KEEP + 4):
        kept.keep(f"key{number:02}", ({"kind": "ConfigMap", "data": {"n": str(number)}},), f"n: {number}\n")
    names = sorted(path.stem for path in cache.glob("*.json"))
    assert len(names) == kept.KEEP and "key00" not in names and f"key{kept.KEEP + 3:02}" in names
    assert kept.read(f"key{kept.KEEP + 3:02}") == kept.Kept(
        ({"kind": "ConfigMap", "data": {"n": str(kept.KEEP + 3)}},), f"n: {kept.KEEP + 3}\n"
    )
    (cache / "broken.json").write_text("{not json")
    assert kept.read("broken") is None and kept.read("missing") is None
