"""Hand edits of k8sdeploy's objects (what `kubectl edit` and `kubectl patch --type merge` send, a JSON merge
patch under another field manager), through the real `kubernetes` client against the real API server:
status names them, the next apply takes back the fields k8sdeploy sets and leaves the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.targets.kube import DEPLOYMENT, Resource
from deploy.targets.kube.edits import hand_edits
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster
from tests.deploy.targets.kube.conftest import ENV
from tests.deploy.targets.kube.objects import single_pod
from tests.helpers import k8sdeploy, valid

CONFIGMAP = Resource("ConfigMap", "v1", "configmaps")


def kubectl_edit(target: KubeTarget, kind: Resource, name: str, patch: dict) -> None:
    target.api.request(
        "PATCH",
        kind.path(target.namespace, name),
        {"fieldManager": "kubectl-edit"},
        patch,
        "application/merge-patch+json",
    )


def test_an_edited_field_is_drift_and_the_next_apply_takes_it_back(
    target: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    target.apply(single_pod(ENV, "NodePort"))
    assert target.hand_edits() == ()
    kubectl_edit(target, DEPLOYMENT, "auth-suite", {"spec": {"replicas": 3}})
    assert kube.get("deployments", "auth-suite")["spec"]["replicas"] == 3
    assert target.hand_edits() == ("Deployment/auth-suite was changed by hand: kubectl-edit set spec.replicas",)
    result = target.apply(single_pod(ENV, "NodePort"))  # the same render: only the hand edit makes it apply
    assert result.updated == ("Deployment/auth-suite",) and len(result.unchanged) == 2
    assert (
        "Deployment/auth-suite was changed by hand (kubectl-edit set spec.replicas); putting back the rendered fields"
    ) in said
    assert kube.get("deployments", "auth-suite")["spec"]["replicas"] == 1
    assert target.hand_edits() == ()
    mark = kube.mark()
    assert not target.apply(single_pod(ENV, "NodePort")).changed and kube.mutations(mark) == []


def test_a_field_k8sdeploy_does_not_set_stays_with_a_note(
    target: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    target.apply(single_pod(ENV, "NodePort"))
    kubectl_edit(target, CONFIGMAP, "gateway-conf", {"data": {"debug": "on"}})
    result = target.apply(single_pod(ENV, "NodePort"))
    assert not result.changed and "ConfigMap/gateway-conf" in result.unchanged
    assert said[-1] == (
        "note: ConfigMap/gateway-conf keeps changes made by hand to fields k8sdeploy does not "
        "set: kubectl-edit set data.debug"
    )
    assert kube.get("configmaps", "gateway-conf")["data"]["debug"] == "on"


def test_status_reports_the_edit_as_drift(
    target: KubeTarget, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(f'[environments.{ENV}]\nkubeconfig = {{ context = "test" }}\nnamespace = "{target.namespace}"\n')
    target.apply(single_pod(ENV, "NodePort"))
    target.wait(timeout=60)
    kubectl_edit(target, DEPLOYMENT, "auth-suite", {"spec": {"replicas": 2}})
    result = k8sdeploy("status", "--output", "json", env=ENV, config=config)
    assert valid(result.stdout)["drift"] == [
        "Deployment/auth-suite was changed by hand: kubectl-edit set spec.replicas"
    ], result.stderr
    text = k8sdeploy("status", env=ENV, config=config)
    assert "drift: Deployment/auth-suite was changed by hand: kubectl-edit set spec.replicas" in text.stdout


@pytest.mark.parametrize(
    "entry, found",
    [
        (
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}},
            },
            (),
        ),
        (
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "subresource": "status",
                "fieldsV1": {"f:status": {"f:replicas": {}}},
            },
            (),
        ),
        ({"manager": "k8sdeploy", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}, ()),
        (
            {
                "manager": "kube-controller-manager",
                "operation": "Update",  # a claim bound to its volume
                "fieldsV1": {"f:spec": {"f:volumeName": {}}, "f:metadata": {"f:annotations": {}}},
            },
            (),
        ),
        (
            {
                "manager": "kubectl",
                "operation": "Update",
                "subresource": "scale",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            },
            ("kubectl set spec.replicas",),
        ),
        (
            {
                "manager": "kubectl-edit",
                "operation": "Update",
                "fieldsV1": {
                    "f:spec": {
                        "f:template": {"f:spec": {"f:containers": {'k:{"name":"person"}': {".": {}, "f:image": {}}}}}
                    }
                },
            },
            ("kubectl-edit set spec.template.spec.containers[name=person].image",),
        ),
    ],
)
def test_which_managers_count_as_hand_edits(entry: dict, found: tuple) -> None:
    """Shapes of managedFields entries as a real API server writes them (controllers, scale, edit)."""
    assert hand_edits({"metadata": {"managedFields": [entry]}}) == found
