"""Fixtures for the gke target: fake GKE, Compute and Kubernetes APIs wired as one Google Cloud project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from google.oauth2.credentials import Credentials

from deploy.compose import GoogleApis, gke_target
from deploy.environments import Environment, Gke
from tests.fakes.compute import FakeCompute
from tests.fakes.gke import FakeGke
from tests.fakes.kube import FakeKube
from tests.fakes.tls import Tls, make_tls

TOKEN = "google-token"
ENV = "staging-test"


@dataclass
class Cloud:
    gke: FakeGke
    compute: FakeCompute
    kube: FakeKube

    @property
    def fakes(self) -> tuple:
        return self.gke, self.compute, self.kube

    @property
    def mutations(self) -> int:
        return sum(fake.mutations for fake in self.fakes)

    def flaky(self, share: float) -> None:
        for fake in self.fakes:
            fake.flaky, fake.retry_after = share, "0"

    def apis(self, token: str = TOKEN) -> GoogleApis:
        return GoogleApis(Credentials(token=token), self.gke.address, self.compute.address, "http", poll=0.01)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def cloud(tls: Tls) -> Iterator[Cloud]:
    compute = FakeCompute(token=TOKEN).start()
    kube = FakeKube(tls=(tls.cert_file, tls.key_file), token=TOKEN, cloud=compute).start()
    gke = FakeGke(kube, tls.ca_pem, token=TOKEN).start()
    yield Cloud(gke, compute, kube)
    for fake in (gke, kube, compute):
        fake.stop()


def environment(**gke: object) -> Environment:
    settings = {"project": "my-project", "location": "europe-west1-b", "cluster": "ms-auth", **gke}
    return Environment(name=ENV, target="gke", service_type="LoadBalancer", gke=Gke(**settings))


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def target(cloud: Cloud, said: list[str]):  # noqa: ANN201 - a GkeTarget
    return gke_target(environment(), said.append, cloud.apis())


def config_file(path: Path, **gke: str) -> Path:
    settings = {"project": "my-project", "location": "europe-west1-b", "cluster": "ms-auth", **gke}
    lines = [f'[environments.{ENV}]', 'target = "gke"', 'service_type = "LoadBalancer"', f'[environments.{ENV}.gke]']
    path.write_text("\n".join(lines + [f'{key} = "{value}"' for key, value in settings.items()]) + "\n")
    return path
