"""Cluster edges (issue 24): the namespace k8sdeploy creates enforces Pod Security's `restricted` profile and the
rendered pods of both layouts are admitted there by the real API server; the kubeconfig target says when it cannot
tell that NetworkPolicies are enforced; a LoadBalancer admits only the environment's source ranges."""

from __future__ import annotations

import time

import pytest

from deploy.identity import Identity, new_key
from deploy.model.environments import Environment, load_environment
from deploy.render.objects import render
from deploy.targets.kube.target import KubeTarget
from deploy.users import Stored, wanted
from tests.controlplane import KubeCluster
from tests.deploy.inputs import VERSION, fake_images, of_kind
from tests.deploy.targets.kube.conftest import ENV


def deployable(namespace: str, layout: str) -> list[dict]:
    """What `up` applies: the render, the users' Secret and the parts' identity keys."""
    environment = Environment(name=ENV, target="kubeconfig", namespace=namespace, layout=layout)
    objects = list(render(environment, layout, fake_images(), VERSION).objects)
    identity = Identity(ENV, (new_key(int(time.time())),))
    return [*objects, wanted(environment, Stored()).secret(namespace), *identity.secrets(namespace)]


@pytest.mark.parametrize("layout", ["single-pod", "split-pods"])
def test_the_pods_of_both_layouts_are_admitted_under_the_restricted_profile(
    target: KubeTarget, kube: KubeCluster, said: list[str], layout: str
) -> None:
    target.apply(deployable(kube.namespace, layout))
    labels = kube.get("namespaces", kube.namespace, "")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert f"created namespace {kube.namespace} (Pod Security: restricted)" in said
    target.wait(timeout=90)  # every Deployment's pods were created: admitted
    pods = kube.list("pods")
    deployments = kube.list("deployments")
    assert pods and len(pods) == sum(d["spec"]["replicas"] for d in deployments)
    # the profile is enforced there: a pod that runs as root is refused
    root = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox@sha256:" + "0" * 64}]},
    }
    answer = kube.session().post(f"{kube.server}/api/v1/namespaces/{kube.namespace}/pods", json=root, timeout=10)
    assert answer.status_code == 403 and "violates PodSecurity" in answer.text, answer.text[:300]
    target.down(volumes=True)


def test_the_kubeconfig_target_says_when_policies_may_not_be_enforced(
    kube: KubeCluster, target: KubeTarget, said: list[str]
) -> None:
    """The tests' control plane runs no network plugin: nothing enforces the layout's NetworkPolicies."""
    checking = KubeTarget(target.api, kube.namespace, ENV, said.append, poll=0.05, check_policies=True)
    checking.apply(deployable(kube.namespace, "split-pods"))
    warnings = [line for line in said if "enforces NetworkPolicies" in line]
    assert len(warnings) == 1 and "no policy-enforcing network plugin found" in warnings[0]
    checking.down(volumes=True)


def test_a_load_balancer_admits_only_the_source_ranges() -> None:
    staging = load_environment("staging")
    service = of_kind(render(staging, "single-pod", fake_images(), VERSION).objects, "Service")["nginx-lua"]
    assert service["spec"]["loadBalancerSourceRanges"] == list(staging.gke.source_ranges)
    narrowed = staging.model_copy(update={"gke": staging.gke.model_copy(update={"source_ranges": ("203.0.113.0/24",)})})
    service = of_kind(render(narrowed, "split-pods", fake_images(), VERSION).objects, "Service")["nginx-lua"]
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    local = Environment(name="demo", target="local")
    service = of_kind(render(local, "single-pod", fake_images(), VERSION).objects, "Service")["nginx-lua"]
    assert "loadBalancerSourceRanges" not in service["spec"]
