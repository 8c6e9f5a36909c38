"""The shared Kubernetes apply/wait/down, through the real `kubernetes` client against the fake API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.errors import ApplyError, ConfigError, CredentialsError, NotReadyError
from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.target import KubeTarget
from tests.deploy.kube.conftest import ENV, NAMESPACE, write_kubeconfig
from tests.deploy.kube.objects import labels, single_pod, split_pods
from tests.fakes.kube import FakeKube


def names(kube: FakeKube, plural: str) -> list[str]:
    return sorted(name for kind, ns, name in kube.owned() if kind == plural)


def test_first_apply_creates_then_a_second_sends_no_mutating_request(target: KubeTarget, kube: FakeKube) -> None:
    first = target.apply(single_pod(ENV, "NodePort"))
    assert sorted(first.created) == ["ConfigMap/gateway-conf", "Deployment/auth-suite", "Service/gateway"]
    assert ("namespaces", "", NAMESPACE) in kube.objects
    target.wait(timeout=10)
    assert target.gateway_url().startswith("http://127.0.0.1:30")
    versions = {key: kube.objects[key]["metadata"]["resourceVersion"] for key in kube.owned()}
    before = kube.mutations
    second = target.apply(single_pod(ENV, "NodePort"))
    assert kube.mutations == before, kube.mutating_requests()[before:]
    assert not second.changed and len(second.unchanged) == 3
    assert {key: kube.objects[key]["metadata"]["resourceVersion"] for key in kube.owned()} == versions


def test_a_change_is_applied_in_place_and_bumps_only_that_object(target: KubeTarget, kube: FakeKube) -> None:
    objects = single_pod(ENV)
    target.apply(objects)
    service_version = kube.objects[("services", NAMESPACE, "gateway")]["metadata"]["resourceVersion"]
    objects[2]["data"]["nginx.conf"] = "events { worker_connections 64; }\n"
    result = target.apply(objects)
    assert result.updated == ("ConfigMap/gateway-conf",) and len(result.unchanged) == 2
    assert kube.objects[("configmaps", NAMESPACE, "gateway-conf")]["data"]["nginx.conf"].startswith("events { w")
    assert kube.objects[("services", NAMESPACE, "gateway")]["metadata"]["resourceVersion"] == service_version


def test_layout_switch_prunes_exactly_the_old_objects(target: KubeTarget, kube: FakeKube) -> None:
    target.apply(single_pod(ENV))
    kube.objects[("configmaps", NAMESPACE, "not-ours")] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-ours", "labels": {"team": "x"}}}
    other_env = {**labels("other-env", "x"), "app.kubernetes.io/instance": "other-env"}
    kube.objects[("configmaps", NAMESPACE, "other-env")] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other-env", "labels": other_env}}
    result = target.apply(split_pods(ENV))
    assert sorted(result.removed) == ["ConfigMap/gateway-conf", "Deployment/auth-suite"]
    assert result.unchanged == ("Service/gateway",)
    assert ("configmaps", NAMESPACE, "not-ours") in kube.objects
    assert ("configmaps", NAMESPACE, "other-env") in kube.objects
    assert names(kube, "deployments") == ["authentication", "authorisation", "frontend", "nginx-lua", "session"]
    assert names(kube, "statefulsets") == ["person"]
    target.wait(timeout=10)
    assert [row.name for row in target.status()] == [
        "authentication", "authorisation", "frontend", "nginx-lua", "person", "session"]


def test_an_unowned_object_of_the_same_name_stops_the_deploy(target: KubeTarget, kubeconfig: Path,
                                                             kube: FakeKube) -> None:
    target.apply([])  # the namespace
    api = kubeconfig_api("fake", kubeconfig)
    api.request("POST", "/api/v1/namespaces/auth-suite/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gateway-conf"}, "data": {"a": "b"}})
    with pytest.raises(ApplyError) as caught:
        target.apply(single_pod(ENV))
    assert "ConfigMap/gateway-conf already exists in namespace auth-suite and is not k8sdeploy's" in str(caught.value)
    assert kube.objects[("configmaps", NAMESPACE, "gateway-conf")]["data"] == {"a": "b"}


def test_a_changed_selector_replaces_the_object_and_says_so(kubeconfig: Path, kube: FakeKube) -> None:
    said: list[str] = []
    target = KubeTarget(kubeconfig_api("fake", kubeconfig), NAMESPACE, ENV, say=said.append, poll=0.01)
    objects = single_pod(ENV)
    target.apply(objects)
    uid = kube.objects[("deployments", NAMESPACE, "auth-suite")]["metadata"]["uid"]
    objects[1]["spec"]["selector"]["matchLabels"]["tier"] = "all"
    objects[1]["spec"]["template"]["metadata"]["labels"]["tier"] = "all"
    result = target.apply(objects)
    assert result.replaced == ("Deployment/auth-suite",)
    assert any(line.startswith("replacing Deployment/auth-suite:") and "field is immutable" in line for line in said)
    assert kube.objects[("deployments", NAMESPACE, "auth-suite")]["metadata"]["uid"] != uid
    target.wait(timeout=10)


def test_conflicts_with_our_own_manager_are_forced_and_others_stop(target: KubeTarget, kubeconfig: Path,
                                                                     kube: FakeKube) -> None:
    target.apply([])
    api = kubeconfig_api("fake", kubeconfig)
    config = single_pod(ENV)[2]
    body = {**config, "metadata": {**config["metadata"]}, "data": {"nginx.conf": "old"}}
    api.request("POST", "/api/v1/namespaces/auth-suite/configmaps", {"fieldManager": "k8sdeploy"}, body)
    assert target.apply([config]).updated == ("ConfigMap/gateway-conf",)
    assert kube.objects[("configmaps", NAMESPACE, "gateway-conf")]["data"]["nginx.conf"] == "events {}\n"
    body = {**config, "metadata": {"name": "edited", "labels": config["metadata"]["labels"]}, "data": {"x": "1"}}
    api.request("POST", "/api/v1/namespaces/auth-suite/configmaps", {"fieldManager": "kubectl-edit"}, body)
    mine = {**config, "metadata": {"name": "edited", "labels": config["metadata"]["labels"]}, "data": {"x": "2"}}
    with pytest.raises(ApplyError, match='also managed by kubectl-edit .*conflict with "kubectl-edit" using v1: .data.x'):
        target.apply([mine])


def test_a_crash_looping_service_is_diagnosed(target: KubeTarget, kube: FakeKube) -> None:
    kube.crash("session", "session: connecting to the database\nsqlite3.OperationalError: unable to open file\n")
    target.apply(single_pod(ENV))
    with pytest.raises(NotReadyError) as caught:
        target.wait(timeout=30)
    error = caught.value
    assert error.exit_code == 5
    assert error.message.startswith("session is failing: ")
    assert "session (pod auth-suite-" in error.details and "CrashLoopBackOff - back-off 10s" in error.details
    assert "last exit code 1; 3 restarts" in error.details
    assert "event Warning BackOff: Back-off restarting failed container session" in error.details
    assert error.details.rstrip().endswith("sqlite3.OperationalError: unable to open file")
    rows = {row.name: row for row in target.status()}
    assert not rows["session"].ready and rows["session"].reason == "CrashLoopBackOff"
    assert rows["frontend"].ready and rows["frontend"].image.endswith("@sha256:" + "ab" * 32)
    assert "unable to open file" in target.logs("session", 5)


def test_wait_times_out_with_what_is_missing(target: KubeTarget, kube: FakeKube) -> None:
    kube.ready_after = 10_000
    target.apply(single_pod(ENV))
    with pytest.raises(NotReadyError, match="was not ready after 0.2 s") as caught:
        target.wait(timeout=0.2)
    assert "ContainerCreating" in caught.value.details


def test_injected_429_and_503_still_converge(target: KubeTarget, kube: FakeKube) -> None:
    kube.flaky, kube.retry_after = 0.3, "0"
    target.apply(single_pod(ENV))
    target.wait(timeout=20)
    target.apply(split_pods(ENV))
    target.wait(timeout=20)
    assert target.down(volumes=True)
    assert kube.injected >= 10 and kube.owned() == []


def test_down_removes_everything_then_is_a_no_op(target: KubeTarget, kube: FakeKube) -> None:
    target.apply(split_pods(ENV))
    removed = target.down(volumes=False)
    assert removed[0] == "Service/gateway" and "PersistentVolumeClaim/person-data" not in removed
    assert names(kube, "persistentvolumeclaims") == ["person-data"]
    assert ("namespaces", "", NAMESPACE) in kube.objects  # it still holds the claim
    removed = target.down(volumes=True)
    assert removed == ("PersistentVolumeClaim/person-data", "Namespace/auth-suite")
    assert kube.owned() == []
    before = kube.mutations
    assert target.down(volumes=True) == ()
    assert kube.mutations == before


def test_logs_name_the_known_services(target: KubeTarget) -> None:
    with pytest.raises(ConfigError, match="nothing of environment kube-test runs"):
        target.logs("session")
    target.apply(single_pod(ENV))
    assert target.logs("person", 1) == "person: listening\n"
    with pytest.raises(ConfigError, match="choose one of: authentication, authorisation, frontend, nginx-lua"):
        target.logs("nope")


def test_wrong_credentials_and_unknown_context(kube: FakeKube, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", f"http://{kube.address}", token="stale")
    with pytest.raises(CredentialsError, match="rejected the credentials"):
        KubeTarget(kubeconfig_api("fake", path), NAMESPACE, ENV).apply([])
    with pytest.raises(ConfigError, match="cannot use kubeconfig context nope"):
        kubeconfig_api("nope", path)
