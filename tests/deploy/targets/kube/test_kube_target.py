"""The shared Kubernetes apply/wait/down, through the real `kubernetes` client against the real API server
(tests/controlplane.py): its server-side apply, validation, controllers and garbage collection; pod states
from KWOK stages; mutating requests counted from the API server's audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.errors import ApplyError, ConfigError, CredentialsError, NotReadyError
from deploy.targets.kube import KINDS
from deploy.targets.kube.apply import WAVES
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.history import ConfigMapHistory
from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.lease import KubeLease
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.deploy.conftest import FAST_RETRY, FAULT_SEEDS
from tests.deploy.inputs import release
from tests.deploy.targets.kube.conftest import ENV
from tests.deploy.targets.kube.objects import labels, single_pod, split_pods
from tests.fakes.proxy import FaultProxy


def versions(kube: KubeCluster) -> dict[tuple[str, str], str]:
    return {
        (plural, name): kube.get(plural, name)["metadata"]["resourceVersion"]
        for plural, name in kube.owned()
        if plural != "pods"
    }


def test_first_apply_creates_then_a_second_sends_no_mutating_request(target: KubeTarget, kube: KubeCluster) -> None:
    first = target.apply(single_pod(ENV, "NodePort"))
    assert sorted(first.created) == ["ConfigMap/gateway-conf", "Deployment/auth-suite", "Service/gateway"]
    assert kube.get("namespaces", kube.namespace) is not None
    target.wait(timeout=60)
    assert target.gateway_url().startswith("http://127.0.0.1:3")  # a node port on a KWOK node's address
    before, mark = versions(kube), kube.mark()
    second = target.apply(single_pod(ENV, "NodePort"))
    assert kube.mutations(mark) == []
    assert not second.changed and len(second.unchanged) == 3
    assert versions(kube) == before


def test_a_change_is_applied_in_place_and_bumps_only_that_object(target: KubeTarget, kube: KubeCluster) -> None:
    objects = single_pod(ENV, "NodePort")
    target.apply(objects)
    service_version = kube.get("services", "gateway")["metadata"]["resourceVersion"]
    objects[2]["data"]["nginx.conf"] = "events { worker_connections 64; }\n"
    mark = kube.mark()
    result = target.apply(objects)
    assert result.updated == ("ConfigMap/gateway-conf",) and len(result.unchanged) == 2
    assert kube.mutations(mark) == ["patch configmaps/gateway-conf"]
    assert kube.get("configmaps", "gateway-conf")["data"]["nginx.conf"].startswith("events { w")
    assert kube.get("services", "gateway")["metadata"]["resourceVersion"] == service_version


def test_an_apply_after_a_diff_reads_what_runs_once(target: KubeTarget, kube: KubeCluster) -> None:
    """`up` says what it changes, then applies: the diff reads what the namespace holds of ours with one list per
    kind, and the apply takes what the diff read (the API server answers both; the reads are counted at our
    client): no object is read by name, no kind listed twice."""
    objects = single_pod(ENV, "NodePort")
    target.apply(objects)
    reads: list[str] = []
    request = target.api.request

    def counted(method, path, *args, **kwargs):  # noqa: ANN001, ANN202 - KubeApi.request's own
        if method == "GET":
            reads.append(path.removeprefix("/api/v1").removeprefix("/apis/"))
        return request(method, path, *args, **kwargs)

    target.api.request = counted  # type: ignore[method-assign]
    objects[2]["data"]["nginx.conf"] = "events { worker_connections 32; }\n"
    changes = target.diff(objects)
    assert [c.name for c in changes if c.changed] == ["gateway-conf"]
    result = target.apply(objects)
    assert result.updated == ("ConfigMap/gateway-conf",)
    by_name = [path for path in reads if any(path.endswith(f"/{obj['metadata']['name']}") for obj in objects[1:])]
    assert by_name == [], reads
    lists = [path for path in reads if path.startswith(("namespaces/", "apps/", "networking")) and path.count("/") >= 2]
    assert len(lists) == len(set(lists)), reads  # each kind listed once for the two
    reads.clear()
    assert target.apply(objects).changed is False  # no diff before it: read again, and nothing to change
    assert [path for path in reads if path.endswith("/configmaps")], reads
    target.wait(timeout=60)  # ready as that apply found it: no workload, pod or Service read again
    reads.clear()
    target.apply(objects)
    target.wait(timeout=60)
    waited = [path for path in reads if path.endswith(("/deployments", "/statefulsets", "/pods", "/services"))]
    assert len(waited) == len(set(waited)) == 4, reads  # the apply's list of each, and none by the wait


def test_secrets_are_surveyed_as_metadata_and_read_only_to_be_sent(target: KubeTarget, kube: KubeCluster) -> None:
    """What the users' hashes and the parts' keys hold is not read by an up that leaves them as they are."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "k8sdeploy-users", "labels": labels(ENV, "nginx-lua")},
        "stringData": {"users.json": "[]"},
    }
    objects = [*single_pod(ENV, "NodePort"), secret]
    target.apply(objects)
    sent: list[tuple[str, str]] = []
    request = target.api.request

    def counted(method, path, query=None, body=None, content_type="application/json", accept="application/json", **kw):  # noqa: ANN001, ANN202
        if method == "GET" and "/secrets" in path:
            sent.append((path.removeprefix(f"/api/v1/namespaces/{kube.namespace}"), accept))
        return request(method, path, query, body, content_type, accept, **kw)

    target.api.request = counted  # type: ignore[method-assign]
    assert not target.apply(objects).changed
    assert sent == [("/secrets", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json")]
    sent.clear()
    secret["stringData"] = {"users.json": '[{"email": "a@example.com"}]'}
    assert target.apply(objects).updated == ("Secret/k8sdeploy-users",)
    assert sent[-1] == ("/secrets/k8sdeploy-users", "application/json")  # the one to be sent, read whole
    assert kube.get("secrets", "k8sdeploy-users")["data"]["users.json"]


def test_layout_switch_prunes_exactly_the_old_objects(target: KubeTarget, kube: KubeCluster) -> None:
    target.apply(single_pod(ENV, "NodePort"))
    kube.create("configmaps", {"metadata": {"name": "not-ours", "labels": {"team": "x"}}})
    kube.create("configmaps", {"metadata": {"name": "other-env", "labels": labels("other-env", "x")}})
    result = target.apply(split_pods(ENV, "NodePort"))
    assert sorted(result.removed) == ["ConfigMap/gateway-conf", "Deployment/auth-suite"]
    assert result.unchanged == ("Service/gateway",)
    assert kube.get("configmaps", "not-ours") is not None and kube.get("configmaps", "other-env") is not None
    assert kube.names("deployments") == ["authentication", "authorisation", "frontend", "nginx-lua", "session"]
    assert kube.names("statefulsets") == ["person"]
    target.wait(timeout=60)
    assert [row.name for row in target.status()] == [
        "authentication",
        "authorisation",
        "frontend",
        "nginx-lua",
        "person",
        "session",
    ]


def test_an_unowned_object_of_the_same_name_stops_the_deploy(target: KubeTarget, kube: KubeCluster) -> None:
    target.apply([])  # the namespace
    kube.create("configmaps", {"metadata": {"name": "gateway-conf"}, "data": {"a": "b"}})
    with pytest.raises(ApplyError) as caught:
        target.apply(single_pod(ENV, "NodePort"))
    assert f"ConfigMap/gateway-conf already exists in namespace {kube.namespace} and is not k8sdeploy's" in str(
        caught.value
    )
    assert kube.get("configmaps", "gateway-conf")["data"] == {"a": "b"}


def test_a_changed_selector_replaces_the_object_and_says_so(
    target: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    objects = single_pod(ENV, "NodePort")
    target.apply(objects)
    uid = kube.get("deployments", "auth-suite")["metadata"]["uid"]
    objects[1]["spec"]["selector"]["matchLabels"]["tier"] = "all"
    objects[1]["spec"]["template"]["metadata"]["labels"]["tier"] = "all"
    result = target.apply(objects)
    assert result.replaced == ("Deployment/auth-suite",)
    assert any(line.startswith("replacing Deployment/auth-suite:") and "field is immutable" in line for line in said)
    assert kube.get("deployments", "auth-suite")["metadata"]["uid"] != uid
    target.wait(timeout=60)


def test_conflicts_with_our_own_manager_are_forced_and_others_stop(target: KubeTarget, kube: KubeCluster) -> None:
    target.apply([])
    config = single_pod(ENV, "NodePort")[2]
    body = {**config, "metadata": {**config["metadata"]}, "data": {"nginx.conf": "old"}}
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    target.api.request("POST", path, {"fieldManager": "k8sdeploy"}, body)
    assert target.apply([config]).updated == ("ConfigMap/gateway-conf",)
    assert kube.get("configmaps", "gateway-conf")["data"]["nginx.conf"] == "events {}\n"
    body = {**config, "metadata": {"name": "edited", "labels": config["metadata"]["labels"]}, "data": {"x": "1"}}
    target.api.request("POST", path, {"fieldManager": "kubectl-edit"}, body)
    mine = {**config, "metadata": {"name": "edited", "labels": config["metadata"]["labels"]}, "data": {"x": "2"}}
    with pytest.raises(
        ApplyError, match='also managed by kubectl-edit .*conflict with "kubectl-edit" using v1: .data.x'
    ):
        target.apply([mine])


def test_a_crash_looping_service_is_diagnosed(target: KubeTarget, kube: KubeCluster) -> None:
    kube.simulate("crash-loop", "session", "true")
    kube.logs({"session": "session: connecting to the database\nsqlite3.OperationalError: unable to open file\n"})
    target.apply(single_pod(ENV, "NodePort"))
    with pytest.raises(NotReadyError) as caught:
        target.wait(timeout=60)
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


def test_a_crash_of_the_revision_being_replaced_does_not_end_the_wait(target: KubeTarget, kube: KubeCluster) -> None:
    """The old replica keeps crash-looping until its replacement is available (RollingUpdate keeps it): the wait
    judges the revision it rolls out, not the one it replaces."""
    version = "app.kubernetes.io/version"
    kube.simulate("crash-loop", "session", f'self.metadata.labels["{version}"] == "1.4.0"')
    broken = single_pod(ENV, "NodePort")
    target.apply(broken)
    with pytest.raises(NotReadyError, match="session is failing"):
        target.wait(timeout=60)
    fixed = single_pod(ENV, "NodePort")
    fixed[1]["spec"]["template"]["metadata"]["labels"][version] = "1.4.1"
    target.apply(fixed)
    target.wait(timeout=60)  # no NotReadyError from the 1.4.0 pod, crash-looping while 1.4.1's pod starts
    rows = target.status()
    assert len(rows) == 6 and all(row.ready for row in rows), rows


def test_wait_times_out_with_what_is_missing(target: KubeTarget, kube: KubeCluster) -> None:
    # only single-pod's pod (split-pods' person runs, so that the second wait has nothing hopeless to stop on)
    kube.simulate("image-pull-backoff", "person", 'self.metadata.name.startsWith("auth-suite-")')
    target.apply(single_pod(ENV, "NodePort"))
    with pytest.raises(NotReadyError, match="person is failing") as caught:
        target.wait(timeout=60)
    assert "ImagePullBackOff" in caught.value.details
    kube.simulate("not-ready", "frontend", "true")
    target.apply(split_pods(ENV, "NodePort"))
    with pytest.raises(NotReadyError, match="was not ready after 3 s") as caught:
        target.wait(timeout=3)
    assert "frontend (pod frontend-" in caught.value.details
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in caught.value.details


def test_a_pod_no_node_can_take_is_diagnosed_with_the_schedulers_reason(target: KubeTarget) -> None:
    objects = single_pod(ENV, "NodePort")
    objects[1]["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "64"}}
    target.apply(objects)
    with pytest.raises(NotReadyError, match="was not ready after 3 s") as caught:
        target.wait(timeout=3)
    assert "pod Pending" in caught.value.details  # the real scheduler's verdict, as an event of the pod:
    assert "event Warning FailedScheduling: 0/3 nodes are available: 3 Insufficient cpu." in caught.value.details


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_thirty_percent_faults_converge(kube: KubeCluster, tmp_path: Path, seed: int) -> None:
    """30% of requests answered 429 or 503, dropped before the API server sees them, or acted on with the
    answer lost (a repeated create then meets 409 and is read back)."""
    proxy = FaultProxy(kube.server, str(kube.cluster.state / "pki/ca.crt"), seed=seed).start()
    proxy.flaky, proxy.faults = 0.3, ("429", "503", "drop", "lost")
    try:
        path = kubeconfig_for(kube.cluster, tmp_path / "proxied", server=proxy.url)
        # the rule's own backoff, with shorter waits: what converges is the same, the test waits less
        target = KubeTarget(KubeApi(kubeconfig_api("test", path).endpoint, FAST_RETRY), kube.namespace, ENV, poll=0.05)
        with KubeLease(target.api, kube.namespace, ENV).hold("ci (pid 1)"):
            target.apply(split_pods(ENV, "NodePort"))
            target.wait(timeout=60)
            ConfigMapHistory(target.api, kube.namespace, ENV).record(release("1.0.0", "a"))
        with KubeLease(target.api, kube.namespace, ENV).hold("ci (pid 1)", create=False):
            assert target.down(volumes=True)
    finally:
        proxy.stop()
    assert proxy.injected >= 10 and kube.owned() == []


def test_down_removes_everything_then_is_a_no_op(target: KubeTarget, kube: KubeCluster) -> None:
    target.apply(split_pods(ENV, "LoadBalancer"))  # deleted first (no cloud controller here holds it)
    removed = target.down(volumes=False)
    assert removed[0] == "Service/gateway" and "PersistentVolumeClaim/person-data" not in removed
    assert kube.names("persistentvolumeclaims") == ["person-data"]
    assert kube.get("namespaces", kube.namespace) is not None  # it still holds the claim
    removed = target.down(volumes=True)
    assert removed == ("PersistentVolumeClaim/person-data", f"Namespace/{kube.namespace}")
    assert kube.owned() == [] and kube.get("namespaces", kube.namespace) is None
    mark = kube.mark()
    assert target.down(volumes=True) == ()
    assert kube.mutations(mark) == []


def test_logs_name_the_known_services(target: KubeTarget, kube: KubeCluster) -> None:
    with pytest.raises(ConfigError, match="nothing of environment kube-test runs"):
        target.logs("session")
    kube.logs({"person": "person: listening\n"})
    target.apply(single_pod(ENV, "NodePort"))
    target.wait(timeout=60)
    assert target.logs("person", 1) == "person: listening\n"
    with pytest.raises(ConfigError, match="choose one of: authentication, authorisation, frontend, nginx-lua"):
        target.logs("nope")


def test_wrong_credentials_and_unknown_context(kube: KubeCluster, tmp_path: Path) -> None:
    path = kubeconfig_for(kube.cluster, tmp_path / "config", token="stale")
    with pytest.raises(CredentialsError, match="rejected the credentials"):
        KubeTarget(kubeconfig_api("test", path), kube.namespace, ENV).apply([])
    with pytest.raises(ConfigError, match="cannot use kubeconfig context nope"):
        kubeconfig_api("nope", path)


def test_the_waves_of_apply_keep_the_order_of_kinds() -> None:
    """Side by side only within a wave: every kind has one, and the waves follow KINDS (what pods use first)."""
    assert set(WAVES) == {kind.kind for kind in KINDS}
    assert [WAVES[kind.kind] for kind in KINDS] == sorted(WAVES[kind.kind] for kind in KINDS)
    assert WAVES["Secret"] < WAVES["Deployment"] < WAVES["NetworkPolicy"]
