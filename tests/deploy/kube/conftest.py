"""Fixtures for the Kubernetes targets: the fake API server, a kubeconfig pointing at it, the target."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml

from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.target import KubeTarget
from tests.fakes.kube import FakeKube

ENV = "kube-test"
NAMESPACE = "auth-suite"
TOKEN = "kubeconfig-token"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    fake = FakeKube(token=TOKEN, ready_after=2).start()
    yield fake
    fake.stop()


def write_kubeconfig(path: Path, server: str, token: str = TOKEN) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}},
                     {"name": "other", "context": {"cluster": "fake", "user": "nobody"}}]}))
    return path


@pytest.fixture
def kubeconfig(kube: FakeKube, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", f"http://{kube.address}")


@pytest.fixture
def target(kubeconfig: Path) -> KubeTarget:
    return KubeTarget(kubeconfig_api("fake", kubeconfig), NAMESPACE, ENV, poll=0.01)
