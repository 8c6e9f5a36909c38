"""Fixtures for the gke target: fake GKE and Compute APIs wired as one Google Cloud project whose cluster is
the real Kubernetes API server of the tests (reached through a TLS fault proxy), with the load balancers
and disks GKE's controllers would make simulated into the fake Compute API (tests/fakes/cloud_controller.py)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials

from deploy.model.environments import Environment, Gke
from deploy.model.googleapis import GoogleApis
from deploy.targets.gke.kind import gke_target
from tests.controlplane import KubeCluster
from tests.deploy.targets.gke.readers import Readers
from tests.fakes.artifact_registry import FakeArtifactRegistry
from tests.fakes.cloud_controller import CloudController
from tests.fakes.compute import FakeCompute
from tests.fakes.gke import FakeGke
from tests.fakes.proxy import FaultProxy

TOKEN = "google-token"  # the API server's token file maps it to a cluster admin (tests/controlplane.py)
ENV = "staging-test"


@dataclass
class Cloud:
    gke: FakeGke
    compute: FakeCompute
    kube: KubeCluster
    proxy: FaultProxy  # in front of the API server: what the cluster's endpoint is
    controller: CloudController
    # where a test's images go, when it stands in for Artifact Registry: the fake of its API, and the
    # registry host that is its Docker side (tests/fakes/artifact_registry.py)
    artifact_registry: FakeArtifactRegistry | None = None
    docker_locations: dict[str, str] = field(default_factory=dict)
    readers: Readers | None = None  # the APIs `doctor` reads besides (tests/deploy/targets/gke/readers.py)

    @property
    def namespace(self) -> str:
        return self.kube.namespace

    def mark(self) -> tuple:
        return len(self.gke.mutating_requests()), len(self.compute.mutating_requests()), self.kube.mark()

    def mutations(self, mark: tuple) -> list:
        """Mutating requests to GKE, Compute and the API server (by the tests' users) since `mark`."""
        gke, compute, kube = mark
        return [
            *self.gke.mutating_requests()[gke:],
            *self.compute.mutating_requests()[compute:],
            *self.kube.mutations(kube),
            *(self.readers.mutating_requests() if self.readers else []),  # they take none
        ]

    def flaky(self, share: float, seed: int = 6) -> None:
        """`share` of the requests to each API meet a fault: 429 or 503, a dropped connection, a lost answer."""
        for number, fake in enumerate((self.gke, self.compute)):
            fake.flaky, fake.retry_after, fake.faults = share, "0", ("fault", "drop", "lost")
            fake.random = random.Random(seed * 3 + number)
        self.proxy.flaky, self.proxy.retry_after = share, "0"
        self.proxy.faults, self.proxy.random = ("429", "503", "drop", "lost"), random.Random(seed * 3 + 2)

    @property
    def injected(self) -> int:
        return self.gke.injected + self.compute.injected + self.proxy.injected

    def apis(self, token: str = TOKEN) -> GoogleApis:
        registry = self.artifact_registry.address if self.artifact_registry else "artifactregistry.googleapis.com"
        return GoogleApis(
            Credentials(token=token),
            self.gke.address,
            self.compute.address,
            "http",
            poll=0.01,
            artifact_registry_endpoint=registry,
            docker_locations=dict(self.docker_locations),
            **(readers_endpoints(self.readers) if self.readers else {}),
        )

    def cluster_created(self, cluster: dict) -> None:
        """The cluster runs: its controllers start, and where its nodes cannot pull from Artifact Registry (the
        fake GKE's `can_pull`), every container with an image there waits in ImagePullBackOff (a KWOK stage)."""
        self.controller.paused = False
        if not self.gke.can_pull(cluster):
            hosts = ["-docker.pkg.dev/", *(f"{host}/" for host in self.docker_locations)]
            in_template = " ".join(f'(contains "{host}" .image)' for host in hosts)
            in_cel = " || ".join(f"c.image.contains('{host}')" for host in hosts)
            self.kube.simulate(
                "image-pull-backoff", f"or false {in_template}", f"self.spec.containers.exists(c, {in_cel})"
            )

    def cluster_deleted(self) -> None:
        """What deleting a GKE cluster does to what ran in it: all of it goes, the controllers first (so the
        load balancers they made stay in Compute, as real GKE leaks them)."""
        self.controller.paused = True
        session = self.kube.session()
        for service in self.kube.list("services"):
            if service["metadata"].get("finalizers"):
                name = service["metadata"]["name"]
                session.patch(
                    f"{self.kube.server}/api/v1/namespaces/{self.namespace}/services/{name}",
                    json={"metadata": {"finalizers": None}},
                    headers={"Content-Type": "application/merge-patch+json"},
                    timeout=10,
                )
        session.delete(f"{self.kube.server}/api/v1/namespaces/{self.namespace}", timeout=10)
        self.kube.wait_gone("namespaces", self.namespace)

    def stop(self) -> None:
        self.controller.stop()
        for fake in (self.gke, self.compute, self.proxy, *([self.artifact_registry] if self.artifact_registry else [])):
            fake.stop()
        if self.readers is not None:
            self.readers.stop()


def readers_endpoints(readers: Readers) -> dict[str, str]:
    return {
        "service_usage_endpoint": readers.service_usage.address,
        "resource_manager_endpoint": readers.resource_manager.address,
        "iam_endpoint": readers.iam.address,
    }


def make_cloud(kube: KubeCluster) -> Cloud:
    pki = kube.cluster.state / "pki"
    compute = FakeCompute(token=TOKEN).start()
    proxy = FaultProxy(kube.server, str(pki / "ca.crt"), tls=(str(pki / "apiserver.crt"), str(pki / "apiserver.key")))
    proxy.start()
    gke = FakeGke(proxy.address, kube.cluster.ca_pem, token=TOKEN)
    controller = CloudController(kube.session(), kube.server, compute, (kube.namespace,)).start()
    cloud = Cloud(gke, compute, kube, proxy, controller, readers=Readers.start(TOKEN, accounts=(NODES,)))
    gke.on_create = cloud.cluster_created
    gke.on_delete = cloud.cluster_deleted
    gke.start()
    return cloud


@pytest.fixture
def cloud(kube_cluster: KubeCluster) -> Iterator[Cloud]:
    cloud = make_cloud(kube_cluster)
    yield cloud
    cloud.stop()


NODES = "k8sdeploy-nodes@my-project.iam.gserviceaccount.com"  # a node account the fake GKE knows


def environment(namespace: str, **gke: object) -> Environment:
    settings = {
        "project": "my-project",
        "location": "europe-west1-b",
        "cluster": "ms-auth",
        "node_service_account": NODES,
        **gke,
    }
    return Environment(name=ENV, target="gke", service_type="LoadBalancer", namespace=namespace, gke=Gke(**settings))


@pytest.fixture
def target(cloud: Cloud, said: list[str]):  # noqa: ANN201 - a GkeTarget
    return gke_target(environment(cloud.namespace), said.append, cloud.apis())


def config_file(path: Path, namespace: str = "auth-suite", **gke: str) -> Path:
    settings = {
        "project": "my-project",
        "location": "europe-west1-b",
        "cluster": "ms-auth",
        "node_service_account": NODES,
        **gke,
    }
    lines = [
        f"[environments.{ENV}]",
        'service_type = "LoadBalancer"',
        f'namespace = "{namespace}"',
        "allow_plain_http = true",
        f"[environments.{ENV}.gke]",
    ]
    path.write_text("\n".join(lines + [f'{key} = "{value}"' for key, value in settings.items()]) + "\n")
    return path


def wait_for(condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the simulated cloud controller did not act in time"
        time.sleep(0.1)
