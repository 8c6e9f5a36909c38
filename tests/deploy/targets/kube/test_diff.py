"""`k8sdeploy diff` of a kubeconfig environment against the real API server: after an `up`, nothing to change
(exit 0, no object named); a replica count changed in k8sdeploy.toml (exit 1, the Deployment and spec.replicas
1 -> 2, which `up` then says before applying); a hand edit by another field manager (drift, taken back or
left); a layout switch (the old layout's objects as delete). The API server's audit log shows that `diff`
stores nothing: its only writes are dry runs (dryRun=All)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from deploy.model.changes import HIDDEN
from deploy.render.layout import GATEWAY_CONFIG_MAP
from deploy.targets.kube import DEPLOYMENT, Resource
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone
from tests.deploy.targets.kube.conftest import ENV as TARGET_ENV
from tests.deploy.targets.kube.conftest import kubeconfig_environment
from tests.deploy.targets.kube.objects import labels, single_pod
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry

ENV = "diff-test"
CONFIGMAP = Resource("ConfigMap", "v1", "configmaps")


def write_config(path: Path, kubeconfig: Path, registry: Registry, namespace: str, replicas: str = "") -> Path:
    extra = ['layout = "split-pods"', *([f"replicas = {replicas}"] if replicas else [])]
    path.write_text(kubeconfig_environment(ENV, kubeconfig, registry.host, namespace, *extra))
    return path


def kubectl_edit(kube: KubeCluster, kind: Resource, name: str, patch: dict) -> None:
    """What `kubectl edit` sends: a JSON merge patch under its own field manager."""
    answer = kube.session().patch(
        f"{kube.server}{kind.path(kube.namespace, name)}",
        params={"fieldManager": "kubectl-edit"},
        json=patch,
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def changed(document: dict) -> dict[str, dict]:
    return {f"{obj['kind']}/{obj['name']}": obj for obj in document["objects"]}


@pytest.mark.timeout(900)
def test_diff_names_what_up_would_change_and_writes_nothing(
    kube: KubeCluster, kubeconfig: Path, fresh_registry: Registry, source_repo: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    registry = fresh_registry
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    checkout = str(clone(source_repo, tmp_path / "checkout"))
    config = write_config(tmp_path / "k8sdeploy.toml", kubeconfig, registry, kube.namespace)

    first = k8sdeploy("diff", "--source", checkout, "--output", "json", env=ENV, config=config)
    assert first.exit_code == 1, first.stderr
    fresh = valid(first.stdout)
    assert fresh["result"] == "changes" and all(image["push"] for image in fresh["images"])
    assert changed(fresh)[f"Namespace/{kube.namespace}"]["action"] == "create"
    assert {obj["action"] for obj in fresh["objects"]} == {"create"}
    assert kube.get("namespaces", kube.namespace) is None and registry.tags("suite/person") == []

    up = k8sdeploy("up", "--source", checkout, "--wait-timeout", "120", env=ENV, config=config)
    assert up.exit_code == 0, up.stderr
    assert "create Deployment/person" in up.stderr.splitlines()  # said before applying

    mark = kube.mark()
    same = k8sdeploy("diff", "--source", checkout, "--output", "json", env=ENV, config=config)
    assert same.exit_code == 0, same.stderr
    nothing = valid(same.stdout)
    assert nothing["result"] == "no-change" and nothing["objects"] == []
    assert [image["push"] for image in nothing["images"]] == [False] * 6
    text = k8sdeploy("diff", "--source", checkout, env=ENV, config=config)
    *images, verdict = text.stdout.splitlines()
    assert text.exit_code == 0 and all(line.endswith(f"already in {registry.host}/suite") for line in images)
    assert verdict.startswith(f"{ENV}: up would change nothing (split-pods, version ")
    assert kube.mutations(mark) == [] and kube.mutations(mark, dry_runs=True) == []

    write_config(config, kubeconfig, registry, kube.namespace, replicas="{ frontend = 2 }")
    scaled = k8sdeploy("diff", "--source", checkout, env=ENV, config=config)
    assert scaled.exit_code == 1, scaled.stderr
    assert "update Deployment/frontend (spec.replicas)" in scaled.stdout.splitlines()
    assert "    spec.replicas: 1 → 2" in scaled.stdout.splitlines()
    document = valid(k8sdeploy("diff", "--source", checkout, "--output", "json", env=ENV, config=config).stdout)
    # its replicas, and the budget of a part of two (its pods stay: their template does not change)
    assert list(changed(document)) == ["PodDisruptionBudget/frontend", "Deployment/frontend"]
    assert changed(document)["Deployment/frontend"]["fields"] == [{"path": "spec.replicas", "old": 1, "new": 2}]
    assert changed(document)["PodDisruptionBudget/frontend"]["action"] == "create"
    assert kube.mutations(mark) == []
    assert set(kube.mutations(mark, dry_runs=True)) == {
        "patch deployments/frontend",
        "patch poddisruptionbudgets/frontend",
    }
    applied = k8sdeploy("up", "--source", checkout, "--wait-timeout", "120", env=ENV, config=config)
    assert applied.exit_code == 0, applied.stderr
    assert "update Deployment/frontend (spec.replicas)" in applied.stderr.splitlines()
    assert kube.get("deployments", "frontend")["spec"]["replicas"] == 2

    kubectl_edit(kube, DEPLOYMENT, "authentication", {"spec": {"replicas": 3}})
    kubectl_edit(kube, CONFIGMAP, GATEWAY_CONFIG_MAP, {"data": {"debug": "on"}})
    mark = kube.mark()
    drifted = valid(k8sdeploy("diff", "--source", checkout, "--output", "json", env=ENV, config=config).stdout)
    edited, gateway = changed(drifted)["Deployment/authentication"], changed(drifted)[f"ConfigMap/{GATEWAY_CONFIG_MAP}"]
    assert edited["action"] == "update"
    assert edited["fields"] == [{"path": "spec.replicas", "old": 3, "new": 1}]
    assert edited["drift"] == [{"manager": "kubectl-edit", "paths": ["spec.replicas"], "taken_back": True}]
    assert gateway["action"] == "unchanged" and gateway["fields"] == []
    assert gateway["drift"] == [{"manager": "kubectl-edit", "paths": ["data.debug"], "taken_back": False}]
    assert kube.mutations(mark) == []

    switched = valid(
        k8sdeploy(
            "diff", "--source", checkout, "--layout", "single-pod", "--output", "json", env=ENV, config=config
        ).stdout
    )
    actions = {ref: obj["action"] for ref, obj in changed(switched).items()}
    assert actions["Deployment/auth-suite"] == "create"
    assert {ref for ref, action in actions.items() if action == "delete"} >= {
        "Deployment/person",
        "Deployment/frontend",
        "Service/person",
    }
    # single-pod mounts the same claim as split-pods (before: emptyDir, the claim only kept for holding data)
    assert actions.get("PersistentVolumeClaim/person-data", "unchanged") == "unchanged"
    assert kube.mutations(mark) == [] and kube.get("deployments", "person") is not None

    down = k8sdeploy("down", "--yes", "--volumes", env=ENV, config=config)
    assert down.exit_code == 0, down.stderr


def test_a_changed_secret_shows_its_keys_and_never_its_values(target: KubeTarget, kube: KubeCluster) -> None:
    def secret(value: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "labels": labels(TARGET_ENV, "db")},
            "data": {"password": base64.b64encode(value.encode()).decode()},
        }

    target.apply([*single_pod(TARGET_ENV, "NodePort"), secret("old-password")])
    mark = kube.mark()
    [change] = [c for c in target.diff([*single_pod(TARGET_ENV, "NodePort"), secret("new-password")]) if c.changed]
    assert (change.ref, change.action) == ("Secret/db", "update")
    assert [(f.path, f.old, f.new) for f in change.fields] == [("data.password", HIDDEN, HIDDEN)]
    assert "password" not in " ".join(change.lines()).replace("data.password", "")
    assert kube.mutations(mark) == [] and kube.mutations(mark, dry_runs=True) == ["patch secrets/db"]
    assert kube.get("secrets", "db")["data"]["password"] == base64.b64encode(b"old-password").decode()
