"""compose.kit builds the kubeconfig target from the environment (context, namespace), through the CLI too."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.compose import kit
from deploy.model.environments import Environment
from tests.controlplane import KubeCluster
from tests.deploy.inputs import release
from tests.deploy.targets.kube.objects import single_pod
from tests.helpers import k8sdeploy, valid


def config_file(path: Path, namespace: str) -> Path:
    path.write_text(
        f'[environments.kind-dev]\nkubeconfig = {{ context = "test" }}\n'
        f'namespace = "{namespace}"\nallow_plain_http = true\n'
    )
    return path


def test_kubeconfig_environment_deploys_and_tears_down(
    kube: KubeCluster, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    environment = Environment(name="kind-dev", target="kubeconfig", kube_context="test", namespace=kube.namespace)
    target = kit(environment, lambda _line: None).target
    target.apply(single_pod("kind-dev", "NodePort"))
    assert kube.get("deployments", "auth-suite") is not None
    config = config_file(tmp_path / "k8sdeploy.toml", kube.namespace)
    result = k8sdeploy("down", "--yes", env="kind-dev", config=config)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "removed Deployment/auth-suite",
        "removed Service/gateway",
        "removed ConfigMap/gateway-conf",
        f"removed Namespace/{kube.namespace}",
    ]
    assert kube.owned() == [] and kube.get("namespaces", kube.namespace) is None


def test_kubeconfig_history_is_a_configmap_that_prune_leaves_and_rollback_uses(
    kube: KubeCluster, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    environment = Environment(name="kind-dev", target="kubeconfig", kube_context="test", namespace=kube.namespace)
    found = kit(environment, lambda _line: None)
    target, history = found.target, found.history
    target.apply(single_pod("kind-dev", "NodePort"))
    history.record(release("1.0.0", "a"))
    history.record(release("1.1.0", "b"))
    target.apply(single_pod("kind-dev", "NodePort"))  # prunes what the render lacks: not the history
    live = kube.get("configmaps", "k8sdeploy-releases-kind-dev")
    assert live["metadata"]["labels"]["k8sdeploy.io/release-history"] == "kind-dev"
    config = config_file(tmp_path / "k8sdeploy.toml", kube.namespace)
    listed = k8sdeploy("history", "--output", "json", env="kind-dev", config=config)
    assert listed.exit_code == 0, listed.stderr
    assert [r["version"] for r in valid(listed.stdout)["releases"]] == ["1.1.0", "1.0.0"]
    back = k8sdeploy(
        "rollback", "--yes", "--no-smoke", "--wait-timeout", "60", "--output", "json", env="kind-dev", config=config
    )
    assert back.exit_code == 0, back.stderr
    document = valid(back.stdout)
    assert document["version"] == "1.0.0" and "build" not in document["durations"]
    deployment = kube.get("deployments", "auth-suite")
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert images == {image["ref"] for image in release("1.0.0", "a").to_dict()["images"].values()}
    assert [r.version for r in history.releases()] == ["1.0.0", "1.1.0", "1.0.0"]
