"""Fixtures of the build and publish tests: a source repository, the built suite, real registries.

The Debian bases and the dependency tree live in the user's k8sdeploy cache (K8SDEPLOY_CACHE), so
only the first session on a machine runs debootstrap; images and layers go to per-session stores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.builders.oci import OciImage
from deploy.builders.store import default_cache_dir
from deploy.clients import Clients
from deploy.context import RunContext
from deploy.model.environments import Environment
from deploy.model.progress import silent
from deploy.model.version import Version
from deploy.output import PlainProgress
from deploy.publish.stage import BuildOptions
from deploy.registry.client import RetryPolicy
from deploy.stages import image_build
from tests.infra import ROOT
from tests.registries import Registry, registry_server

SOURCES = (
    "services",
    "suitekit",
    "nginx-lua",
    "requirements/app.lock",
    "deploy/render/gateway.py",
    "deploy/model/suite.py",
)
COMMIT_DATE = "2024-05-01T12:00:00+00:00"
# Seeds of the connection-level fault tests (tests/fakes/tcp_proxy.py): 3 in CI; K8SDEPLOY_FAULT_SEEDS=10 for more.
FAULT_SEEDS = range(int(os.environ.get("K8SDEPLOY_FAULT_SEEDS") or 3))
FAST_RETRY = RetryPolicy(deadline=10, initial=0.05, maximum=0.5)


def git(repo: Path, *args: str, date: str = COMMIT_DATE) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def make_source_repo(dest: Path) -> Path:
    """A git repository holding the suite's sources, committed at a fixed time and tagged v1.0.0."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "data")
    for relative in SOURCES:
        source, target = ROOT / relative, dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, ignore=ignore) if source.is_dir() else shutil.copy(source, target)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "the suite")
    git(dest, "tag", "v1.0.0")
    return dest


def clone(source: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(dest)], check=True, capture_output=True)
    return dest


@dataclass(frozen=True)
class BuiltSuite:
    version: Version
    images: list[OciImage]

    def image(self, name: str) -> OciImage:
        return next(image for image in self.images if image.name == name)


def build_suite(source: Path, store_dir: Path, clients: Clients | None = None, **options) -> BuiltSuite:
    clients = clients or Clients(retry=FAST_RETRY)
    options = BuildOptions(source=source, cache_dir=default_cache_dir(), store_dir=store_dir, **options)
    context = RunContext(silent, clients)
    facts = context.facts(Environment(name="build", local={}), options.registry)  # the build's registry, parsed
    version, images = image_build(options, context, PlainProgress(), facts).images()
    return BuiltSuite(version, images)


BUILDS = {"suite_build", "source_repo"}  # fixtures of the tests that build the suite's images


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test that builds images on a machine may build the Debian bases (debootstrap, minutes, and
    longer while another worker holds the bases' lock): those tests get 900 s unless they say more."""
    for item in items:
        if BUILDS & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session")
def source_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source_repo(tmp_path_factory.mktemp("source") / "suite")


@pytest.fixture(scope="session")
def suite_build(tmp_path_factory: pytest.TempPathFactory, source_repo: Path) -> BuiltSuite:
    """The six images of a clone of the source repository at v1.0.0 (builds the Debian bases if not cached)."""
    checkout = clone(source_repo, tmp_path_factory.mktemp("checkout") / "suite")
    return build_suite(checkout, tmp_path_factory.mktemp("store"))


@pytest.fixture
def config(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A k8sdeploy.toml holding one local environment, named by the test module's ENV."""
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(f"[environments.{request.module.ENV}]\nlocal = {{}}\n")
    return path


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with registry_server(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[Registry]:
    with registry_server(tmp_path / "registry") as server:
        yield server


# the reference verifier the signing tests check k8sdeploy's signatures with (tools/cosign)
@pytest.fixture(scope="session")
def cosign() -> Path:
    """The cosign binary; `make test` builds it (make cosign), a machine without it builds it here (minutes)."""
    built = subprocess.run([str(ROOT / "tools" / "cosign" / "build.sh")], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    return Path(built.stdout.strip())


def cosign_run(cosign: Path, *args: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """cosign offline (no transparency log), against registries on loopback over plain HTTP."""
    return subprocess.run(
        [str(cosign), *args, "--insecure-ignore-tlog", "--allow-http-registry"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin", "SIGSTORE_NO_CACHE": "1", **(environ or {})},
    )
