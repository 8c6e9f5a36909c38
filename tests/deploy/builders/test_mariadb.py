"""The `mariadb` base (deploy/builders/mariadb.py), built through BaseResolver from the machine's k8sdeploy cache
(debootstrap the first time only), loaded into the local Docker Engine and run as the cluster runs it: user 10001,
read-only root, the data directory a volume, init.sql from deploy/render/credentials.py, host network on a free
loopback port. The services' users log in and migrate their databases; a second start keeps the data and runs no
init script; an initialisation a crash left half done is begun again; a missing or unsafe root password is refused
in one line."""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pymysql
import pytest

from deploy.builders import mariadb
from deploy.builders.bases import BaseImage, BaseResolver
from deploy.builders.docker_archive import LOCAL_PREFIX, load_into_engine
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.clients import Clients
from deploy.publish.bases import base_image
from deploy.render.credentials import init_sql, password
from services.common import config as service_config
from services.common.db import Database, Migrations
from tests.deploy.conftest import FAST_RETRY
from tests.infra import ROOT, free_port_block, wait_for_port

pytestmark = pytest.mark.timeout(900)  # the first run on a machine debootstraps the base

SECRET = "mariadb-test-" + "5eed" * 16  # what $K8SDEPLOY_MYSQL_SECRET would be
SERVICES = ("person", "session")  # the services whose users init.sql makes, and whose migrations run on the server
PASSWORDS = {service: password(SECRET, "mariadb-test", service) for service in SERVICES}
ROOT_PASSWORD = password(SECRET, "mariadb-test", "root")


def resolver(tmp_path: Path, step=None) -> BaseResolver:  # noqa: ANN001 - a progress Step
    store = BlobStore(tmp_path)
    kwargs = {"step": step} if step else {}
    return BaseResolver(store, default_cache_dir(), Clients(retry=FAST_RETRY).registry, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[BaseImage, BaseResolver]:
    bases = resolver(tmp_path_factory.mktemp("store"))
    return bases.resolve("debootstrap:mariadb"), bases


@pytest.fixture(scope="module")
def image(built: tuple[BaseImage, BaseResolver]) -> Iterator[str]:
    """The base in the local engine (loaded once; kept there, like the tests' other images)."""
    base, bases = built
    engine = docker.from_env()
    tag = f"{LOCAL_PREFIX}/mariadb-base:{base.digest.split(':')[1][:12]}"
    yield load_into_engine(engine, base_image("mariadb", base, bases.store), [tag])
    engine.close()


@dataclass
class Volumes:
    """Host directories for the server's volumes: the data (owned by 10001, as fsGroup leaves a claim), the socket's
    directory, and the init scripts (read-only)."""

    root: Path

    def __post_init__(self) -> None:
        for name in ("data", "run", "init"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        os.chown(self.root / "data", 10001, 10001)
        os.chown(self.root / "run", 10001, 10001)
        (self.root / "init" / "init.sql").write_text(init_sql(PASSWORDS))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> str:
        return str(self.root / "run" / "mysqld.sock")

    def mounts(self) -> dict:
        return {
            str(self.data): {"bind": "/var/lib/mysql", "mode": "rw"},
            str(self.root / "run"): {"bind": "/var/run/mysqld", "mode": "rw"},
            str(self.root / "init"): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"},
        }


def run(image: str, volumes: Volumes | None, environment: dict, args: list[str]):  # noqa: ANN201 - a Container
    engine = docker.from_env()
    try:
        return engine.containers.run(
            image,
            args,
            detach=True,
            network_mode="host",
            read_only=True,
            user="10001:10001",
            environment=environment,
            volumes=volumes.mounts() if volumes else {},
            tmpfs={"/tmp": "rw,mode=1777,size=256m"},
        )
    finally:
        engine.close()


@dataclass
class Started:
    port: int
    container: Any  # docker.models.containers.Container

    def logs(self) -> str:
        return self.container.logs(stdout=False, stderr=True).decode()

    def connect(self, user: str, password: str, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, database=database, connect_timeout=5
        )


@contextmanager
def server(image: str, volumes: Volumes) -> Iterator[Started]:
    """The server on a free loopback port; stopped (SIGTERM, the image's StopSignal) and removed by its id."""
    port = free_port_block(1)
    container = run(
        image, volumes, {"MYSQL_ROOT_PASSWORD": ROOT_PASSWORD}, [f"--port={port}", "--bind-address=127.0.0.1"]
    )
    try:
        started = Started(port, container)
        deadline = time.monotonic() + 120
        while True:
            container.reload()
            if container.status == "exited":
                raise AssertionError(f"the server exited:\n{started.logs()}")
            try:
                wait_for_port(port, timeout=1)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not listen in 120 s:\n{started.logs()}") from None
        yield started
        container.stop(timeout=30)
        assert container.wait(timeout=30)["StatusCode"] == 0, started.logs()  # a clean shutdown on SIGTERM
        assert "Shutdown complete" in started.logs()
    finally:
        container.remove(force=True)


def refusal(image: str, environment: dict) -> tuple[int, str]:
    """Exit status and stderr of a start that is refused."""
    container = run(image, None, environment, [])
    try:
        status = container.wait(timeout=60)["StatusCode"]
        return status, container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)


def steps(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if line.startswith("k8sdeploy-mariadb: ")]


# -- the image ---------------------------------------------------------------------------------------------------


def test_resolving_twice_gives_the_same_digest_from_the_cache(
    tmp_path: Path, built: tuple[BaseImage, BaseResolver]
) -> None:
    said: list[str] = []
    again = resolver(tmp_path, step=lambda _subject, message: said.append(message)).resolve("debootstrap:mariadb")
    assert again.digest == built[0].digest and again.config == built[0].config
    assert not any("building" in line for line in said)  # from the cache: nothing debootstrapped

    runtime = again.config_json["config"]
    assert runtime["Entrypoint"] == [mariadb.ENTRYPOINT] and runtime["StopSignal"] == "SIGTERM"
    assert runtime["ExposedPorts"] == {"3306/tcp": {}} and runtime["User"] == "10001:10001"
    [layer] = again.layers
    with tarfile.open(built[1].store.path(layer.digest)) as tar:
        members = {member.name: member for member in tar.getmembers()}
    assert members["usr/local/bin/k8sdeploy-mariadb"].mode == 0o755
    assert "usr/sbin/mariadbd" in members and "usr/share/mysql/mysql_system_tables.sql" in members
    assert [name for name in members if name.startswith("var/lib/mysql/")] == []  # the data directory: a volume
    assert (members["var/lib/mysql"].uid, members["run/mysqld"].uid) == (10001, 10001)


# -- running it --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Volumes:
    return Volumes(tmp_path_factory.mktemp("mariadb"))


def test_first_start_initialises_the_users_of_init_sql_and_root(image: str, volumes: Volumes) -> None:
    with server(image, volumes) as started:
        person = started.connect("person", PASSWORDS["person"], "person")
        with person.cursor() as cursor:
            cursor.execute("CREATE TABLE kept (id INT PRIMARY KEY)")
            cursor.execute("INSERT INTO kept VALUES (7)")
            person.commit()
            for other in ("session", "mysql"):
                with pytest.raises(pymysql.err.OperationalError, match="CREATE command denied"):
                    cursor.execute(f"CREATE TABLE {other}.intruder (id INT)")
            cursor.execute("SELECT @@character_set_database")
            assert cursor.fetchone() == ("utf8mb4",)
        person.close()
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            started.connect("root", "wrong")
        for root in (
            started.connect("root", ROOT_PASSWORD),  # over TCP: root@%
            pymysql.connect(unix_socket=volumes.socket, user="root", password=ROOT_PASSWORD),  # root@localhost
        ):
            with root.cursor() as cursor:
                cursor.execute("SELECT user, host FROM mysql.user WHERE user = 'root' ORDER BY host")
                assert cursor.fetchall() == (("root", "%"), ("root", "localhost"))  # no password-less root left
            root.close()
        said = steps(started.logs())
    assert said[0] == "k8sdeploy-mariadb: initialising the data directory in /var/lib/mysql/data.new"
    assert "k8sdeploy-mariadb: running /docker-entrypoint-initdb.d/init.sql" in said
    assert said[-2:] == [
        "k8sdeploy-mariadb: data directory /var/lib/mysql/data is ready",
        "k8sdeploy-mariadb: starting mariadbd on /var/lib/mysql/data",
    ]
    assert sorted(path.name for path in volumes.data.iterdir()) == ["data"]


def test_the_services_migrate_their_databases_on_it(image: str, volumes: Volumes) -> None:
    with server(image, volumes) as started:
        for service in SERVICES:
            url = f"mysql://{service}:{PASSWORDS[service]}@127.0.0.1:{started.port}/{service}"
            config = service_config.load(service, 8000, env={"DATABASE_URL": url, "DB_WAIT_SECONDS": "30"})
            assert config.database_url.startswith("mysql+pymysql://")
            database = Database(config, Migrations(ROOT / "services" / service / "migrations"))
            database.start()  # the service's own start: wait, take the migration lock, migrate
            assert database.migrations.current(database.engine) == database.migrations.head
            database.engine.dispose()


def test_a_second_start_keeps_the_data_and_runs_no_init_script(image: str, volumes: Volumes) -> None:
    (volumes.root / "init" / "zz-later.sql").write_text("CREATE DATABASE later;\n")
    try:
        with server(image, volumes) as started:
            person = started.connect("person", PASSWORDS["person"], "person")
            with person.cursor() as cursor:
                cursor.execute("SELECT id FROM kept")
                assert cursor.fetchall() == ((7,),)
                cursor.execute("SHOW DATABASES LIKE 'later'")
                assert cursor.fetchall() == ()
            person.close()
            said = steps(started.logs())
    finally:
        (volumes.root / "init" / "zz-later.sql").unlink()
    assert said == ["k8sdeploy-mariadb: starting mariadbd on /var/lib/mysql/data"]


def test_an_initialisation_a_crash_left_is_begun_again(image: str, tmp_path: Path) -> None:
    volumes = Volumes(tmp_path)
    junk = volumes.data / "data.new"
    junk.mkdir()
    (junk / "ibdata1").write_bytes(b"half of a tablespace")
    (junk / "mysql").mkdir()
    for path in (junk, junk / "ibdata1", junk / "mysql"):
        os.chown(path, 10001, 10001)
    with server(image, volumes) as started:
        started.connect("person", PASSWORDS["person"], "person").close()
        said = steps(started.logs())
    assert said[:2] == [
        "k8sdeploy-mariadb: removing /var/lib/mysql/data.new, left by a start that did not finish",
        "k8sdeploy-mariadb: initialising the data directory in /var/lib/mysql/data.new",
    ]
    assert sorted(path.name for path in volumes.data.iterdir()) == ["data"]


def test_a_failing_init_script_leaves_no_data_directory(image: str, tmp_path: Path) -> None:
    volumes = Volumes(tmp_path)
    (volumes.root / "init" / "init.sql").write_text("CREATE TABLE nowhere.t (id INT);\n")
    container = run(image, volumes, {"MYSQL_ROOT_PASSWORD": ROOT_PASSWORD}, [])
    try:
        assert container.wait(timeout=120)["StatusCode"] == 1
        logs = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    assert "k8sdeploy-mariadb: bootstrapping /var/lib/mysql/data.new failed" in logs
    assert "Unknown database 'nowhere'" in logs
    assert not (volumes.data / "data").exists()  # the next start begins again


@pytest.mark.parametrize(
    ("environment", "said"),
    [
        ({}, "MYSQL_ROOT_PASSWORD is not set"),
        ({"MYSQL_ROOT_PASSWORD": ""}, "MYSQL_ROOT_PASSWORD is not set"),
        ({"MYSQL_ROOT_PASSWORD": "x'; DROP USER root; --"}, "MYSQL_ROOT_PASSWORD may hold only letters, digits"),
        ({"MYSQL_ROOT_PASSWORD": "two\nlines"}, "MYSQL_ROOT_PASSWORD may hold only letters, digits"),
    ],
    ids=["unset", "empty", "quote", "newline"],
)
def test_a_missing_or_unsafe_root_password_is_refused_in_one_line(image: str, environment: dict, said: str) -> None:
    status, logs = refusal(image, environment)
    assert status != 0
    [line] = logs.splitlines()
    assert line.startswith(f"k8sdeploy-mariadb: {said}")
