"""One image type between builders and publishers (deploy/builders/__init__.py): ImageBuild holds a builder and
a publisher of the same image type, so a builder's images go to any publisher that takes them, and a pair that
does not meet is a type error that mypy finds, not a run-time surprise."""

from __future__ import annotations

from pathlib import Path

from mypy import api

from tests.infra import ROOT

PAIRS = """
from deploy.builders.docker import DockerBuilder
from deploy.builders.oci import OciBuilder
from deploy.publish.docker import DockerPublisher
from deploy.publish.engine import EnginePublisher
from deploy.publish.push import RegistryPublisher
from deploy.publish.stage import BuildOptions, ImageBuild
from deploy.builders.bases import BaseResolver
from deploy.model.progress import silent_step


def pair(options: BuildOptions, bases: BaseResolver, oci: OciBuilder, docker: DockerBuilder,
         registry: RegistryPublisher, engine: EnginePublisher, push: DockerPublisher) -> None:
    ImageBuild(options, bases, oci, registry, silent_step)
    ImageBuild(options, bases, oci, engine, silent_step)
    ImageBuild(options, bases, docker, push, silent_step)
    ImageBuild(options, bases, {builder}, {publisher}, silent_step)
"""


def checked(tmp_path: Path, builder: str, publisher: str) -> tuple[str, int]:
    module = tmp_path / "pairs.py"
    module.write_text(PAIRS.format(builder=builder, publisher=publisher))
    out, _err, status = api.run(
        [str(module), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache")]
    )
    return out, status


def test_a_builder_goes_with_the_publishers_of_its_image_type_only(tmp_path: Path) -> None:
    out, status = checked(tmp_path, "oci", "registry")
    assert status == 0, out
    refused = 'pairs.py:17: error: Cannot infer value of type parameter "Image" of "ImageBuild"'
    out, status = checked(tmp_path, "docker", "registry")  # an engine's image pushed as OCI blobs: no
    assert status == 1 and refused in out and out.count("error:") == 1, out
    out, status = checked(tmp_path, "oci", "push")  # `docker push` of layers the Engine does not have: no
    assert status == 1 and refused in out and out.count("error:") == 1, out
