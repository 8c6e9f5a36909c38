"""A real Kubernetes control plane on 127.0.0.1 for `make cluster` and the tests: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, with KWOK simulating nodes and, with `real_node`, a real node beside
them (tools/cluster/node.py: containerd, the kubelet, kube-proxy and CoreDNS in a network namespace of their own).

What is real: the API server (TLS, token and client-certificate authentication, RBAC, admission,
defaulting, validation, server-side apply, managedFields, finalizers, audit log), etcd, every controller
of kube-controller-manager (Deployments, ReplicaSets, StatefulSets, garbage collection, namespace
lifecycle, volume binding, PVC protection), the scheduler, and the real node's kubelet. What is simulated: the
KWOK nodes. KWOK (sigs.k8s.io/kwok) keeps a few Node objects alive and moves the status of their pods through its
stages, so no container of theirs runs and no probe is sent. Without a real node, claims are provisioned by
KWOK's volume stages (a `kwok-volume` default StorageClass); beside one, by local-path-provisioner (`local-path`),
and KWOK's nodes are tainted so that only pods tolerating them land there. KWOK's kubelet API serves logs from
files named by ClusterLogs.

The binaries come from tools/cluster/build.sh (one pinned Kubernetes version, in tools/cluster/kube/go.mod).
Every process is started here, its pid kept in STATE/pids/NAME; `stop` ends exactly those (and the real node's
containers, through its cgroups).

    python -m tools.cluster.controlplane up [--state DIR] [--base-port N] [--registry] [--node]   # its kubeconfig
    python -m tools.cluster.controlplane down [--state DIR]

`make cluster` runs `up --registry --node` (API server on 127.0.0.1:16440, the registry on 127.0.0.1:16444, the
`cluster` environment of k8sdeploy.toml); `make cluster-down` runs `down`.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from tools.cluster import pki
from tools.cluster.node import NODE_PROCESSES, RealNode, running
from tools.cluster.nodefiles import HELPER_IMAGE, NODE_NAME

HERE = Path(__file__).resolve().parent
DEFAULT_STATE = Path.home() / ".local/state/k8sdeploy/cluster"  # the `cluster` environment's kubeconfig is there
DEFAULT_BASE_PORT = 16440
NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
ADMIN_TOKEN_USER = "admin"
# KWOK's own stages, as kwokctl installs them (nodes Ready with a lease heartbeat, pods Running and Ready,
# deleted pods gone), and its volume provisioner (a default StorageClass that binds claims to hostPath
# volumes nobody mounts). Tests add stages of their own for the failures they need.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "volume/fast/storage-class.yaml",
    "volume/fast/pvc-provision.yaml",
    "volume/fast/pv-bind.yaml",
    "volume/fast/pvc-delete.yaml",
    "volume/fast/pv-delete.yaml",
)
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


# CoreDNS's kubernetes plugin reads these (coredns plugin/kubernetes README, "RBAC")
COREDNS_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "system:coredns"},
    "rules": [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ],
}
COREDNS_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "system:coredns"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}],
}


class ControlPlaneError(Exception):
    """A component did not start or answer; the message names it and the log to read."""


@dataclass(frozen=True)
class Ports:
    apiserver: int
    etcd: int
    etcd_peer: int
    kubelet: int  # KWOK's kubelet API (logs), on every simulated node's address 127.0.0.1
    registry: int  # an OCI registry (Debian's docker-registry) for the images, when asked for

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(base, base + 1, base + 2, base + 3, base + 4)


@dataclass(frozen=True)
class Cluster:
    """What a started control plane gives its users."""

    state: Path
    server: str  # https://127.0.0.1:PORT
    kubeconfig: Path  # an admin (system:masters) client certificate
    ca_pem: bytes
    tokens: dict[str, str] = field(default_factory=dict)  # bearer token -> user
    audit_log: Path = Path()

    def version(self) -> str:
        answer = requests.get(f"{self.server}/version", verify=str(self.state / "pki/ca.crt"), timeout=10)
        answer.raise_for_status()
        return answer.json()["gitVersion"]


def terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies (Linux PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def binaries() -> Path:
    """The directory of the built binaries (built now when the pin changed or nothing was built)."""
    done = subprocess.run(["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise ControlPlaneError(f"tools/cluster/build.sh failed (exit {done.returncode}); its output is above")
    return Path(done.stdout.strip().splitlines()[-1])


class ControlPlane:
    """Starts and stops one control plane whose files live in `state`."""

    def __init__(
        self,
        state: Path = DEFAULT_STATE,
        base_port: int = DEFAULT_BASE_PORT,
        tokens: dict[str, tuple[str, str]] | None = None,
        bin_dir: Path | None = None,
        registry: bool = False,
        real_node: bool = False,
        die_with_parent: bool = False,
        say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ):
        self.state = state
        # a test session's control plane ends with the session even when it is killed (no clean-up runs)
        self.die_with_parent = die_with_parent
        self.with_registry = registry
        self.ports = Ports.from_base(base_port)
        self.node = RealNode(state, self.ports.apiserver, die_with_parent, say) if real_node else None
        self.extra_tokens = tokens or {}  # token -> (user, comma-separated groups)
        self.bin_dir = bin_dir
        self.say = say

    # -- paths -------------------------------------------------------------------------------
    def pid_file(self, name: str) -> Path:
        return self.state / "pids" / name

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    def cluster(self) -> Cluster:
        tokens = json.loads((self.state / "tokens.json").read_text())
        return Cluster(
            self.state,
            self.server,
            self.kubeconfig,
            (self.state / "pki/ca.crt").read_bytes(),
            tokens,
            self.state / "audit.log",
        )

    # -- up ----------------------------------------------------------------------------------
    def running(self) -> bool:
        saved = self.state / "ports.json"
        if not saved.exists() or not all(self.alive(name) for name in self.components()):
            return False
        self.ports = Ports(**json.loads(saved.read_text()))
        return self.ready()

    def components(self) -> tuple[str, ...]:
        registry = ("docker-registry",) if self.with_registry else ()
        node = NODE_PROCESSES if self.node else ()
        return ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", *registry, *node)

    def start(self) -> Cluster:
        """Idempotent: a running control plane of this state directory is used as it is."""
        if self.running():
            return self.cluster()
        self.stop()  # whatever is half there from an earlier run
        bin_dir = self.bin_dir or binaries()
        started = time.monotonic()
        for sub in ("pki", "pids", "logs", "etcd"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        (self.state / "ports.json").write_text(json.dumps(self.ports.__dict__))
        self.write_files()
        self.launch("etcd", bin_dir, self.etcd_args())
        self.wait_for(f"http://127.0.0.1:{self.ports.etcd}/health", "etcd", verify=False)
        self.launch("kube-apiserver", bin_dir, self.apiserver_args())
        self.wait_for(f"{self.server}/readyz", "kube-apiserver")
        self.install_kwok(bin_dir)
        self.launch("kube-controller-manager", bin_dir, self.controller_manager_args())
        self.launch("kube-scheduler", bin_dir, self.scheduler_args())
        self.add_nodes()
        self.start_kwok(bin_dir)
        self.wait_default_service_account()
        if self.with_registry:
            self.start_registry()
        if self.node:
            self.start_node(bin_dir)
        self.say(
            f"control plane {self.cluster().version()} ready in {time.monotonic() - started:.1f} s "
            f"(API server {self.server}, state {self.state})"
        )
        return self.cluster()

    def write_files(self) -> None:
        pki.write_all(self.state / "pki")
        tokens = {pki.random_token(): (ADMIN_TOKEN_USER, "system:masters"), **self.extra_tokens}
        lines = [f'{token},{user},{user},"{groups}"' for token, (user, groups) in tokens.items()]
        (self.state / "tokens.csv").write_text("\n".join(lines) + "\n")
        (self.state / "tokens.json").write_text(json.dumps({t: u for t, (u, _) in tokens.items()}))
        (self.state / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        users = ["admin", "kube-controller-manager", "kube-scheduler", "kwok"]
        for user in users + (["node", "kube-proxy", "coredns"] if self.node else []):
            path = self.kubeconfig if user == "admin" else self.state / f"{user}.kubeconfig"
            path.write_text(yaml.safe_dump(pki.kubeconfig(self.state / "pki", self.server, user)))
            path.chmod(0o600)

    def etcd_args(self) -> list[str]:
        client, peer = f"http://127.0.0.1:{self.ports.etcd}", f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            "--name=default",
            f"--data-dir={self.state / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def apiserver_args(self) -> list[str]:
        p = self.state / "pki"
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.apiserver}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--token-auth-file={self.state / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            f"--audit-policy-file={self.state / 'audit-policy.yaml'}",
            f"--audit-log-path={self.state / 'audit.log'}",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
        ]

    def controller_manager_args(self) -> list[str]:
        p = self.state / "pki"
        return [
            f"--kubeconfig={self.state / 'kube-controller-manager.kubeconfig'}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            "--profiling=false",
        ]

    def scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.state / 'kube-scheduler.kubeconfig'}",
            "--leader-elect=false",
            "--secure-port=0",
            "--profiling=false",
        ]

    def kwok_args(self) -> list[str]:
        p = self.state / "pki"
        return [
            f"--kubeconfig={self.state / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            f"--node-port={self.ports.kubelet}",
            f"--server-address=127.0.0.1:{self.ports.kubelet}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            "--cidr=10.244.0.1/16",
            "--node-lease-duration-seconds=40",
            "--enable-crds=Stage,ClusterLogs",
        ]

    def start_node(self, bin_dir: Path) -> None:
        """The real node (tools/cluster/node.py), the Endpoints of the `kubernetes` Service that pods reach it
        by, CoreDNS's permissions, and the registry within its reach."""
        assert self.node is not None
        self.apply(COREDNS_ROLE)
        self.apply(COREDNS_BINDING)
        self.node.start(bin_dir, self.launch_command, self.get)
        address = {"addresses": [{"ip": self.node.node_ip}], "ports": [{"name": "https", "port": 6443}]}
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default"},
                "subsets": [address],
            }
        )
        self.start_provisioner(bin_dir)
        unenforced = "no policy engine runs: docs/control-plane.md"
        self.say(f"note: NetworkPolicies are not enforced on {NODE_NAME} ({unenforced})")
        if self.with_registry:
            self.node.reach_registry(self.ports.registry, self.launch_command)
        addresses = self.node.lb_addresses()
        self.launch_command(
            "loadbalancers",
            [sys.executable, str(HERE / "loadbalancers.py"), f"--server={self.server}", f"--pki={self.state / 'pki'}"]
            + [f"--netns={self.node.netns}", f"--first={addresses[0]}", f"--last={addresses[-1]}"],
            cgroup=self.node.cgroup,
        )

    def start_provisioner(self, bin_dir: Path) -> None:
        """local-path-provisioner, out of the cluster (the admin's kubeconfig), with its own manifests' ConfigMap:
        claims of the default StorageClass `local-path` become `local` volumes (so fsGroup applies, as it does to a
        GKE disk) in directories under STATE/node/volumes, made and removed by its helper pods on the node."""
        assert self.node is not None
        shipped = yaml.safe_load_all((bin_dir / "localpath-data/local-path-storage.yaml").read_text())
        config_map = next(obj for obj in shipped if obj and obj["kind"] == "ConfigMap")
        volumes = self.node.dir / "volumes"
        volumes.mkdir(parents=True, exist_ok=True)
        config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(volumes)]}]}
        helper = yaml.safe_load(config_map["data"]["helperPod.yaml"])
        helper["spec"]["containers"][0].update(image=HELPER_IMAGE, imagePullPolicy="Never")
        config_map["data"].update({"config.json": json.dumps(config), "helperPod.yaml": yaml.safe_dump(helper)})
        (self.node.dir / "local-path.json").write_text(json.dumps(config))
        (self.node.dir / "helper-pod.yaml").write_text(yaml.safe_dump(helper))
        namespace = config_map["metadata"]["namespace"]
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        account = "local-path-provisioner-service-account"
        self.apply(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": namespace}}
        )
        self.apply(config_map)
        self.apply(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": "local-path",
                    "annotations": {
                        "storageclass.kubernetes.io/is-default-class": "true",
                        "defaultVolumeType": "local",
                    },
                },
                "provisioner": "rancher.io/local-path",
                "volumeBindingMode": "WaitForFirstConsumer",
                "reclaimPolicy": "Delete",
            }
        )
        self.launch_command(
            "local-path-provisioner",
            [str(bin_dir / "local-path-provisioner"), "start", f"--config={self.node.dir / 'local-path.json'}"]
            + [f"--kubeconfig={self.kubeconfig}", f"--namespace={namespace}", f"--helper-image={HELPER_IMAGE}"]
            + [f"--helper-pod-file={self.node.dir / 'helper-pod.yaml'}", f"--service-account-name={account}"],
            cgroup=self.node.cgroup,
        )

    def get(self, path: str) -> dict:
        answer = self.session().get(f"{self.server}{path}", timeout=10)
        return answer.json() if answer.status_code == 200 else {}

    def start_registry(self) -> None:
        """Debian's docker-registry on 127.0.0.1, storing under the state directory (gone with `down`)."""
        binary = Path(shutil.which("docker-registry") or "/usr/bin/docker-registry")
        if not binary.exists():
            raise ControlPlaneError("docker-registry is not installed: apt-get install docker-registry")
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.state / "registry")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.ports.registry}", "secret": pki.random_token()},
        }
        (self.state / "registry.json").write_text(json.dumps(config))  # JSON is YAML
        self.launch("docker-registry", binary.parent, ["serve", str(self.state / "registry.json")])
        self.wait_for(f"http://127.0.0.1:{self.ports.registry}/v2/", "docker-registry", verify=False)

    def launch(self, name: str, bin_dir: Path, args: list[str]) -> None:
        self.launch_command(name, [str(bin_dir / name), *args])

    def launch_command(self, name: str, command: list[str], cgroup: str = "") -> None:
        """Start `command` as component `name` (its log and pid file under the state directory); `cgroup`: in
        that cgroup of the v1 pids hierarchy, from before its first instruction."""
        die_with_parent = self.die_with_parent

        def before_exec() -> None:
            if cgroup:
                Path(f"/sys/fs/cgroup/pids/{cgroup}/cgroup.procs").write_text(str(os.getpid()))
            if die_with_parent:
                terminate_with_parent()

        log = open(self.state / "logs" / f"{name}.log", "ab")
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.state,
            preexec_fn=before_exec if cgroup or die_with_parent else None,
        )
        log.close()
        self.pid_file(name).write_text(str(process.pid))

    def alive(self, name: str) -> bool:
        try:
            pid = int(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return False
        return running(pid)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        session.verify = str(self.state / "pki/ca.crt")
        session.cert = (str(self.state / "pki/admin.crt"), str(self.state / "pki/admin.key"))
        return session

    def ready(self) -> bool:
        try:
            return self.session().get(f"{self.server}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def wait_for(self, url: str, name: str, verify: bool = True, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        session = self.session() if verify else requests.Session()
        while time.monotonic() < deadline:
            if not self.alive(name):
                raise ControlPlaneError(
                    f"{name} exited; see {self.state / 'logs' / (name + '.log')}:\n" + self.log_tail(name)
                )
            try:
                if session.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise ControlPlaneError(f"{name} did not answer {url} within {timeout:g} s:\n" + self.log_tail(name))

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.state / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # -- objects the control plane starts with ------------------------------------------------
    def apply(self, obj: dict) -> None:
        """Server-side apply of one object the control plane starts with (CRDs, Stages, StorageClasses, Nodes, the
        node's RBAC, the volume provisioner's namespace, service account and configuration)."""
        group_version = obj["apiVersion"]
        plural = {
            "CustomResourceDefinition": "customresourcedefinitions",
            "Stage": "stages",
            "StorageClass": "storageclasses",
            "Node": "nodes",
            "ClusterRole": "clusterroles",
            "ClusterRoleBinding": "clusterrolebindings",
            "Namespace": "namespaces",
            "ServiceAccount": "serviceaccounts",
            "ConfigMap": "configmaps",
            "Endpoints": "endpoints",
        }[obj["kind"]]
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        namespace = obj["metadata"].get("namespace")
        base += f"/namespaces/{namespace}" if namespace else ""
        answer = self.session().patch(
            f"{self.server}{base}/{plural}/{obj['metadata']['name']}",
            params={"fieldManager": "k8sdeploy-cluster", "force": "true"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
            timeout=30,
        )
        if answer.status_code >= 300:
            raise ControlPlaneError(f"applying {obj['kind']}/{obj['metadata']['name']}: {answer.text[:300]}")

    def install_kwok(self, bin_dir: Path) -> None:
        data = bin_dir / "kwok-data"
        for crd in sorted((data / "crd").glob("*.yaml")):
            self.apply(yaml.safe_load(crd.read_text()))
        deadline = time.monotonic() + 30
        while self.session().get(f"{self.server}/apis/kwok.x-k8s.io/v1alpha1/stages", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise ControlPlaneError("KWOK's Stage CRD was not established within 30 s")
            time.sleep(0.2)
        # beside a real node, claims are provisioned for real (local-path-provisioner), not by KWOK's stages
        for stage in [s for s in KWOK_STAGES if not (self.node and s.startswith("volume/"))]:
            for obj in yaml.safe_load_all((data / "stage" / stage).read_text()):
                if obj:
                    self.apply(obj)

    def add_nodes(self) -> None:
        for name in NODES:
            self.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                    # beside a real node, pods land on a KWOK node only when they tolerate it (as KWOK's docs
                    # have it: https://kwok.sigs.k8s.io/docs/user/kwok-in-cluster/)
                    "spec": {"taints": [KWOK_TAINT] if self.node else []},
                    "status": {
                        "allocatable": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi", "pods": "110"},
                        "capacity": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "100Gi", "pods": "110"},
                    },
                }
            )

    def start_kwok(self, bin_dir: Path, attempts: int = 3, timeout: float = 40) -> None:
        """KWOK, until it has made the nodes ready. A KWOK that has not started its stage controllers by then is
        started again (at most `attempts` in all): on a machine starting several control planes at once, one
        KWOK's first list of the Stages once hung past 60 s (its log ended at "Starting HTTPS server", where
        others go on to "Start stage controller" within 0.1 s), and a new process lists them afresh."""
        for attempt in range(1, attempts + 1):
            self.launch("kwok", bin_dir, self.kwok_args())
            try:
                return self.wait_nodes_ready(timeout)
            except ControlPlaneError:
                if attempt == attempts or "Start stage controller" in self.log_tail("kwok", 10_000):
                    raise  # it started and still makes no node ready: not a hung start
                self.say(f"KWOK started no stage controller within {timeout:g} s; starting it again")
                self.end("kwok")

    def wait_nodes_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = self.session().get(f"{self.server}/api/v1/nodes", timeout=10).json().get("items", [])
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) >= len(NODES):
                return
            time.sleep(0.3)
        raise ControlPlaneError(f"KWOK did not make the nodes ready within {timeout:g} s:\n" + self.log_tail("kwok"))

    def wait_default_service_account(self, timeout: float = 60) -> None:
        """The controller manager is working once it has made the default namespace's service account."""
        deadline = time.monotonic() + timeout
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        while self.session().get(url, timeout=10).status_code != 200:
            if not self.alive("kube-controller-manager") or time.monotonic() > deadline:
                raise ControlPlaneError(
                    "kube-controller-manager made no service account:\n" + self.log_tail("kube-controller-manager")
                )
            time.sleep(0.3)

    # -- down --------------------------------------------------------------------------------
    def stop(self, remove_state: bool = True) -> None:
        """End the processes this state directory started (by their pids), then remove its files."""
        started = sorted(p.name for p in (self.state / "pids").glob("*")) if (self.state / "pids").is_dir() else []
        for name in [n for n in NODE_PROCESSES if n in started] + [n for n in started if n.startswith("forward-")]:
            self.end(name)
        (self.node or RealNode(self.state, self.ports.apiserver, self.die_with_parent, self.say)).stop()
        order = ("docker-registry", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
        for name in order:
            self.end(name)
        if remove_state and self.state.exists():
            subprocess.run(["rm", "-rf", str(self.state)], check=False)

    def end(self, name: str) -> None:
        """SIGTERM component `name` (by its pid file), SIGKILL after 10 s."""
        try:
            pid = int(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return
        if self.alive(name):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.alive(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.alive(name):
                os.kill(pid, signal.SIGKILL)
        self.pid_file(name).unlink()


def audit_mutations(
    audit_log: Path,
    users: Collection[str] = (),
    since: datetime.datetime | None = None,
    dry_runs: bool = False,
    namespace: str = "",
) -> list[str]:
    """Mutating requests (only those are logged) by any of `users` (all when empty) since `since`, in the order
    the API server logged them, as 'VERB resource/name'. Dry runs (dryRun=All) store nothing: they are left out,
    or with `dry_runs` they are the only ones listed. `namespace`: only those on its objects or on itself."""
    found = []
    for line in audit_log.read_text().splitlines() if audit_log.exists() else []:
        event = json.loads(line)
        if ("dryRun=All" in event.get("requestURI", "")) != dry_runs:
            continue
        ref = event.get("objectRef") or {}
        if users and event.get("user", {}).get("username") not in users:
            continue
        if namespace and namespace not in (
            ref.get("namespace"),
            ref.get("name") if ref.get("resource") == "namespaces" else None,
        ):
            continue
        if since and datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")) < since:
            continue
        found.append(f"{event['verb']} {ref.get('resource', '')}/{ref.get('name', '')}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="controlplane", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "build"))
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help="the API server's port; etcd, KWOK and the registry take the next four",
    )
    parser.add_argument("--registry", action="store_true", help="also run an OCI registry on base port + 4")
    parser.add_argument("--node", action="store_true", help="also run a real node (tools/cluster/node.py)")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.state, args.base_port, registry=args.registry, real_node=args.node)
    try:
        if args.command == "build":
            print(binaries())
        elif args.command == "up":
            print(plane.start().kubeconfig)
        else:
            plane.stop()
            print(f"stopped the control plane of {args.state}", file=sys.stderr)
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
