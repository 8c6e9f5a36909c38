"""`k8sdeploy up` of a kubeconfig environment shaped like `cluster` in k8sdeploy.toml (smoke = false), end to end
through the CLI against the real API server: the suite built from a git checkout and pushed to a registry on
loopback, split-pods applied and waited for (pods run on KWOK's nodes), a second `up` that writes nothing but
its lease (the API server's audit log, filtered by the test's user, says so), a switch to single-pod that
prunes exactly split-pods' objects, and `down --yes` leaving no object and no namespace."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from suitekit.passwords import verify_password
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone
from tests.deploy.targets.kube.conftest import kubeconfig_environment
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry

ENV = "cluster-test"
KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "services": "Service",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "networkpolicies": "NetworkPolicy",
}


@pytest.fixture
def cluster_config(tmp_path: Path, kubeconfig: Path, kube: KubeCluster, registry: Registry) -> Path:
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(kubeconfig_environment(ENV, kubeconfig, registry.host, kube.namespace, 'layout = "split-pods"'))
    return path


def seeded_users(kube: KubeCluster) -> list[dict]:
    secret = kube.get("secrets", "k8sdeploy-users")
    return json.loads(base64.b64decode(secret["data"]["seed-users.json"]))


def secret_texts(kube: KubeCluster, name: str) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in kube.get("secrets", name)["data"].items()}


def pod_of(kube: KubeCluster, container: str) -> str:
    return next(
        pod["metadata"]["name"]
        for pod in kube.list("pods")
        if container in {c["name"] for c in pod["spec"]["containers"]}
    )


def kinds(owned: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {item for item in owned if item[0] not in ("pods", "namespaces")}


@pytest.mark.timeout(900)
def test_up_twice_switch_layout_and_down(
    cluster_config: Path, kube: KubeCluster, source_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    checkout = str(clone(source_repo, tmp_path / "checkout"))
    first = k8sdeploy(
        "up", "--source", checkout, "--wait-timeout", "120", "--output", "json", env=ENV, config=cluster_config
    )
    assert first.exit_code == 0, first.stderr
    assert valid(first.stdout)["layout"] == "split-pods"
    assert f"skipped the smoke login (environment {ENV} sets smoke = false)" in first.stderr
    split = kinds(kube.owned())
    assert ("deployments", "person") in split and ("persistentvolumeclaims", "person-data") in split
    assert all(claim["status"]["phase"] == "Bound" for claim in kube.list("persistentvolumeclaims"))

    mark = kube.mark()
    again = k8sdeploy("up", "--source", checkout, "--wait-timeout", "120", env=ENV, config=cluster_config)
    assert again.exit_code == 0, again.stderr
    # nothing of the deployment is written: the only writes are the environment's lease, taken and released
    assert kube.mutations(mark) == [f"create leases/k8sdeploy-{ENV}", f"delete leases/k8sdeploy-{ENV}"]
    assert "nothing to record" in again.stderr

    assert [user["email"] for user in seeded_users(kube)] == [
        "smoke-admin@k8sdeploy.invalid",
        "smoke-user@k8sdeploy.invalid",
    ]  # no demo users here
    authentication = pod_of(kube, "authentication")
    added = k8sdeploy("user", "add", "Boss@Example.com", "--role", "admin", env=ENV, config=cluster_config)
    assert added.exit_code == 0, added.stderr
    [password] = [line.removeprefix("password: ") for line in added.stdout.splitlines()]
    [boss] = [user for user in seeded_users(kube) if user["id"] == 100]
    assert (boss["email"], boss["role"]) == ("boss@example.com", "admin")
    assert verify_password(password, boss["password_hash"])  # a hash: the printed password is the only clear copy
    for name in ("k8sdeploy-users", "k8sdeploy-smoke"):
        assert password not in json.dumps(secret_texts(kube, name))
    assert f"replacing pod {authentication}: its services read the users at start-up" in added.stderr
    kube.wait_gone("pods", authentication)  # its Deployment makes a new one, which seeds at start-up
    # the smoke users' passwords are a Secret of their own, which no pod reads
    smoke = json.loads(secret_texts(kube, "k8sdeploy-smoke")["smoke-logins.json"])
    assert [login["id"] for login in smoke] == [3, 4]
    assert "k8sdeploy-smoke" not in json.dumps(kube.list("deployments"))
    assert smoke[0]["password"] not in json.dumps(secret_texts(kube, "k8sdeploy-users"))
    removed = k8sdeploy("user", "remove", "boss@example.com", env=ENV, config=cluster_config)
    assert removed.exit_code == 0, removed.stderr
    assert 100 not in [user["id"] for user in seeded_users(kube)]

    switched = k8sdeploy(
        "up", "--source", checkout, "--layout", "single-pod", "--wait-timeout", "120", env=ENV, config=cluster_config
    )
    assert switched.exit_code == 0, switched.stderr
    single = kinds(kube.owned())
    pruned = {line.removeprefix("pruned ") for line in switched.stderr.splitlines() if line.startswith("pruned ")}
    assert pruned and pruned == {f"{KINDS[plural]}/{name}" for plural, name in split - single}
    assert ("deployments", "auth-suite") in single and ("deployments", "person") not in single

    down = k8sdeploy("down", "--yes", "--volumes", env=ENV, config=cluster_config)
    assert down.exit_code == 0, down.stderr
    assert kube.owned() == [] and kube.get("namespaces", kube.namespace) is None
