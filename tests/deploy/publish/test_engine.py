"""The images run: loaded into the real Docker Engine (host networking only), every service answers
/readyz, the gateway serves the login page and a login works; a registry image pulls and runs too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import docker
import docker.errors
import httpx
import pytest
from docker.models.images import ImageCollection

from deploy.clients import Clients
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.suite import (
    APP_USER_ID,
    GATEWAY,
    GATEWAY_CONF,
    GATEWAY_LUA_DIR,
    GATEWAY_RUNTIME_DIR,
    IDENTITY_DIR,
    SERVICES,
    url_variable,
)
from deploy.publish.engine import EnginePublisher
from deploy.publish.push import RegistryPublisher
from deploy.registry.client import RegistryAddress
from deploy.render.gateway import GatewayConfig, render_nginx_conf
from tests.deploy.conftest import FAST_RETRY, BuiltSuite
from tests.helpers import client, login
from tests.infra import DEMO_SEED, free_port_block, write_identity
from tests.registries import Registry


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def prefix(engine: docker.DockerClient) -> Iterator[str]:
    """A repository prefix of this session only, removed afterwards (the engine is shared)."""
    prefix = f"k8sdeploy-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for image in engine.images.list():
        for tag in image.tags:
            if tag.startswith(prefix + "/"):
                engine.images.remove(tag, noprune=False)


@pytest.fixture(scope="module")
def loaded(engine: docker.DockerClient, prefix: str, suite_build: BuiltSuite) -> Mapping[str, PublishedImage]:
    return EnginePublisher(engine, prefix=prefix).publish(suite_build.images, suite_build.version.version)


def local_ref(image) -> str:  # noqa: ANN001 - in the engine the digest is an image ID: run by tag
    return f"{image.repository}:{image.tag}"


class Containers:
    def __init__(self, engine: docker.DockerClient):
        self.engine, self.started = engine, []

    def run(self, image: str, **options):  # noqa: ANN201
        container = self.engine.containers.run(image, detach=True, network_mode="host", **options)
        self.started.append(container)
        return container

    def remove_all(self) -> None:
        for container in self.started:
            container.remove(force=True)


@pytest.fixture
def containers(engine: docker.DockerClient) -> Iterator[Containers]:
    running = Containers(engine)
    yield running
    running.remove_all()


def wait_ready(url: str, container, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready; container log:\n{container.logs().decode(errors='replace')[-3000:]}")


def test_loaded_under_the_version_tag_with_the_image_id(
    loaded: Mapping[str, PublishedImage], suite_build: BuiltSuite, engine: docker.DockerClient, prefix: str
) -> None:
    for image in suite_build.images:
        published = loaded[image.name]
        assert published.digest == image.config.digest
        assert engine.images.get(f"{prefix}/{image.name}:1.0.0").id == image.config.digest


def test_publishing_again_loads_nothing(
    loaded: Mapping[str, PublishedImage],
    suite_build: BuiltSuite,
    engine: docker.DockerClient,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loads this process sends to the engine are counted (the engine's own `load` events are not: other test
    workers load images into the same engine meanwhile)."""
    loads: list[object] = []
    real = ImageCollection.load

    def load(self: ImageCollection, data: object) -> object:
        loads.append(data)
        return real(self, data)

    monkeypatch.setattr(ImageCollection, "load", load)
    again = EnginePublisher(engine, prefix=prefix).publish(suite_build.images, "1.0.0")
    assert loads == []
    assert again == loaded


def test_another_image_under_the_same_local_tag_is_refused(
    loaded: Mapping[str, PublishedImage], suite_build: BuiltSuite, engine: docker.DockerClient, prefix: str
) -> None:
    swapped = [suite_build.image("session")]
    engine.api.tag(suite_build.image("person").config.digest, f"{prefix}/session", "9.9.9")
    with pytest.raises(PublishError, match="immutable"):
        EnginePublisher(engine, prefix=prefix).publish(swapped, "9.9.9")


def readable_keys(directory: Path) -> dict:
    """Every part's key file (deploy/identity.py), readable by the images' user, as a read-only volume at the
    directory the parts read them from (k8sdeploy mounts a Secret there)."""
    write_identity(directory)
    for path in (directory, *directory.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return {str(directory): {"bind": IDENTITY_DIR, "mode": "ro"}}


def test_the_six_images_run_and_serve_a_login(
    loaded: Mapping[str, PublishedImage], containers: Containers, tmp_path: Path
) -> None:
    base = free_port_block(6)
    ports = {service.name: base + 1 + index for index, service in enumerate(SERVICES)}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    keys = readable_keys(tmp_path / "identity")
    for service in SERVICES:
        env = {
            "PORT": str(ports[service.name]),
            "HOST": "127.0.0.1",
            "DB_WAIT_SECONDS": "10",
            "IDENTITY_KEYS": f"{IDENTITY_DIR}/{service.name}",
            **{url_variable(peer): urls[peer] for peer in service.calls},
            **DEMO_SEED,
        }  # the demo users
        container = containers.run(local_ref(loaded[service.name]), environment=env, volumes=keys)
        wait_ready(f"{urls[service.name]}/readyz", container)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_nginx_conf(
            GatewayConfig(
                upstreams={name: f"127.0.0.1:{port}" for name, port in ports.items()},
                listen=f"127.0.0.1:{base}",
                runtime_dir=GATEWAY_RUNTIME_DIR,
                lua_dir=GATEWAY_LUA_DIR,
                login_rate="600r/m",
                identity_keys=f"{IDENTITY_DIR}/{GATEWAY}",
            )
        )
    )
    conf.chmod(0o644)
    gateway = containers.run(
        local_ref(loaded[GATEWAY]), volumes={str(conf): {"bind": GATEWAY_CONF, "mode": "ro"}, **keys}
    )
    wait_ready(f"http://127.0.0.1:{base}/readyz", gateway)
    with client(f"http://127.0.0.1:{base}") as http:
        page = http.get("/login")
        assert page.status_code == 200 and 'name="emailaddress"' in page.text
        assert login(http, "admin@test.com", "admin").status_code == 302
        assert "AccessToken" in http.cookies
        assert http.get("/persons").status_code == 200


def test_images_run_as_the_app_user_and_the_baked_gateway_config_is_valid(
    loaded: Mapping[str, PublishedImage], engine: docker.DockerClient
) -> None:
    output = engine.containers.run(local_ref(loaded["person"]), ["id", "-u"], remove=True, network_mode="host")
    assert output.decode().strip() == str(APP_USER_ID)
    check = ["nginx", "-t", "-p", GATEWAY_RUNTIME_DIR, "-e", "stderr", "-c", GATEWAY_CONF]
    container = engine.containers.run(local_ref(loaded[GATEWAY]), check, detach=True, network_mode="host")
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode()
        assert "test is successful" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_an_image_pushed_to_the_registry_pulls_and_runs(
    fresh_registry: Registry,
    suite_build: BuiltSuite,
    engine: docker.DockerClient,
    containers: Containers,
    tmp_path: Path,
) -> None:
    clients = Clients(retry=FAST_RETRY)
    published = RegistryPublisher(
        RegistryAddress.parse(f"{fresh_registry.host}/pulled"), clients.registry(fresh_registry.host)
    ).publish([suite_build.image("authorisation")], "1.0.0")
    ref = published["authorisation"]
    pulled = engine.images.pull(f"{ref.repository}@{ref.digest}")
    try:
        assert pulled.id == suite_build.image("authorisation").config.digest
        port = free_port_block(1)
        container = containers.run(
            f"{ref.repository}@{ref.digest}",
            environment={"PORT": str(port), "IDENTITY_KEYS": f"{IDENTITY_DIR}/authorisation"},
            volumes=readable_keys(tmp_path / "identity"),
        )
        wait_ready(f"http://127.0.0.1:{port}/readyz", container)
    finally:
        containers.remove_all()
        containers.started.clear()
        engine.images.remove(f"{ref.repository}@{ref.digest}", force=True)
