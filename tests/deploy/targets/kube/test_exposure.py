"""A gateway beyond loopback serves HTTPS, or the environment says it accepts plain HTTP: the render with a
certificate, `up` refusing before it builds anything, and the apply refusing a certificate that is not there
(on the real control plane)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from deploy import clients
from deploy.model.environments import Environment, load_environment
from deploy.model.errors import ConfigError, ExitCode
from deploy.render.objects import render
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster
from tests.deploy.inputs import VERSION, fake_images, of_kind
from tests.deploy.targets.kube.conftest import ENV, identity_secrets
from tests.helpers import k8sdeploy


def tls_environment(namespace: str = "auth-suite", **settings: object) -> Environment:
    return Environment(
        name=ENV,
        target="kubeconfig",
        namespace=namespace,
        tls_secret="auth-suite-tls",
        service_type="LoadBalancer",
        **settings,
    )


@pytest.mark.parametrize("layout", ["single-pod", "split-pods"])
def test_a_certificate_makes_the_gateway_serve_https(layout: str) -> None:
    objects = render(tls_environment(), layout, fake_images(), VERSION).objects
    service = of_kind(objects, "Service")["nginx-lua"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("https", 443, 8443),
        ("http", 8080, 8080),
    ]
    pod = next(
        o
        for o in objects
        if o["kind"] == "Deployment"
        and any(c["name"] == "nginx-lua" for c in o["spec"]["template"]["spec"]["containers"])
    )["spec"]["template"]["spec"]
    gateway = next(c for c in pod["containers"] if c["name"] == "nginx-lua")
    assert [p["containerPort"] for p in gateway["ports"]] == [8080, 8443]
    assert {"name": "gateway-tls", "mountPath": "/etc/k8sdeploy/tls", "readOnly": True} in gateway["volumeMounts"]
    assert {"name": "gateway-tls", "secret": {"secretName": "auth-suite-tls"}} in pod["volumes"]
    policy = of_kind(objects, "NetworkPolicy")[("auth-suite" if layout == "single-pod" else "nginx-lua") + "-ingress"]
    assert {"protocol": "TCP", "port": 8443} in policy["spec"]["ingress"][0]["ports"]


def test_the_shipped_staging_serves_https() -> None:
    staging = load_environment("staging")
    assert staging.tls_secret and staging.kind_table.plain_http_exposure(staging) == ""


@pytest.mark.parametrize(
    "settings, exposure",
    [
        ({"target": "local"}, ""),
        ({"target": "local", "gateway_address": "::1"}, ""),
        ({"target": "local", "gateway_address": "0.0.0.0"}, "on 0.0.0.0:8080"),
        ({"target": "kubeconfig"}, "through its NodePort Service on port 8080"),
        ({"target": "kubeconfig", "tls_secret": "tls"}, ""),
    ],
)
def test_where_plain_http_would_leave_loopback(settings: dict, exposure: str) -> None:
    environment = Environment(name="x", **settings)
    assert environment.kind_table.plain_http_exposure(environment) == exposure


def config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(
        "\n".join(
            [
                "[environments.staging]",
                'service_type = "LoadBalancer"',
                *lines,
                "[environments.staging.gke]",
                'project = "my-project"',
                'location = "europe-west1-b"',
                'cluster = "c"',
                'node_service_account = "k8sdeploy-nodes@my-project.iam.gserviceaccount.com"',
            ]
        )
        + "\n"
    )
    return path


@pytest.mark.parametrize("command", [["up"], ["dev"], ["rollback", "--yes"]])
def test_plain_http_beyond_loopback_is_refused_before_anything_is_built(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_cloud() -> None:
        raise AssertionError("nothing may be asked of Google before the refusal")

    monkeypatch.setattr(clients, "google_apis", no_cloud)
    result = k8sdeploy(*command, env="staging", config=config(tmp_path))
    assert result.exit_code == ExitCode.USAGE, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "would serve its gateway over plain HTTP through its LoadBalancer Service on port 8080" in line
    assert 'set tls_secret = "NAME"' in line and "allow_plain_http = true" in line


def test_allowing_plain_http_is_said_on_every_up(tmp_path: Path) -> None:
    said: list[str] = []
    from deploy.model.environments import refuse_plain_http

    environment = load_environment("staging", config(tmp_path, "allow_plain_http = true"))
    refuse_plain_http(environment, said.append)
    assert said == [
        "warning: environment staging serves its gateway over plain HTTP through its LoadBalancer "
        "Service on port 8080 (allow_plain_http = true): passwords and session cookies cross the "
        "network in clear"
    ]


def test_a_missing_certificate_is_named_before_anything_changes(target: KubeTarget, kube: KubeCluster) -> None:
    rendered = render(tls_environment(kube.namespace), "single-pod", fake_images(), VERSION).objects
    objects = [*rendered, *identity_secrets(kube.namespace)]  # as `up` applies it: the parts' key Secrets too
    with pytest.raises(ConfigError) as refused:
        target.apply(objects)
    assert refused.value.message == (
        f"Secret auth-suite-tls in namespace {kube.namespace}, which the gateway serves HTTPS with, does not exist"
    )
    assert "kubectl -n" in refused.value.hint
    assert kube.owned() == [("namespaces", kube.namespace)]  # only the namespace, where the Secret is to go
    kube.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "auth-suite-tls"},
            "data": {"tls.crt": base64.b64encode(b"not yet").decode()},
        },
    )
    with pytest.raises(ConfigError, match="lacks tls.key"):
        target.apply(objects)
    kube.session().delete(f"{kube.server}/api/v1/namespaces/{kube.namespace}/secrets/auth-suite-tls", timeout=10)
    kube.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "auth-suite-tls"},
            "data": {key: base64.b64encode(b"pem").decode() for key in ("tls.crt", "tls.key")},
        },
    )
    assert "Deployment/auth-suite" in target.apply(objects).created
