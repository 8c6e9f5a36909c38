"""Fixtures for the Kubernetes targets: the real control plane (tests/controlplane.py), a kubeconfig with a
bearer token for it, and the target on this test's own namespace."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploy import clients, context
from deploy.attest.keys import KEY_VARIABLE
from deploy.compose import kit, make_dev
from deploy.identity import Identity, new_key
from deploy.model.environments import Environment
from deploy.model.images import BuildRecord
from deploy.publish.stage import BuildOptions
from deploy.registry.client import RegistryAddress
from deploy.runner import BuildingRunner
from deploy.smoke import smoke_stage
from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.deploy.inputs import release_images
from tests.helpers import k8sdeploy

ENV = "kube-test"
IDENTITY = Identity(ENV, (new_key(int(time.time())),))


def identity_secrets(namespace: str) -> tuple[dict, ...]:
    """The parts' internal-token key Secrets that `up` adds to the render (Runner.applied): every part mounts
    its own, so a test that applies `render`'s output directly adds them. One key for the session: a second
    apply of the same render changes nothing."""
    return IDENTITY.secrets(namespace)


@pytest.fixture
def kube(kube_cluster: KubeCluster) -> KubeCluster:
    return kube_cluster


@pytest.fixture
def kubeconfig(kube: KubeCluster, tmp_path: Path) -> Path:
    return kubeconfig_for(kube.cluster, tmp_path / "kubeconfig")


@pytest.fixture
def target(kubeconfig: Path, kube: KubeCluster, said: list[str]) -> KubeTarget:
    return KubeTarget(kubeconfig_api("test", kubeconfig), kube.namespace, ENV, said.append, poll=0.05)


def release_runner(environment: Environment, said: list[str], **options: Any) -> BuildingRunner:
    """A Runner made as compose.make_runner makes it, whose build stage hands over release 1.0.0's images (KWOK
    pulls nothing); `options` set its other fields (wait_timeout 60 unless given). It previews nothing."""

    def no_preview() -> Any:
        raise AssertionError("release_runner previews nothing")

    return BuildingRunner(
        environment,
        lambda: kit(environment, said.append),
        said.append,
        smoke_stage(environment, said.append),
        build=lambda history: BuildRecord("1.0.0", "a" * 40, release_images("1.0.0", "a")),
        preview=no_preview,
        source_schemas=no_preview,
        **({"wait_timeout": 60} | options),
    )


def key_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """`k8sdeploy keygen` pairs NAME.key/NAME.pub in `tmp_path`, with the test's own state directory and no signing
    key from the environment (the configuration's keys sign and verify)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    for name in names:
        assert k8sdeploy("keygen", "--prefix", str(tmp_path / name)).exit_code == 0


def kubeconfig_environment(name: str, kubeconfig: Path, registry: str, namespace: str, *lines: str) -> str:
    """A k8sdeploy.toml table of a kubeconfig environment on the tests' control plane (context `test`), pushing to
    `registry` (HOST:PORT), with no smoke login (KWOK runs no container); `lines` add keys."""
    keys = [
        f"[environments.{name}]",
        f'kubeconfig = {{ file = "{kubeconfig}", context = "test" }}',
        f'registry = "{registry}/suite"',
        f'namespace = "{namespace}"',
        'service_type = "NodePort"',
        "smoke = false",
        "allow_plain_http = true",
        *lines,
    ]
    return "\n".join(keys) + "\n"


class Counts:
    """Clients made, registries parsed (by text) and Artifact Registry lookups (by host/path) since reset()."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.reset()
        made, parse, lookup = clients.Clients.__init__, RegistryAddress.parse.__func__, context.artifact_repository

        def counted_init(instance: clients.Clients, *args: Any, **kwargs: Any) -> None:
            self.clients += 1
            made(instance, *args, **kwargs)

        def counted_parse(cls: type[RegistryAddress], text: str) -> RegistryAddress:
            self.parsed[text] += 1
            return parse(cls, text)

        def counted_lookup(address: RegistryAddress, *args: Any) -> object:
            self.lookups[f"{address.host}/{address.path}"] += 1
            return lookup(address, *args)

        monkeypatch.setattr(clients.Clients, "__init__", counted_init)
        monkeypatch.setattr(RegistryAddress, "parse", classmethod(counted_parse))
        monkeypatch.setattr(context, "artifact_repository", counted_lookup)

    def reset(self) -> None:
        self.clients, self.parsed, self.lookups = 0, Counter[str](), Counter[str]()


@dataclass
class DevRun:
    """A `k8sdeploy dev` loop running in a thread: what it said, and what it raised."""

    said: list[str] = field(default_factory=list)
    failed: list[BaseException] = field(default_factory=list)

    def wait_said(self, text: str, after: int = 0, timeout: float = 600) -> int:
        """Until a line from `after` on contains `text`; the count of lines said by then."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.said[after:]):
            assert not self.failed, self.failed
            assert time.monotonic() < deadline, f"no {text!r}:\n" + "\n".join(self.said[after:][-30:])
            time.sleep(0.1)
        return len(self.said)


@contextmanager
def dev_running(environment: Environment, layout: str, source: Path, wait_timeout: float) -> Iterator[DevRun]:
    """`dev` on `environment` from the checkout `source`, as compose.make_dev makes it, until the block ends; what
    it raised fails the test."""
    run = DevRun()
    options = BuildOptions(source=source, registry=environment.registry, bases=environment.bases)
    loop = make_dev(
        environment, layout, run.said.append, lambda _s, _l: None, lambda _r: None, options, wait_timeout=wait_timeout
    )
    stop = threading.Event()

    def serve() -> None:
        try:
            loop.run(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            run.failed.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield run
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not run.failed, run.failed
