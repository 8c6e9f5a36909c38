"""The six images: their configuration follows the image contract, the dependency layer is shared,
and two clones with different paths and file times give identical digests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploy.model.images import IMAGE_NAMES
from deploy.model.suite import APP_USER_ID, GATEWAY_COMMAND, SERVICES, Service
from tests.deploy.conftest import BuiltSuite, build_suite, clone

LABELS = (
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "org.opencontainers.image.created",
)


def config_of(suite: BuiltSuite, name: str) -> dict:
    image = suite.image(name)
    return json.loads(image.store.read(image.config.digest))


def test_six_images_in_order(suite_build: BuiltSuite) -> None:
    assert [image.name for image in suite_build.images] == list(IMAGE_NAMES)
    assert suite_build.version.version == "1.0.0"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_service_image_runs_its_module_as_the_app_user(suite_build: BuiltSuite, service: Service) -> None:
    config = config_of(suite_build, service.name)
    runtime = config["config"]
    assert runtime["Cmd"] == list(service.command)
    assert runtime["User"] == f"{APP_USER_ID}:{APP_USER_ID}"
    assert runtime["ExposedPorts"] == {f"{service.port}/tcp": {}}
    env = dict(entry.split("=", 1) for entry in runtime["Env"])
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == str(service.port)
    assert ("DATABASE_PATH" in env) == service.database
    assert runtime["Labels"]["org.opencontainers.image.version"] == "1.0.0"
    assert runtime["Labels"]["org.opencontainers.image.created"] == "2024-05-01T12:00:00Z"
    assert config["created"] == "2024-05-01T12:00:00Z"
    assert set(LABELS) <= set(runtime["Labels"])


def test_gateway_image_runs_nginx_as_the_app_user(suite_build: BuiltSuite) -> None:
    runtime = config_of(suite_build, "nginx-lua")["config"]
    assert runtime["Cmd"] == list(GATEWAY_COMMAND)
    assert runtime["User"] == f"{APP_USER_ID}:{APP_USER_ID}"
    assert runtime["ExposedPorts"] == {"8080/tcp": {}}


def test_the_dependency_layer_is_one_blob_shared_by_the_five_services(suite_build: BuiltSuite) -> None:
    services = [suite_build.image(service.name) for service in SERVICES]
    dependency_layers = {image.layers[-2] for image in services}
    application_layers = {image.layers[-1] for image in services}
    assert len(dependency_layers) == 1
    assert len(application_layers) == 5
    assert len({image.layers[0] for image in services}) == 1  # the same base


def test_two_clones_give_identical_digests(tmp_path: Path, source_repo: Path, suite_build: BuiltSuite) -> None:
    other = clone(source_repo, tmp_path / "a" / "much" / "longer" / "path" / "suite")
    for path in other.rglob("*"):  # a checkout made at another time
        os.utime(path, (1_234_567_890, 1_234_567_890), follow_symlinks=False)
    rebuilt = build_suite(other, tmp_path / "other-store")
    assert [image.digest for image in rebuilt.images] == [image.digest for image in suite_build.images]
    assert rebuilt.images[0].store.root != suite_build.images[0].store.root
