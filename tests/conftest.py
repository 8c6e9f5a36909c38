"""Shared fixtures: the real suite on loopback (SQLite and MariaDB), started once per test session."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite's images of this checkout's test runs go into a namespace of the local engine of their own (not
# k8sdeploy/, the demo's): another checkout's run, its tests building the same made-up versions (1.0.0) from other
# sources, never forgets or refuses these. Set before deploy/ is imported (deploy/builders/docker_archive.py).
os.environ.setdefault(
    "K8SDEPLOY_LOCAL_PREFIX", "k8sdeploy-test-" + hashlib.sha256(str(Path(__file__).parent).encode()).hexdigest()[:8]
)

from deploy.loopback import LocalSuite, SuiteSettings
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
    """The suite from source on free ports. Its five services import their libraries at once, beside the other
    workers' builds and control planes: on a busy 2-core machine that took over a minute, hence the time allowed."""
    return LocalSuite(SuiteSettings(work_dir=work_dir, base_port=free_port_block(6), **settings)).start(timeout=240)


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


# The heaviest test files, longest first (per-file sums of a 4-worker run's JUnit times, 2026-12-02). pytest-xdist's
# --dist loadfile hands files to the workers in collection order: these go first, so the run does not end with one
# worker alone on a long file the alphabet put last (the top-level end-to-end files). The rest follow in their order.
HEAVIEST_FIRST = (
    "services/test_migrations.py",
    "services/test_login_limits.py",
    "services/test_startup.py",
    "deploy/targets/gke/test_gke_target.py",
    "services/test_seed.py",
    "deploy/test_smoke.py",
    "test_up_local.py",
    "deploy/targets/kube/test_connection_faults.py",
    "deploy/targets/gke/test_gke_releases.py",
    "test_data_local.py",
    "deploy/targets/kube/test_cluster_behaviour.py",
    "services/test_apis.py",
    "test_rollback_schema_local.py",
    "deploy/publish/test_push.py",
    "deploy/targets/kube/test_kube_target.py",
    "test_release_local.py",
    "gateway/test_login_burst.py",
    "deploy/attest/test_cosign_interop.py",
    "test_loopback.py",
    "deploy/targets/kube/test_lease.py",
    "gateway/test_login_flow.py",
    "test_two_local_environments.py",
    "deploy/targets/kube/test_diff.py",
    "test_workflow.py",
    "deploy/publish/test_build_cli.py",
    "deploy/targets/local/test_cli_local.py",
    "test_diff_local.py",
)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The heaviest files first (HEAVIEST_FIRST), each file's tests in their own order (a stable sort)."""
    rank = {name: index for index, name in enumerate(HEAVIEST_FIRST)}
    tests = Path(__file__).parent

    def heaviness(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(tests).as_posix(), len(rank))

    items.sort(key=heaviness)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Images of the tests' made-up versions left by an older checkout would be refused as changed: forgotten once
    per run, before any test (by pytest-xdist's controller, not by each worker while another one deploys them)."""
    if hasattr(session.config, "workerinput"):
        return
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
        base_port=free_port_block(5),  # Ports.from_base: the API server, etcd twice, KWOK, a registry
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
