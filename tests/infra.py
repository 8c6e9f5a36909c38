"""Real servers the tests start for themselves: free loopback ports, a MariaDB server, single services."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.model.suite import DEMO_USERS
from deploy.targets.local.containers import port_is_free

ROOT = Path(__file__).resolve().parent.parent


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes source ports of outgoing connections from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free loopback ports, below the ephemeral range: a port from that
    range can be taken by any outgoing connection (a client, nginx to an upstream) between this check
    and the server's bind."""
    low, high = ephemeral_ports()
    choices = range(10000, low - size) if low - size > 10000 else range(high + 1, 65535 - size)
    for _ in range(200):
        base = random.choice(choices)
        if all(port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports on 127.0.0.1")


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class MariaDB:
    port: int
    user: str = "suite"
    password: str = "suite"

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{self.user}:{self.password}@127.0.0.1:{self.port}"


@contextmanager
def mariadb_server(work_dir: Path, port: int | None = None) -> Iterator[MariaDB]:
    """A throw-away MariaDB (Debian's mariadb-server) on a loopback port, with a TCP user."""
    for program in ("mariadb-install-db", "mariadbd", "mariadb"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            raise RuntimeError(f"{program} not found: run `make test`, which installs mariadb-server")
    data, sock = work_dir / "data", work_dir / "mysqld.sock"
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--user=root",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    port = port or free_port_block(1)
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    log = (work_dir / "server.log").open("wb")
    server = subprocess.Popen(
        [
            mariadbd,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-name-resolve",
            f"--pid-file={work_dir}/pid",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        db = MariaDB(port)
        subprocess.run(
            [
                "mariadb",
                f"--socket={sock}",
                "-e",
                f"CREATE USER '{db.user}'@'127.0.0.1' IDENTIFIED BY '{db.password}';"
                f" GRANT ALL ON *.* TO '{db.user}'@'127.0.0.1';",
            ],
            check=True,
            capture_output=True,
        )
        yield db
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@dataclass
class ServiceProcess:
    """One service started with `python -m services.NAME`, its output captured."""

    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


# The tests' services seed the demo users, as a demo environment's do (deploy/users.py).
DEMO_SEED = {"SEED_USERS": json.dumps([user.seed() for user in DEMO_USERS])}


def start_service(name: str, work_dir: Path, env: dict[str, str]) -> ServiceProcess:
    port = free_port_block(1)
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / f"{name}-{port}.log"
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "PYTHONPATH": str(ROOT), **DEMO_SEED, **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=full_env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServiceProcess(name, port, process, log_path)


def wait_ready(service: ServiceProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log()}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{service.name} not ready after {timeout}s:\n{service.log()}")


# The versions of the made-up source repositories that tests build (tags v1.0.0 and v7.7.1). Their
# content follows the checkout, so an engine that kept them from an older checkout would refuse the
# rebuild (version tags are immutable): tests that build into the engine forget them first.
TEST_VERSIONS = ("1.0.0", "7.7.1")


def forget_test_versions(client) -> None:  # noqa: ANN001 - docker.DockerClient
    import docker.errors

    for image in client.images.list(name="k8sdeploy/*"):
        for tag in image.tags:
            version = tag.rsplit(":", 1)[-1]
            if version.startswith(TEST_VERSIONS):
                try:
                    client.images.remove(tag, force=True, noprune=True)
                except docker.errors.APIError:
                    pass  # already gone


def remove_environment(client, owned: dict) -> None:  # noqa: ANN001 - docker.DockerClient
    """Remove the containers and volumes a test's environment left (its labels in `owned`)."""
    for container in client.containers.list(all=True, filters=owned):
        container.remove(force=True)
    for volume in client.volumes.list(filters=owned):
        volume.remove(force=True)


def require_suite_ports(client, timeout: float = 30) -> None:  # noqa: ANN001 - docker.DockerClient
    """Tests that deploy the real suite on the engine need its fixed ports (8080-8085). Wait briefly for
    them (an earlier module's environment going away); if something keeps them, fail at once saying
    what: a k8sdeploy environment, such as the demo's, or another process."""
    from deploy.model.suite import GATEWAY_PORT, SERVICES

    ports = (GATEWAY_PORT, *(service.port for service in SERVICES))
    deadline = time.monotonic() + timeout
    while not all(port_is_free(port) for port in ports):
        if time.monotonic() > deadline:
            taken = [port for port in ports if not port_is_free(port)]
            environments = sorted(
                {
                    c.labels.get("k8sdeploy.io/environment", "?")
                    for c in client.containers.list(filters={"label": "app.kubernetes.io/managed-by=k8sdeploy"})
                }
            )
            holder = (
                (
                    f"k8sdeploy environment {', '.join(environments)}: run `k8sdeploy down --yes --env "
                    f"{environments[0]}` first (`make down` for the demo's, local)"
                )
                if environments
                else "another process: stop it first"
            )
            pytest.fail(f"the suite's ports {', '.join(map(str, taken))} are taken by {holder}", pytrace=False)
        time.sleep(1)


@contextmanager
def suite_environment(owned: dict) -> Iterator:
    """The Docker Engine for tests that deploy the real suite: once its fixed ports are free, and with
    the test environment's containers and volumes (its labels in `owned`) removed afterwards."""
    import docker

    client = docker.from_env()
    require_suite_ports(client)
    try:
        yield client
    finally:
        remove_environment(client, owned)
