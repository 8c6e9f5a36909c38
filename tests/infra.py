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
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from deploy.identity import PARTS, Identity, new_key
from deploy.model.suite import DEMO_USERS, PORT_SPAN
from deploy.targets.local.containers import port_is_free
from deploy.users import private_write
from services.common import context
from services.common.identity import Keyring

ROOT = Path(__file__).resolve().parent.parent


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes source ports of outgoing connections from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def port_range() -> range:
    """Where this process picks its ports: below the ephemeral range (a port from that range can be taken by any
    outgoing connection, a client's or nginx's to an upstream, between the check and the server's bind), and for
    a pytest-xdist worker its own share of it, so that a port one worker found free is not bound by another
    worker's environment later."""
    low, high = ephemeral_ports()
    whole = range(10000, low) if low - 10000 > 2000 else range(high + 1, 65535)
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if count > 1 and worker.startswith("gw") and worker[2:].isdigit():
        share = len(whole) // count
        start = whole.start + (int(worker[2:]) % count) * share
        return range(start, start + share)
    return whole


# Every port free_port_block handed out in this process. A block is chosen long before it is bound (a module's
# LocalEnvironment at collection, the suite's six ports only at its `up`), and in between free_port_block(1) of
# another test in the same worker, whose server may still listen then, must not take a port of it.
_HANDED_OUT: set[int] = set()
_HANDING_OUT = threading.Lock()


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free loopback ports of this process's port_range(), none of them handed out
    before in this process."""
    ports = port_range()
    choices = range(ports.start, ports.stop - size)
    with _HANDING_OUT:
        for _ in range(200):
            base = random.choice(choices)
            block = range(base, base + size)
            if _HANDED_OUT.isdisjoint(block) and all(port_is_free(port) for port in block):
                _HANDED_OUT.update(block)
                return base
    raise RuntimeError(f"no block of {size} free ports on 127.0.0.1 in {ports.start}-{ports.stop - 1}")


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
    install = [
        "mariadb-install-db",
        "--no-defaults",
        f"--datadir={data}",
        "--auth-root-authentication-method=normal",
        "--user=root",
        "--skip-test-db",
    ]
    for attempt in (1, 2):  # once it failed in a full CI run (exit 1) and passed alone: its output says why
        done = subprocess.run(install, capture_output=True, text=True)
        if done.returncode == 0:
            break
        said = (done.stderr.strip() or done.stdout.strip() or "(no output)").splitlines()[-5:]
        if attempt == 2:
            raise RuntimeError(f"mariadb-install-db failed twice (exit {done.returncode}): " + " | ".join(said))
        print(f"mariadb-install-db failed (exit {done.returncode}), trying once more: {' | '.join(said)}")
        shutil.rmtree(data, ignore_errors=True)
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
    keys: Path  # the directory of every part's key file, the service's own among them

    def token(self, issuer: str, subject: str = "") -> dict[str, str]:
        """Authorization for a call of `issuer` to this service, for the user `subject`."""
        return signed(self.keys, issuer, self.name, subject)

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
DEMO_SEED = {"SEED_USERS": json.dumps([login.user().seed() for login in DEMO_USERS])}


def write_identity(directory: Path, identity: Identity | None = None) -> Path:
    """Every part's key file in `directory` (deploy/identity.py), of `identity` or of a new one."""
    identity = identity or Identity("test", (new_key(int(time.time())),))
    for part in PARTS:
        private_write(directory / part, identity.key_file(part))
    return directory


def signed(keys: Path, issuer: str, audience: str, subject: str = "", with_context: bool = True) -> dict[str, str]:
    """Authorization of `issuer` for `audience` on behalf of `subject`, signed with `issuer`'s key file in `keys`;
    for a user, also the session service's user contexts for them (services/common/context.py) unless not
    `with_context`: what a caller that acts for a user sends."""
    headers = {"Authorization": f"Bearer {Keyring(issuer, keys / issuer).sign(audience, subject)}"}
    if subject and with_context:
        headers[context.HEADER] = user_context(keys, subject)
    return headers


def login_proof(keys: Path, user_id: str, proof_id: str = "") -> str:
    """authentication's proof of a login of `user_id`, which opens one session (its `jti`: random by default)."""
    claims = {"jti": proof_id or uuid.uuid4().hex, "email": f"user{user_id}@test.com"}
    return Keyring("authentication", keys / "authentication").sign("session", user_id, claims=claims)


def user_context(keys: Path, subject: str, role: str = "", session: str = "test-session") -> str:
    """The session service's user contexts for `subject` (the demo users' roles by default)."""
    role = role or {"1": "admin"}.get(subject, "user")
    email = {"1": "admin@test.com", "2": "user@test.com"}.get(subject, f"user{subject}@test.com")
    return context.issue(Keyring(context.ISSUER, keys / context.ISSUER), subject, role, session, email)


def start_service(
    name: str, work_dir: Path, env: dict[str, str], root: Path = ROOT, *, keys: Path | None = None
) -> ServiceProcess:
    """`python -m services.NAME` from the sources in `root` (a copy with other migrations, say); `keys`: a directory
    of key files (write_identity), by default new ones in `work_dir`."""
    port = free_port_block(1)
    work_dir.mkdir(parents=True, exist_ok=True)
    keys = keys or write_identity(work_dir / f"identity-{port}")
    log_path = work_dir / f"{name}-{port}.log"
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PYTHONPATH": str(root),
        "IDENTITY_KEYS": str(keys / name),
        **DEMO_SEED,
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=full_env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServiceProcess(name, port, process, log_path, keys)


def wait_ready(service: ServiceProcess, timeout: float = 120) -> None:
    """Until `service` answers /readyz; a bound on a failure, generous for a busy machine (parallel workers)."""
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

    from deploy.builders.docker_archive import LOCAL_PREFIX

    for image in client.images.list(name=f"{LOCAL_PREFIX}/*"):
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


@dataclass(frozen=True)
class LocalEnvironment:
    """A local-target environment of one test module in one test process: a name no other process uses (two
    workers, or two checkouts' test runs, share the Docker Engine), and a free block of ports for the gateway
    and the five services (gateway_port), so it runs beside `make demo`'s environment and any other."""

    name: str
    port_base: int

    @classmethod
    def new(cls, prefix: str) -> LocalEnvironment:
        return cls(f"{prefix}-{os.getpid()}", free_port_block(PORT_SPAN))

    @property
    def owned(self) -> dict:
        """A Docker filter for its containers and volumes."""
        return {"label": [f"k8sdeploy.io/environment={self.name}", "app.kubernetes.io/managed-by=k8sdeploy"]}

    @property
    def ports(self) -> range:
        return range(self.port_base, self.port_base + PORT_SPAN)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    def table(self, layout: str = "single-pod", **more: str) -> str:
        """Its [environments.NAME] table for a k8sdeploy.toml."""
        lines = [f"[environments.{self.name}]", "local = {}", f'layout = "{layout}"']
        lines += [f"gateway_port = {self.port_base}", *(f"{key} = {value}" for key, value in more.items())]
        return "\n".join(lines) + "\n"


@contextmanager
def suite_environment(owned: dict) -> Iterator:
    """The Docker Engine for tests that deploy the real suite (on ports of their own: LocalEnvironment), with
    the test environment's containers and volumes (its labels in `owned`) removed before and afterwards."""
    import docker

    client = docker.from_env()
    remove_environment(client, owned)
    try:
        yield client
    finally:
        remove_environment(client, owned)


@dataclass
class Clock:
    """An in-process service's idea of now (naive UTC), moved by the tests instead of slept on."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run `app` with uvicorn in a thread on a free loopback port."""
    port = free_port_block(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the service did not start on port {port}")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"
