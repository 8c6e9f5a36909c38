"""The suite on a real node (tools/cluster/node.py): a control plane of its own, with a real kubelet on Debian's
containerd, kube-proxy and CoreDNS in a network namespace of their own, local-path-provisioner for the claims and
a load balancer's address in the node's namespace. `k8sdeploy up` builds the suite from a git checkout, pushes it
to the control plane's registry, and the node pulls it by digest; the pods run as rendered (non-root, read-only
root filesystem, no capabilities), and the readiness they are waited for is the kubelet's, from probes it really
sends. A login, a list of people, an added person and a logout pass through the gateway's load-balancer address,
from this machine's own namespace, in both layouts and across a new version; a rollback across an added
migration (its Job run on the node) ends ready with the people kept; `dev` pushes a saved change and the kubelet
runs its digest; `down --volumes` leaves no container in
containerd and no volume on disk; stopping the node leaves no process, mount, namespace or cgroup, and the host's
sysctls as they were. A node whose starter was killed (SIGKILL: no clean-up ran) is stopped by the next start."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from deploy.model.environments import load_environment
from tests.controlplane import real_node_plane, state_home
from tests.deploy.conftest import clone, git
from tests.deploy.targets.kube.conftest import dev_running
from tests.helpers import k8sdeploy, valid
from tests.infra import free_port_block
from tests.services.test_migrations import EXPAND_STEP
from tools.cluster.controlplane import ControlPlane
from tools.cluster.node import KERNEL_DEFAULTS, REGISTRY, NodeRecord, running, stop_orphans, sysctls

ENV = "real-node"
NAMESPACE = "auth-suite"
pytestmark = pytest.mark.timeout(900)


def cgroup_dirs(key: str) -> list[Path]:
    return [path for path in Path("/sys/fs/cgroup").glob(f"*/k8sdeploy-{key}") if path.is_dir()]


def mounts_under(directory: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(str(directory))]


@pytest.fixture(scope="module")
def kernel_before() -> dict[str, str]:
    return sysctls()


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, kernel_before: dict[str, str]) -> Iterator[ControlPlane]:
    with real_node_plane(tmp_path_factory.mktemp("real-node")) as plane:
        yield plane


@pytest.fixture(scope="module")
def config(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("real-node-config") / "k8sdeploy.toml"
    path.write_text(
        "\n".join(
            [
                f"[environments.{ENV}]",
                f'kubeconfig = {{ file = "{plane.kubeconfig}" }}',
                f'registry = "127.0.0.1:{plane.ports.registry}/suite"',
                f'namespace = "{NAMESPACE}"',
                'layout = "single-pod"',
                'service_type = "LoadBalancer"',
                'database = "sqlite"',
                "allow_plain_http = true",
                "demo_users = true",
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture(scope="module")
def checkout(source_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone(source_repo, tmp_path_factory.mktemp("real-node-checkout") / "suite")


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The deploy state (release history, users) of this module, not the machine's."""
    with state_home(tmp_path_factory.mktemp("real-state")):
        yield


def up(config: Path, checkout: Path, *options: str) -> str:
    """`k8sdeploy up` (smoke login included); the gateway's URL it printed."""
    result = k8sdeploy("up", "--source", str(checkout), "--wait-timeout", "300", *options, env=ENV, config=config)
    assert result.exit_code == 0, result.stderr
    assert "smoke: admin@test.com logged in" in result.stderr
    [url] = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("gateway: ")]
    return url


@contextmanager
def logged_in(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as http:
        answer = http.post("/login", data={"emailaddress": "admin@test.com", "password": "admin"})
        assert answer.status_code == 302 and "AccessToken" in http.cookies, answer.text[:300]
        yield http


def people(http: httpx.Client) -> str:
    listed = http.get("/persons")
    assert listed.status_code == 200, listed.text[:300]
    return listed.text


def containerd(plane: ControlPlane, *args: str) -> str:
    assert plane.node is not None
    sock = plane.node.socket
    done = subprocess.run(["ctr", "--address", str(sock), "-n", "k8s.io", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_node_is_a_real_kubelet_on_containerd(plane: ControlPlane, kernel_before: dict[str, str]) -> None:
    node = plane.get("/api/v1/nodes/k8sdeploy-node")
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert info["kubeletVersion"].startswith("v1.35.")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    kwok = plane.get("/api/v1/nodes/kwok-node-0")  # KWOK's nodes stay, tainted: no pod of ours lands there
    assert {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"} in kwok["spec"]["taints"]
    assert sysctls() == kernel_before  # the kubelet rewrote them at its start; the tooling set them back


def test_single_pod_runs_as_rendered_and_a_login_passes_from_this_namespace(
    plane: ControlPlane, config: Path, checkout: Path, state: None
) -> None:
    url = up(config, checkout, "--layout", "single-pod")
    assert plane.node is not None and url.startswith(f"http://{plane.node.lb_addresses()[0]}:")
    with logged_in(url) as http:
        assert "<table>" in people(http)
        added = http.post("/persons/add", data={"firstName": "Ada", "lastName": "Realnode"})
        assert added.status_code in (302, 303), added.text[:300]
        assert "Realnode" in people(http)
        assert http.post("/logout").status_code == 302
        assert http.get("/persons").status_code == 302  # the old cookie is refused
    [pod] = plane.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    assert pod["spec"]["nodeName"] == "k8sdeploy-node"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    for container in pod["spec"]["containers"]:
        context = container.get("securityContext") or {}
        assert context.get("readOnlyRootFilesystem") is True, container["name"]
        assert context.get("allowPrivilegeEscalation") is False, container["name"]
        assert "ALL" in (context.get("capabilities") or {}).get("drop", []), container["name"]
    # every container runs, pulled by digest from the registry (none was imported behind the tool's back)
    statuses = pod["status"]["containerStatuses"]
    assert all(status["ready"] and "running" in status["state"] for status in statuses)
    assert all("@sha256:" in status["image"] or "@sha256:" in status["imageID"] for status in statuses)
    images = containerd(plane, "images", "ls", "-q")
    assert f"127.0.0.1:{plane.ports.registry}/suite/authentication" in images
    claims = plane.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims")["items"]
    assert claims and all(claim["status"]["phase"] == "Bound" for claim in claims)


def test_a_person_added_survives_the_next_version_and_the_switch_to_split_pods(
    plane: ControlPlane, config: Path, checkout: Path, state: None
) -> None:
    marker = checkout / "services/person/NEXT_VERSION"
    marker.write_text("the next version\n")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "the next version")
    url = up(config, checkout, "--layout", "single-pod")
    with logged_in(url) as http:
        assert "Realnode" in people(http)
    url = up(config, checkout, "--layout", "split-pods")
    pods = plane.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    assert len({pod["metadata"]["labels"].get("app.kubernetes.io/name") for pod in pods}) == 6
    with logged_in(url) as http:  # through CoreDNS's names and kube-proxy's ClusterIPs now
        assert "Realnode" in people(http)
        assert http.post("/logout").status_code == 302


def test_a_rollback_across_an_added_migration_ends_ready_with_the_data_kept(
    plane: ControlPlane, config: Path, checkout: Path, state: None
) -> None:
    history = k8sdeploy("history", "--output", "json", env=ENV, config=config)
    before = valid(history.stdout)["releases"][0]["version"]
    (checkout / "services/person/migrations/versions/0002_nickname.py").write_text(EXPAND_STEP)
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "person: nicknames (expand)")
    url = up(config, checkout, "--layout", "split-pods")  # its migration runs as a Job on the node
    with logged_in(url) as http:
        added = http.post("/persons/add", data={"firstName": "Grace", "lastName": "Migrated"})
        assert added.status_code in (302, 303), added.text[:300]
    back = k8sdeploy("rollback", "--to", before, "--yes", env=ENV, config=config)
    assert back.exit_code == 0, back.stderr
    assert f"schema of person: 0002 works with the code of {before}" in back.stderr
    assert "smoke: admin@test.com logged in" in back.stderr
    with logged_in(url) as http:
        listed = people(http)
        assert "Migrated" in listed and "Realnode" in listed


def test_dev_pushes_a_saved_change_and_the_node_runs_it(
    plane: ControlPlane, config: Path, checkout: Path, state: None
) -> None:
    environment = load_environment(ENV, config)
    with dev_running(environment, "split-pods", checkout, wait_timeout=300) as dev:
        dev.wait_said("watching ")
        mark = len(dev.said)
        app = checkout / "services" / "person" / "app.py"
        app.write_text(app.read_text().replace('"""', '"""A saved change. ', 1))
        dev.wait_said("served in", mark)
    deployment = plane.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/person")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    digest = image.split("@")[1]
    pods = [
        pod
        for pod in plane.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
        if pod["metadata"]["labels"].get("app.kubernetes.io/name") == "person"
        and not pod["metadata"].get("deletionTimestamp")
    ]
    # the kubelet pulled the pushed digest and runs it
    [status] = [status for pod in pods for status in pod["status"]["containerStatuses"]]
    assert status["ready"] and status["imageID"].endswith(digest), status
    [gateway] = [
        service
        for service in plane.get(f"/api/v1/namespaces/{NAMESPACE}/services")["items"]
        if service["spec"]["type"] == "LoadBalancer"
    ]
    address = gateway["status"]["loadBalancer"]["ingress"][0]["ip"]
    url = f"http://{address}:{gateway['spec']['ports'][0]['port']}"
    with logged_in(url) as http:
        assert "Migrated" in people(http)


def test_down_leaves_no_container_and_no_volume(plane: ControlPlane, config: Path, state: None) -> None:
    result = k8sdeploy("down", "--yes", "--volumes", env=ENV, config=config)
    assert result.exit_code == 0, result.stderr
    volumes = plane.state / "node/volumes"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        left = containerd(plane, "containers", "ls", "-q").split()
        on_disk = list(volumes.iterdir())
        if not left and not on_disk:
            break
        time.sleep(2)
    assert not left, left
    assert not on_disk, on_disk


def test_stopping_the_node_leaves_nothing(plane: ControlPlane, kernel_before: dict[str, str]) -> None:
    assert plane.node is not None
    key, netns, state = plane.node.key, plane.node.netns, plane.state
    pids = [int(path.read_text()) for path in (state / "pids").iterdir()]
    plane.stop(remove_state=False)
    assert not [pid for pid in pids if running(pid)]
    assert not cgroup_dirs(key)
    assert not Path(f"/run/netns/{netns}").exists() and not Path(f"/run/netns/{netns}-host").exists()
    assert not mounts_under(state) and not mounts_under(plane.node.sockets)
    assert not plane.node.sockets.exists()
    assert sysctls() == kernel_before
    assert not (REGISTRY / f"{key}.json").exists()


STARTER = """
import sys, time
from pathlib import Path
from tools.cluster.controlplane import ControlPlane
plane = ControlPlane(Path(sys.argv[1]), base_port=int(sys.argv[2]), real_node=True, die_with_parent=True,
                     say=lambda line: None)
plane.start()
print("ready", flush=True)
time.sleep(3600)
"""


def test_a_node_whose_starter_was_killed_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    """A test run killed with SIGKILL: its control plane dies with it (PR_SET_PDEATHSIG), but containerd's shims,
    the containers, their mounts, the namespaces and the cgroups would stay; the next start stops them."""
    kernel = sysctls()
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "plane"), str(free_port_block(5))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[4],
    )
    try:
        assert starter.stdout is not None and starter.stdout.readline().strip() == "ready"
        [record] = [
            NodeRecord(**json.loads(path.read_text()))
            for path in REGISTRY.glob("*.json")
            if json.loads(path.read_text())["owner"] == starter.pid
        ]
        sandboxes = subprocess.run(
            ["ctr", "--address", str(record.sockets / "containerd.sock"), "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True,
            text=True,
        )
        assert "pause" in sandboxes.stdout
        held = [
            int(pid) for path in cgroup_dirs(record.key) for pid in (path / "node/cgroup.procs").read_text().split()
        ]
        assert held
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait()
    stop_orphans(lambda _line: None)
    assert not [pid for pid in held if running(pid)]
    assert not cgroup_dirs(record.key)
    assert not Path(f"/run/netns/{record.netns}").exists()
    assert not mounts_under(Path(record.state)) and not mounts_under(record.sockets)
    assert not record.sockets.exists()
    assert {name: value for name, value in sysctls().items() if name in KERNEL_DEFAULTS} == kernel
