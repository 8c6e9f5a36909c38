"""Shared fixtures: the real suite on loopback (SQLite and MariaDB), started once per test session."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.devrun import LocalSuite, SuiteSettings
from tests.controlplane import TOKENS, KubeCluster
from tests.infra import MariaDB, free_port_block, mariadb_server, suite_environment
from tools.cluster.controlplane import Cluster, ControlPlane

# Tests stop the processes they start with Ctrl-C's SIGINT (`dev`, `make run`, an interrupted command). A test run
# started in the background by a shell without job control (`cmd &` in a script) ignores SIGINT, and processes
# inherit that: they would not stop. A handler here is reset to the default in every process the tests start.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The shared suites allow many logins: several tests log in. The rate limit itself is tested
# on a gateway with the shipped defaults (tests/gateway/test_rate_limit.py).
GENEROUS = {"login_rate": "6000r/m", "login_burst": 1000}


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    with mariadb_server(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


def start_suite(work_dir: Path, **settings) -> LocalSuite:
    return LocalSuite(SuiteSettings(work_dir=work_dir, base_port=free_port_block(6), **settings)).start()


@pytest.fixture(scope="session")
def sqlite_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSuite]:
    suite = start_suite(tmp_path_factory.mktemp("suite-sqlite"), **GENEROUS)
    yield suite
    suite.stop()


@pytest.fixture(scope="session")
def mysql_suite(tmp_path_factory: pytest.TempPathFactory, mariadb: MariaDB) -> Iterator[LocalSuite]:
    suite = start_suite(tmp_path_factory.mktemp("suite-mysql"), mysql_url=mariadb.url, **GENEROUS)
    yield suite
    suite.stop()


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def suite(request: pytest.FixtureRequest) -> LocalSuite:
    """The whole suite behind its gateway, once on SQLite and once on MariaDB."""
    return request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'mysql'}_suite")


@pytest.fixture(scope="session", autouse=True)
def engine_without_stale_test_versions() -> None:
    """Images of the tests' made-up versions left by an older checkout would be refused as changed."""
    import docker

    from tests.infra import forget_test_versions

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        return  # tests that need the engine say so themselves
    forget_test_versions(client)
    client.close()


@pytest.fixture(scope="module")
def suite_engine(request: pytest.FixtureRequest) -> Iterator:
    """The Docker Engine for a module that deploys the real suite on it (tests/infra.py's suite_environment): its
    fixed ports free, and the containers and volumes labelled as the module's OWNED removed afterwards."""
    with suite_environment(request.module.OWNED) as client:
        yield client


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The real Kubernetes control plane (etcd, API server, controllers, scheduler; KWOK's nodes), once per
    session. `make test` builds its binaries; a machine without them builds them here (minutes)."""
    plane = ControlPlane(
        tmp_path_factory.mktemp("control-plane"),
        base_port=free_port_block(4),
        tokens=TOKENS,
        die_with_parent=True,
        say=lambda _line: None,
    )
    try:
        yield plane.start()
    finally:
        plane.stop(remove_state=False)


@pytest.fixture
def kube_cluster(control_plane: Cluster, tmp_path: Path) -> Iterator[KubeCluster]:
    """This test's part of the control plane: a namespace name of its own (not created), removed afterwards."""
    kube = KubeCluster.new(control_plane, tmp_path)
    yield kube
    kube.cleanup()
