"""A real Kubernetes node beside the control plane: Debian's containerd (an instance of its own, never the one
the Docker Engine uses) and runc, the kubelet and kube-proxy of the control plane's version, CoreDNS, and
Debian's bridge CNI plugin, all inside a network namespace made here. Pods really run there, probes are really
sent, Services really route. Facts and settings: ../shared/notes/real-node.md, and docs/control-plane.md; the
configuration files and the node's own images: tools/cluster/nodefiles.py.

The network (one /24 of 10.201.0.0/16, the first not in use on this machine):

    host namespace   HOST_LINK 10.201.N.1 ──veth── eth0 10.201.N.2 (the node's InternalIP)   node namespace
                                                   eth0 10.201.N.100.. (load balancers' addresses)
                                                   cni0 10.244.0.1/24 ── the pods

The host reaches the node, its NodePorts and its load balancers' addresses through the veth pair; nothing else
in the host's namespace changes. The node reaches the control plane and the registry at the same loopback
addresses as the host does (127.0.0.1:PORT inside its namespace): socat listens there and, for each
connection, enters the host's namespace (bound to a name of its own for that, HOST_NETNS) and connects to
127.0.0.1:PORT. Pods reach the API server as `kubernetes.default` (10.96.0.1, the Endpoints written here point
at a forwarder on the node's address).

Every process of the node (and every container, through the kubelet's cgroupRoot) is in the cgroup
/k8sdeploy-KEY of each v1 hierarchy: `stop` ends the processes by their pids (the pid files, then whatever the
cgroups still list: containerd's shims and the containers), unmounts what is under the state directory and
SOCKETS/KEY (containerd's state and socket, the kubelet's root: short paths for their unix sockets), deletes
the namespaces and the cgroups, and sets back the three sysctls the kubelet rewrites at start. A node whose
starter died without stopping it (a killed test run) is listed in /run/k8sdeploy/nodes, and the next start of
any node stops it first.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from tools.cluster.nodefiles import (
    NODE_NAME,
    NodeError,
    cni_config,
    containerd_config,
    corefile,
    kube_proxy_config,
    kubelet_config,
    node_images,
)

NODE_SUBNETS = ipaddress.IPv4Network("10.201.0.0/16")
LB_FIRST, LB_LAST = 100, 199  # the load balancers' addresses in the node's /24
KERNEL_DEFAULTS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")  # the kubelet sets these
CGROUP_ROOT = Path("/sys/fs/cgroup")
# the v1 hierarchies, and the v2 one this hybrid layout mounts beside them (the kubelet makes its cgroupRoot there too)
HIERARCHIES = ("blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd", "unified")
REGISTRY = Path("/run/k8sdeploy/nodes")  # one record per started node, removed by its stop
# Where a node keeps its sockets and the kubelet's root (its plugin and pod-resources sockets among them): a unix
# socket's path has at most 107 bytes, and a state directory under a test's temporary directory is longer.
SOCKETS = Path("/var/lib/k8sdeploy/nodes")
# stop order; the forwarders after them
NODE_PROCESSES = ("local-path-provisioner", "loadbalancers", "coredns", "kube-proxy", "kubelet", "containerd")


@dataclass(frozen=True)
class NodeRecord:
    """What a node's stop needs, written where the next start of any node finds it."""

    key: str
    state: str  # the node's directory
    netns: str
    host_netns: str
    host_link: str
    subnet: str
    owner: int  # the pid whose death ends the node (a test session), or 0: it lives until `down`

    @property
    def cgroup(self) -> str:
        return f"k8sdeploy-{self.key}"

    @property
    def sockets(self) -> Path:
        return SOCKETS / self.key


def node_key(state: Path) -> str:
    return hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:8]


def run(*command: str, netns: str = "", check: bool = True) -> subprocess.CompletedProcess:
    full = ["nsenter", f"--net=/run/netns/{netns}", "--", *command] if netns else list(command)
    done = subprocess.run(full, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NodeError(f"`{' '.join(full)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def subnets_in_use() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    lines = run("ip", "-o", "-4", "addr", "show").stdout.splitlines() + run("ip", "-4", "route").stdout.splitlines()
    found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for line in lines:
        for word in line.split():
            if "/" in word and word[0].isdigit():
                try:
                    found.append(ipaddress.ip_network(word, strict=False))
                except ValueError:
                    pass
    return found


def free_subnet(key: str) -> ipaddress.IPv4Network:
    """The first /24 of NODE_SUBNETS, from one the key picks, that nothing on this machine uses."""
    taken = subnets_in_use()
    candidates = list(NODE_SUBNETS.subnets(new_prefix=24))
    start = int(key, 16) % len(candidates)
    for subnet in candidates[start:] + candidates[:start]:
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise NodeError(f"no free /24 in {NODE_SUBNETS} for the node's network")


def sysctls() -> dict[str, str]:
    return {name: run("sysctl", "-n", name).stdout.strip() for name in KERNEL_DEFAULTS}


def set_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        if run("sysctl", "-n", name).stdout.strip() != value:
            run("sysctl", "-q", "-w", f"{name}={value}")


# -- stopping: also what a later start does for a node whose starter died ------------------------------------
def cgroup_pids(cgroup: str) -> list[int]:
    pids: set[int] = set()
    for hierarchy in HIERARCHIES:
        top = CGROUP_ROOT / hierarchy / cgroup
        if top.is_dir():
            for procs in top.rglob("cgroup.procs"):
                try:
                    pids.update(int(line) for line in procs.read_text().split())
                except (OSError, ValueError):
                    pass
    return sorted(pids)


def kill_cgroup(cgroup: str, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL, every process the node's cgroups hold (shims and containers among them)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in cgroup_pids(cgroup):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while cgroup_pids(cgroup) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not cgroup_pids(cgroup):
            return


def remove_cgroups(cgroup: str) -> None:
    for hierarchy in HIERARCHIES:
        top = CGROUP_ROOT / hierarchy / cgroup
        if top.is_dir():
            for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                directory.rmdir()
            top.rmdir()


def unmount_under(directory: str) -> None:
    """Every mount at or under `directory`, deepest first (lazily: a busy one goes once nothing uses it)."""
    prefix = directory.rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == directory or point.startswith(prefix):
            points.append(point)
    for point in sorted(set(points), key=lambda p: -p.count("/")):
        run("umount", "-l", point, check=False)


def tear_down(record: NodeRecord, kernel: dict[str, str] | None = None) -> None:
    kill_cgroup(record.cgroup)
    unmount_under(record.state)
    unmount_under(str(record.sockets))
    subprocess.run(["rm", "-rf", str(record.sockets)], check=False)
    for name in (record.netns, record.host_netns):
        if Path(f"/run/netns/{name}").exists():
            run("ip", "netns", "delete", name, check=False)
    run("ip", "link", "delete", record.host_link, check=False)  # gone with the namespace; here if it was not
    try:
        remove_cgroups(record.cgroup)
    except OSError:
        time.sleep(1)  # a cgroup is removable a moment after its last process exits
        remove_cgroups(record.cgroup)
    if kernel:
        set_sysctls(kernel)
    (REGISTRY / f"{record.key}.json").unlink(missing_ok=True)


def running(pid: int) -> bool:
    """Whether process `pid` runs: a zombie (dead, not yet waited for by its parent) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1][:1]
    except OSError:
        return False
    return state != "Z"


def owner_alive(pid: int) -> bool:
    return pid == 0 or running(pid)


def stop_orphans(say: Callable[[str], None]) -> None:
    """Stop every node whose starter died (a test run killed before its teardown)."""
    for path in sorted(REGISTRY.glob("*.json")) if REGISTRY.is_dir() else []:
        try:
            record = NodeRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if not owner_alive(record.owner):
            say(f"stopping the node left by process {record.owner} ({record.state})")
            kernel = Path(record.state, "sysctls.json")
            tear_down(record, json.loads(kernel.read_text()) if kernel.exists() else None)


class RealNode:
    """One real node of a control plane (tools/cluster/controlplane.py), its files in STATE/node."""

    def __init__(self, state: Path, api_port: int, die_with_parent: bool, say: Callable[[str], None]):
        self.dir = state / "node"
        self.api_port = api_port
        self.die_with_parent = die_with_parent
        self.say = say
        self.key = node_key(state)
        self.sockets = SOCKETS / self.key
        self.netns = f"k8sdeploy-{self.key}"

    # -- names and addresses --------------------------------------------------------------------------------
    def record(self) -> NodeRecord | None:
        path = REGISTRY / f"{self.key}.json"
        return NodeRecord(**json.loads(path.read_text())) if path.exists() else None

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        record = self.record()
        if record is None:
            raise NodeError("the node is not running: run `make cluster`")
        return ipaddress.IPv4Network(record.subnet)

    @property
    def node_ip(self) -> str:
        return str(self.subnet[2])

    @property
    def cgroup(self) -> str:
        """The cgroup of its own processes (the pods' are the kubelet's, beside it)."""
        return f"k8sdeploy-{self.key}/node"

    def lb_addresses(self) -> list[str]:
        return [str(self.subnet[i]) for i in range(LB_FIRST, LB_LAST + 1)]

    def stop(self) -> None:
        record = self.record()
        if record is not None:
            kernel = self.dir / "sysctls.json"
            tear_down(record, json.loads(kernel.read_text()) if kernel.exists() else None)

    # -- start ----------------------------------------------------------------------------------------------
    def start(self, bin_dir: Path, launch: Callable[..., None], session_get: Callable[[str], dict]) -> None:
        """Make the namespace, cgroups and files, then start containerd, the kubelet (until the node is Ready),
        kube-proxy and CoreDNS. `launch(name, command, cgroup=...)` starts a process and keeps its pid."""
        stop_orphans(self.say)
        if self.record() is not None:
            self.stop()
        started = time.monotonic()
        subnet = free_subnet(self.key)
        record = NodeRecord(
            self.key,
            str(self.dir),
            self.netns,
            f"{self.netns}-host",
            f"kd{self.key}",
            str(subnet),
            os.getpid() if self.die_with_parent else 0,
        )
        REGISTRY.mkdir(parents=True, exist_ok=True)
        (REGISTRY / f"{self.key}.json").write_text(json.dumps(asdict(record)))
        for sub in ("cni", "certs.d", "pod-logs", "volume-plugins", "cni-ipam"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.sockets / "kubelet").mkdir(parents=True, exist_ok=True)
        kernel = sysctls()
        (self.dir / "sysctls.json").write_text(json.dumps(kernel))
        self.make_network(record)
        self.make_cgroups(record.cgroup)
        self.write_files(bin_dir, record)
        node_cgroup = f"{record.cgroup}/node"
        launch("forward-apiserver", self.forwarder(self.api_port, "127.0.0.1", record), cgroup=node_cgroup)
        launch("forward-service", self.forwarder(self.api_port, self.node_ip, record, 6443), cgroup=node_cgroup)
        launch(
            "containerd",
            self.in_netns(str(Path("/usr/bin/containerd")), "--config", str(self.dir / "containerd.toml")),
            cgroup=node_cgroup,
        )
        self.wait_for_socket(self.socket, "containerd")
        ctr = ("ctr", "--address", str(self.socket), "-n", "k8s.io")
        for index, archive in enumerate(node_images(bin_dir).values()):
            (self.dir / f"image-{index}.tar").write_bytes(archive)
            run(*ctr, "images", "import", str(self.dir / f"image-{index}.tar"))
        launch("kubelet", self.in_netns(str(bin_dir / "kubelet"), *self.kubelet_args()), cgroup=node_cgroup)
        self.wait_ready(session_get)
        set_sysctls(kernel)  # the kubelet rewrote them at its start; nothing else of the host depends on them
        launch(
            "kube-proxy",
            self.in_netns(str(bin_dir / "kube-proxy"), f"--config={self.dir / 'kube-proxy.yaml'}"),
            cgroup=node_cgroup,
        )
        launch(
            "coredns", self.in_netns(str(bin_dir / "coredns"), "-conf", str(self.dir / "Corefile")), cgroup=node_cgroup
        )
        self.say(f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f} s (address {self.node_ip})")

    @property
    def socket(self) -> Path:
        """containerd's (what `ctr --address` takes)."""
        return self.sockets / "containerd.sock"

    def in_netns(self, *command: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *command]

    def forwarder(self, port: int, bind: str, record: NodeRecord, listen: int | None = None) -> list[str]:
        """socat in the node's namespace on bind:listen, each connection to 127.0.0.1:port of the host's."""
        # socat's address syntax: the colons of the inner address are escaped from the outer EXEC
        into_host = f"nsenter --net=/run/netns/{record.host_netns} -- socat STDIO TCP\\:127.0.0.1\\:{port}"
        return self.in_netns("socat", f"TCP-LISTEN:{listen or port},bind={bind},fork,reuseaddr", f"EXEC:{into_host}")

    def reach_registry(self, port: int, launch: Callable[..., None]) -> None:
        """Let the node pull from the registry on the host's 127.0.0.1:`port`, as the host names it."""
        record = self.record()
        assert record is not None
        launch(f"forward-registry-{port}", self.forwarder(port, "127.0.0.1", record), cgroup=f"{record.cgroup}/node")
        hosts = self.dir / "certs.d" / f"127.0.0.1:{port}"
        hosts.mkdir(parents=True, exist_ok=True)
        server = f"http://127.0.0.1:{port}"  # plain HTTP (containerd's hosts.toml, docs/hosts.md)
        hosts_toml = f'server = "{server}"\n\n[host."{server}"]\n  capabilities = ["pull", "resolve"]\n'
        (hosts / "hosts.toml").write_text(hosts_toml)

    def make_network(self, record: NodeRecord) -> None:
        subnet = ipaddress.ip_network(record.subnet)
        run("ip", "netns", "add", record.netns)
        run("ip", "netns", "attach", record.host_netns, str(os.getpid()))
        run("ip", "link", "add", record.host_link, "type", "veth", "peer", "name", "eth0", "netns", record.netns)
        run("ip", "addr", "add", f"{subnet[1]}/24", "dev", record.host_link)
        run("ip", "link", "set", record.host_link, "up")
        for command in (
            ("ip", "link", "set", "lo", "up"),
            ("ip", "addr", "add", f"{subnet[2]}/24", "dev", "eth0"),
            ("ip", "link", "set", "eth0", "up"),
            ("ip", "route", "add", "default", "via", str(subnet[1])),
            ("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"),
            ("sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1"),
        ):
            run(*command, netns=record.netns)

    def make_cgroups(self, cgroup: str) -> None:
        for hierarchy in HIERARCHIES:
            top = CGROUP_ROOT / hierarchy
            if not top.is_dir():
                continue
            for path in (top / cgroup, top / cgroup / "node"):
                path.mkdir(exist_ok=True)
                if hierarchy == "cpuset":  # a v1 cpuset takes no task before it has cpus and mems
                    for name in ("cpuset.cpus", "cpuset.mems"):
                        (path / name).write_text((path.parent / name).read_text())

    def wait_for_socket(self, path: Path, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise NodeError(f"{name} made no socket {path} within {timeout:g} s; see its log")
            time.sleep(0.1)

    def wait_ready(self, session_get: Callable[[str], dict], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = session_get(f"/api/v1/nodes/{NODE_NAME}")
            conditions = (node.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return
            time.sleep(0.3)
        raise NodeError(f"the kubelet did not make {NODE_NAME} Ready within {timeout:g} s; see logs/kubelet.log")

    # -- files ----------------------------------------------------------------------------------------------
    def kubelet_args(self) -> list[str]:
        return [
            f"--config={self.dir / 'kubelet.yaml'}",
            f"--kubeconfig={self.dir.parent / 'node.kubeconfig'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.node_ip}",
            f"--root-dir={self.sockets / 'kubelet'}",
            f"--cert-dir={self.dir / 'kubelet-pki'}",
            "--node-labels=k8sdeploy.io/node=real",
            "--v=1",
        ]

    def write_files(self, bin_dir: Path, record: NodeRecord) -> None:
        d = self.dir
        (d / "containerd.toml").write_text(containerd_config(d, self.sockets))
        (d / "cni" / "10-k8sdeploy.conflist").write_text(json.dumps(cni_config(d), indent=1))
        (d / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(d, self.sockets, self.node_ip, record.cgroup)))
        (d / "kube-proxy.yaml").write_text(yaml.safe_dump(kube_proxy_config(d, self.node_ip)))
        (d / "Corefile").write_text(corefile(d, self.node_ip))
