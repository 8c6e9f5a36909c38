"""`--builder docker`: the same spec built by the Docker Engine from a generated Dockerfile, pushed
with `docker push` under the immutable version tag, and running like the OCI-built image.

Only the gateway image is built here: on the vfs storage driver every Dockerfile step copies the
whole root file system, so six images take minutes there (seconds on overlay2; bench/ measures them
all, on the driver the engine runs)."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from deploy.builders.bases import BaseResolver
from deploy.builders.deps import install_dependencies
from deploy.builders.docker import DockerBuilder, dockerfile
from deploy.builders.spec import LOCK, ImageSpec, suite_specs
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.clients import Clients
from deploy.model.errors import PublishError
from deploy.model.suite import GATEWAY, GATEWAY_COMMAND, GATEWAY_CONF, GATEWAY_RUNTIME_DIR
from deploy.model.version import version_of
from deploy.publish.docker import DockerPublisher
from deploy.registry.client import RegistryAddress
from tests.deploy.conftest import FAST_RETRY, BuiltSuite
from tests.registries import Registry


def gateway_spec(checkout: Path) -> ImageSpec:
    version = version_of(checkout)
    site_packages = install_dependencies(checkout / LOCK, default_cache_dir())
    return next(spec for spec in suite_specs(checkout, version, site_packages, {}) if spec.name == GATEWAY)


def test_generated_dockerfile_adds_the_same_layers_and_settings(source_repo: Path) -> None:
    spec = gateway_spec(source_repo)
    text = dockerfile(spec, "k8sdeploy-base:abc", ["0-gateway.tar.gz"])
    assert text.splitlines()[:2] == ["FROM k8sdeploy-base:abc", "ADD 0-gateway.tar.gz /"]
    assert f"CMD {json.dumps(list(GATEWAY_COMMAND))}" in text
    assert "USER 10001:10001" in text and "EXPOSE 8080" in text
    assert '"org.opencontainers.image.version"="1.0.0"' in text


def test_docker_builder_builds_pushes_and_respects_the_version_tag(
    tmp_path: Path, source_repo: Path, suite_build: BuiltSuite, fresh_registry: Registry
) -> None:
    engine = docker.from_env()
    clients = Clients(retry=FAST_RETRY)
    store = BlobStore(tmp_path / "store")
    builder = DockerBuilder(engine, BaseResolver(store, default_cache_dir(), clients.registry))
    built = builder.build(gateway_spec(source_repo))
    address = RegistryAddress.parse(f"{fresh_registry.host}/docker")
    publisher = DockerPublisher(engine, address, clients.registry)
    try:
        published = publisher.publish([built], "1.0.0", ("develop",))[GATEWAY]
        assert fresh_registry.digest(f"docker/{GATEWAY}", "1.0.0") == published.digest
        assert sorted(fresh_registry.tags(f"docker/{GATEWAY}")) == ["1.0.0", "develop"]
        assert publisher.publish([built], "1.0.0")[GATEWAY] == published  # same image: a no-op
        other = type(built)(GATEWAY, suite_build.image("person").config.digest, 0)
        with pytest.raises(PublishError, match="immutable"):
            publisher.publish([other], "1.0.0")
        check = ["nginx", "-t", "-p", GATEWAY_RUNTIME_DIR, "-e", "stderr", "-c", GATEWAY_CONF]
        output = engine.containers.run(built.image_id, check, remove=True, network_mode="host", stderr=True)
        assert b"test is successful" in output
    finally:
        engine.images.remove(built.image_id, force=True)
        engine.close()
