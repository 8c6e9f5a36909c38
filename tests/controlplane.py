"""The real Kubernetes control plane the kube and gke tests run against (tools/cluster/controlplane.py),
and what tests do with it: a namespace each, the objects k8sdeploy owns there, the mutating requests
the API server's audit log recorded, and simulated pod states and logs (KWOK Stages and ClusterLogs).

Real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler. Simulated: the kubelets (KWOK),
so no container runs and no probe is sent; a pod's state is whatever a KWOK stage sets.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.infra import free_port_block
from tools.cluster.controlplane import Cluster, ControlPlane, audit_mutations

# bearer token -> (user, groups) that the API server knows from its token file
TOKENS = {
    "kubeconfig-token": ("tester", "system:masters"),
    "google-token": ("google-user", "system:masters"),  # what the fake GKE's credentials carry
    "nobody-token": ("nobody", ""),  # authenticated, allowed nothing by RBAC
}
TEST_USERS = tuple(user for user, _ in TOKENS.values())
OWNED = "app.kubernetes.io/managed-by=k8sdeploy"
# Plural -> API path prefix of the kinds tests look at.
PATHS = {
    "namespaces": "/api/v1",
    "configmaps": "/api/v1",
    "secrets": "/api/v1",
    "services": "/api/v1",
    "persistentvolumeclaims": "/api/v1",
    "pods": "/api/v1",
    "deployments": "/apis/apps/v1",
    "statefulsets": "/apis/apps/v1",
    "networkpolicies": "/apis/networking.k8s.io/v1",
    "poddisruptionbudgets": "/apis/policy/v1",
    "leases": "/apis/coordination.k8s.io/v1",
    "events": "/api/v1",
}
NAMESPACED = tuple(plural for plural in PATHS if plural != "namespaces")


STATUS = """{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
{{ if @FAILS@ }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: @RESTARTS@
  @LAST@
  state: @STATE@
{{ else }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  started: true
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace | Quote }}
phase: @PHASE@
startTime: {{ $now | Quote }}
"""


def container_statuses(failing: str, waiting: dict | None, terminated_before: bool) -> str:
    """A KWOK status template: container `failing` waiting (or running but not ready), the others ready.
    `failing` is a container's name, or a Go template condition on the container (KWOK has sprig's functions:
    `contains "-docker.pkg.dev/" .image`)."""
    condition = failing if " " in failing else f'eq .name "{failing}"'
    state = json.dumps({"waiting": waiting}) if waiting else "{running: {startedAt: {{ $now | Quote }}}}"
    last = (
        "lastState: {terminated: {exitCode: 1, reason: Error, startedAt: {{ $now | Quote }}, "
        "finishedAt: {{ $now | Quote }}}}"
        if terminated_before
        else ""
    )
    pending = waiting is not None and waiting["reason"] in ("ImagePullBackOff", "ErrImagePull")
    return (
        STATUS.replace("@FAILS@", condition)
        .replace("@RESTARTS@", "3" if terminated_before else "0")
        .replace("@LAST@", last)
        .replace("@STATE@", state)
        .replace("@PHASE@", "Pending" if pending else "Running")
    )


# What a kubelet would report, per simulated state: (status template, event type, reason, message)
def simulated(state: str, container: str) -> tuple[str, dict]:
    if state == "crash-loop":
        waiting = {"reason": "CrashLoopBackOff", "message": f"back-off 10s restarting failed container={container}"}
        return (
            container_statuses(container, waiting, terminated_before=True),
            {"type": "Warning", "reason": "BackOff", "message": f"Back-off restarting failed container {container}"},
        )
    if state == "image-pull-backoff":
        waiting = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
        return (
            container_statuses(container, waiting, terminated_before=False),
            {"type": "Warning", "reason": "Failed", "message": "Error: ImagePullBackOff"},
        )
    if state == "not-ready":
        return (
            container_statuses(container, None, terminated_before=False),
            {
                "type": "Warning",
                "reason": "Unhealthy",
                "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            },
        )
    raise ValueError(f"no simulated state {state!r}")


@dataclass
class KubeCluster:
    """One test's view of the shared control plane: its own namespace, an admin HTTP session."""

    cluster: Cluster
    namespace: str
    started: datetime.datetime
    stages: list[str]
    work: Path

    @classmethod
    def new(cls, cluster: Cluster, work: Path) -> KubeCluster:
        """A view with a namespace name of its own (not created: the code under test does that)."""
        namespace = f"t-{uuid.uuid4().hex[:8]}"
        return cls(cluster, namespace, datetime.datetime.now(datetime.UTC), [], work)

    @property
    def server(self) -> str:
        return self.cluster.server

    @property
    def address(self) -> str:
        return self.server.removeprefix("https://")

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        session.verify = str(self.cluster.state / "pki/ca.crt")
        session.cert = (str(self.cluster.state / "pki/admin.crt"), str(self.cluster.state / "pki/admin.key"))
        return session

    # -- reading what is there -----------------------------------------------------------------
    def get(self, plural: str, name: str, namespace: str | None = None) -> dict | None:
        ns = self.namespace if namespace is None else namespace
        scope = f"/namespaces/{ns}" if plural in NAMESPACED else ""
        answer = self.session().get(f"{self.server}{PATHS[plural]}{scope}/{plural}/{name}", timeout=10)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.json()

    def list(self, plural: str, labels: str = "", namespace: str | None = None) -> list[dict]:
        ns = self.namespace if namespace is None else namespace
        scope = f"/namespaces/{ns}" if plural in NAMESPACED and ns else ""
        answer = self.session().get(
            f"{self.server}{PATHS[plural]}{scope}/{plural}", params={"labelSelector": labels}, timeout=10
        )
        answer.raise_for_status()
        return answer.json()["items"]

    def names(self, plural: str, labels: str = OWNED, namespace: str | None = None) -> list[str]:
        return sorted(item["metadata"]["name"] for item in self.list(plural, labels, namespace))

    def owned(self, namespace: str | None = None) -> list[tuple[str, str]]:
        """(plural, name) of every object carrying k8sdeploy's label in the namespace, and the namespace
        itself when it is k8sdeploy's and not yet gone: what `down` must leave none of."""
        ns = self.namespace if namespace is None else namespace
        found = [
            (plural, name)
            for plural in NAMESPACED
            if plural not in ("events", "leases")
            for name in self.names(plural, OWNED, ns)
        ]
        found += [("namespaces", name) for name in self.names("namespaces", OWNED, "") if name == ns]
        return sorted(found)

    def create(self, plural: str, body: dict, namespace: str | None = None) -> dict:
        ns = self.namespace if namespace is None else namespace
        scope = f"/namespaces/{ns}" if plural in NAMESPACED else ""
        answer = self.session().post(f"{self.server}{PATHS[plural]}{scope}/{plural}", json=body, timeout=10)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def wait_gone(self, plural: str, name: str, namespace: str | None = None, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.get(plural, name, namespace) is not None:
            assert time.monotonic() < deadline, f"{plural}/{name} still there after {timeout} s"
            time.sleep(0.2)

    # -- the audit log -------------------------------------------------------------------------
    def mark(self) -> datetime.datetime:
        time.sleep(0.01)
        return datetime.datetime.now(datetime.UTC)

    def mutations(self, since: datetime.datetime | None = None, user: str = "", dry_runs: bool = False) -> list[str]:
        """Mutating requests by the tests' users (or `user`) since `since` (default: this test's start); with
        `dry_runs`, the dry runs (dryRun=All) instead, which store nothing."""
        time.sleep(0.2)  # the audit log's writes land shortly after the answer
        users = (user,) if user else TEST_USERS
        return audit_mutations(self.cluster.audit_log, users, since or self.started, dry_runs)

    # -- simulated kubelets --------------------------------------------------------------------
    def simulate(self, state: str, container: str, pods_where: str) -> None:
        """Pods of this namespace matching the CEL expression `pods_where` get `state` for `container`:
        crash-loop, image-pull-backoff or not-ready (KWOK Stage; the other containers run ready)."""
        template, event = simulated(state, container)
        self.simulate_status(template, pods_where, event)

    def simulate_status(self, template: str, pods_where: str, event: dict | None = None) -> None:
        """Pending pods of this namespace matching the CEL expression `pods_where` get the status of the KWOK
        template `template` (and `event`)."""
        name = f"test-{uuid.uuid4().hex[:10]}"
        stage = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": name},
            "spec": {
                "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                "weight": 1000,
                "selector": {
                    "matchExpressions": [
                        {"cel": {"expression": f"self.metadata.namespace == '{self.namespace}'"}},
                        {"cel": {"expression": "!has(self.metadata.deletionTimestamp)"}},
                        {"cel": {"expression": "self.status.phase == 'Pending'"}},
                        {"cel": {"expression": pods_where}},
                    ]
                },
                "next": {"statusTemplate": template, **({"event": event} if event else {})},
            },
        }
        answer = self.session().post(f"{self.server}/apis/kwok.x-k8s.io/v1alpha1/stages", json=stage, timeout=10)
        assert answer.status_code < 300, answer.text
        self.stages.append(name)

    def logs(self, lines: dict[str, str]) -> None:
        """Logs of containers (by name) in this namespace's pods, as a kubelet would serve them."""
        entries = []
        for container, text in lines.items():
            path = self.work / f"{self.namespace}-{container}.log"
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            path.write_text("".join(f"{stamp} stdout F {line}\n" for line in text.splitlines()))
            entries.append({"containers": [container], "logsFile": str(path)})
        body = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": f"test-{self.namespace}"},
            "spec": {"selector": {"matchNamespaces": [self.namespace]}, "logs": entries},
        }
        url = f"{self.server}/apis/kwok.x-k8s.io/v1alpha1/clusterlogs"
        answer = self.session().post(url, json=body, timeout=10)
        assert answer.status_code < 300, answer.text
        self.stages.append(f"clusterlogs/{body['metadata']['name']}")
        time.sleep(0.5)  # KWOK watches them

    # -- clean-up ------------------------------------------------------------------------------
    def forget_simulations(self, logs: bool = False) -> None:
        """Remove the stages (and, with `logs`, the logs) this test made; pods keep the state they have."""
        session = self.session()
        for name in list(self.stages):
            plural, _, short = name.rpartition("/")
            if plural and not logs:
                continue
            session.delete(f"{self.server}/apis/kwok.x-k8s.io/v1alpha1/{plural or 'stages'}/{short}", timeout=10)
            self.stages.remove(name)

    def cleanup(self) -> None:
        self.forget_simulations(logs=True)
        self.session().delete(f"{self.server}/api/v1/namespaces/{self.namespace}", timeout=10)


def kubeconfig_for(cluster: Cluster, path: Path, token: str = "kubeconfig-token", server: str = "") -> Path:
    """A kubeconfig with a bearer token of TOKENS (context `test`, current context `other`, whose user has none)."""
    ca = cluster.state / "pki/ca.crt"
    cluster_entry = {"server": server or cluster.server}
    if cluster_entry["server"].startswith("https"):
        cluster_entry["certificate-authority"] = str(ca)
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "other",
                "clusters": [{"name": "real", "cluster": cluster_entry}],
                "users": [
                    {"name": "tester", "user": {"token": token}},
                    {"name": "nobody", "user": {"token": "no-such"}},
                ],
                "contexts": [
                    {"name": "test", "context": {"cluster": "real", "user": "tester"}},
                    {"name": "other", "context": {"cluster": "real", "user": "nobody"}},
                ],
            }
        )
    )
    return path


@contextmanager
def real_node_plane(directory: Path) -> Iterator[ControlPlane]:
    """A control plane of its own with a registry and a real node (tools/cluster/node.py), stopped after; its
    state is kept under `directory` for a failure's logs."""
    plane = ControlPlane(
        directory,
        base_port=free_port_block(5),
        registry=True,
        real_node=True,
        die_with_parent=True,
        say=lambda _line: None,
    )
    try:
        plane.start()
        yield plane
    finally:
        plane.stop(remove_state=False)


@contextmanager
def state_home(directory: Path) -> Iterator[None]:
    """The deploy state (release history, users) in `directory` ($XDG_STATE_HOME), not the machine's."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = previous
