"""The gateway's certificate given to k8sdeploy ($K8SDEPLOY_TLS_CERT and _KEY): `up` applies it as the environment's
`tls_secret`, on the real API server; without it, and without the Secret, `up` stops before it applies anything.
The BuildingRunner made as compose.make_runner makes it; its build stage hands over a release's images (KWOK pulls
nothing)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import pytest

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.runner import BuildingRunner
from tests.certificates import certificate
from tests.controlplane import KubeCluster
from tests.deploy.targets.kube.conftest import release_runner

ENV = "tls-given"


def runner(kube: KubeCluster, environ: Mapping[str, str], said: list[str]) -> BuildingRunner:
    environment = Environment(
        name=ENV,
        target="kubeconfig",
        kube_context="test",
        namespace=kube.namespace,
        service_type="NodePort",
        tls_secret="auth-tls",
        hosts=("auth.test",),
        smoke=False,
    )
    return release_runner(environment, said, environ=environ)


def test_the_given_certificate_becomes_the_tls_secret_and_without_it_up_stops_first(
    kube: KubeCluster, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    said: list[str] = []
    with pytest.raises(ConfigError) as stopped:
        runner(kube, {}, said).up("single-pod")
    assert "no kubernetes.io/tls Secret auth-tls" in stopped.value.message
    assert kube.list("deployments") == [] and kube.list("secrets") == []  # nothing applied

    made = certificate(tmp_path / "tls", dns_name="auth.test")
    pem = {"K8SDEPLOY_TLS_CERT": (made / "tls.crt").read_text(), "K8SDEPLOY_TLS_KEY": (made / "tls.key").read_text()}
    runner(kube, pem, said).up("single-pod")
    secret = kube.get("secrets", "auth-tls")
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == (made / "tls.crt").read_bytes()
    assert secret["metadata"]["labels"]["app.kubernetes.io/instance"] == ENV

    # the Secret is there now: an up without the certificate finds it, covering hosts, and goes on
    result, _users = runner(kube, {}, said).up("single-pod")
    assert result.version == "1.0.0"
    assert kube.get("secrets", "auth-tls") is not None
