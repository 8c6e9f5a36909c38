"""Fixtures for the local target: the real Docker Engine, a tiny image made from Debian's busybox-static, and
the target on this test's environment, removed before and after."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from deploy.targets.local.pause import root_fs
from deploy.targets.local.target import LocalTarget

ENV = f"k8stest-{os.getpid()}"  # of this test process alone: parallel workers share the Docker Engine


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = docker.from_env()
    client.ping()
    return client


@pytest.fixture(scope="session")
def busybox(docker_client: docker.DockerClient) -> str:
    """An image holding busybox (httpd, sh, sleep, chown) and /www/readyz, imported with no registry.

    `docker import` stamps the time, so the image carries a digest of its tar as a label: an unchanged
    busybox reuses the image of an earlier run instead of leaving it dangling."""
    layer = root_fs(
        Path(shutil.which("busybox") or "/bin/busybox"),
        applets=("sh", "sleep", "httpd", "cat", "chown", "echo", "env", "touch"),
        directories=("www", "tmp", "data", "conf"),
        files={"www/readyz": b"ok\n", "www/healthz": b"ok\n"},
    )
    content = hashlib.sha256(layer).hexdigest()
    try:
        image = docker_client.images.get("k8sdeploy-test/busybox:1")
    except docker.errors.ImageNotFound:
        image = None
    if image is None or image.labels.get("k8sdeploy.test/content") != content:
        docker_client.api.import_image_from_data(
            layer,
            repository="k8sdeploy-test/busybox",
            tag="1",
            changes=["ENV PATH=/bin", f"LABEL k8sdeploy.test/content={content}"],
        )
        image = docker_client.images.get("k8sdeploy-test/busybox:1")
    return f"k8sdeploy-test/busybox:1@{image.id}"


@pytest.fixture
def target(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[LocalTarget]:
    target = LocalTarget(docker_client, ENV, state_dir=tmp_path / "state")
    target.down(volumes=True)
    yield target
    target.down(volumes=True)
