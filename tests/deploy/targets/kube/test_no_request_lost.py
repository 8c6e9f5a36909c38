"""Deploys nobody notices, on a real node (tools/cluster/node.py: a real kubelet, containerd, kube-proxy and CoreDNS):
the production shape (split-pods, the MariaDB server k8sdeploy builds from Debian's packages, two replicas of every
part) while a logged-in user lists people every 50 ms through the gateway's load-balancer address, each request on
a connection of its own (so every one is routed anew, by kube-proxy's rules as they are at that moment). `up` of the
next version, `rollback` to the one before, `promote` into a second namespace's environment, and the eviction of
every pod of one part through the Eviction API (which the part's PodDisruptionBudget guards): no request fails and
the user is never logged out. The counts are asserted, not times."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import real_node_plane, state_home
from tests.deploy.conftest import clone, git
from tests.helpers import k8sdeploy, valid
from tests.load import nothing_lost
from tools.cluster.controlplane import ControlPlane

STAGE, PROD = "rolling", "rolling-prod"
SECRET = {"K8SDEPLOY_MYSQL_SECRET": "8f0c3a5e9d2b47c1a6e0f3b8d9c2a1e4f7b6c5d4"}
pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with real_node_plane(tmp_path_factory.mktemp("rolling-node")) as plane:
        yield plane


def environment(plane: ControlPlane, name: str, *lines: str) -> str:
    keys = [
        f"[environments.{name}]",
        f'kubeconfig = {{ file = "{plane.kubeconfig}" }}',
        f'registry = "127.0.0.1:{plane.ports.registry}/{name}"',
        f'namespace = "{name}"',
        'layout = "split-pods"',
        'database = "mysql"',  # no mysql_image: k8sdeploy's MariaDB
        'service_type = "LoadBalancer"',
        "allow_plain_http = true",
        "demo_users = true",
        *lines,
    ]
    return "\n".join(keys) + "\n"


@pytest.fixture(scope="module")
def config(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rolling-config") / "k8sdeploy.toml"
    path.write_text(environment(plane, STAGE) + environment(plane, PROD, f'promote_from = "{STAGE}"'))
    return path


@pytest.fixture(scope="module")
def checkout(source_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clone(source_repo, tmp_path_factory.mktemp("rolling-checkout") / "suite")


@pytest.fixture(scope="module", autouse=True)
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The deploy state (release history, users) of this module, not the machine's."""
    with state_home(tmp_path_factory.mktemp("rolling-state")):
        yield


def run(config: Path, env: str | None, *args: str) -> str:
    """A k8sdeploy command that must pass, its smoke login included; its stderr."""
    result = k8sdeploy(*args, "--wait-timeout", "600", env=env, config=config, environ=SECRET)
    assert result.exit_code == 0, result.stderr
    assert "smoke: admin@test.com logged in" in result.stderr, result.stderr
    return result.stderr


def gateway_url(plane: ControlPlane, namespace: str) -> str:
    [service] = [
        service
        for service in plane.get(f"/api/v1/namespaces/{namespace}/services")["items"]
        if service["spec"]["type"] == "LoadBalancer"
    ]
    address = service["status"]["loadBalancer"]["ingress"][0]["ip"]
    return f"http://{address}:{service['spec']['ports'][0]['port']}"


def pods_of(plane: ControlPlane, namespace: str, part: str) -> list[dict]:
    pods = plane.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/name={part}")["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def test_the_production_shape_runs_on_the_node_with_mariadb_built_here(
    plane: ControlPlane, config: Path, checkout: Path
) -> None:
    run(config, STAGE, "up", "--source", str(checkout))
    deployments = plane.get(f"/apis/apps/v1/namespaces/{STAGE}/deployments")["items"]
    assert len(deployments) == 6
    assert all(d["status"].get("readyReplicas") == d["spec"]["replicas"] == 2 for d in deployments), [
        (d["metadata"]["name"], d["status"].get("readyReplicas")) for d in deployments
    ]
    [server] = plane.get(f"/apis/apps/v1/namespaces/{STAGE}/statefulsets")["items"]
    image = server["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(f"127.0.0.1:{plane.ports.registry}/{STAGE}/mariadb:") and "@sha256:" in image
    budgets = plane.get(f"/apis/policy/v1/namespaces/{STAGE}/poddisruptionbudgets")["items"]
    assert len(budgets) == 6 and all(b["status"].get("disruptionsAllowed") == 1 for b in budgets)
    run(config, None, "promote", "--from", STAGE, "--to", PROD)


def test_up_of_the_next_version_loses_no_request(plane: ControlPlane, config: Path, checkout: Path) -> None:
    (checkout / "services/person/NEXT_VERSION").write_text("the next version\n")
    (checkout / "nginx-lua/NEXT_VERSION").write_text("the next version\n")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "the next version of every part")
    with nothing_lost(gateway_url(plane, STAGE)):
        said = run(config, STAGE, "up", "--source", str(checkout))
    assert "no gap: " in said, said


def test_rollback_loses_no_request(plane: ControlPlane, config: Path) -> None:
    with nothing_lost(gateway_url(plane, STAGE)):
        run(config, STAGE, "rollback", "--yes")


def test_promote_loses_no_request(plane: ControlPlane, config: Path) -> None:
    history = valid(k8sdeploy("history", "--output", "json", env=STAGE, config=config).stdout)["releases"]
    newer = next(release["version"] for release in history if release["action"] == "up")
    with nothing_lost(gateway_url(plane, PROD)):
        said = run(config, None, "promote", "--from", STAGE, "--to", PROD, "--version", newer)
    assert "no gap: " in said, said


def test_draining_a_part_through_the_eviction_api_loses_no_request(plane: ControlPlane) -> None:
    """Every pod of `session` evicted, as a node drain does: the budget lets one go at a time (429 while the other
    is its part's only ready pod), and the Deployment replaces each."""
    session = plane.session()
    evicted: set[str] = set()
    with nothing_lost(gateway_url(plane, PROD)):
        deadline = time.monotonic() + 600
        originals = {pod["metadata"]["name"] for pod in pods_of(plane, PROD, "session")}
        refused = 0
        while evicted != originals and time.monotonic() < deadline:
            for name in sorted(originals - evicted):
                answer = session.post(
                    f"{plane.server}/api/v1/namespaces/{PROD}/pods/{name}/eviction",
                    json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}},
                    timeout=10,
                )
                if answer.status_code in (200, 201):
                    evicted.add(name)
                else:
                    assert answer.status_code == 429, answer.text  # the budget: not now
                    refused += 1
            time.sleep(1)
        assert evicted == originals
        while time.monotonic() < deadline:  # until both replacements serve
            ready = [
                pod
                for pod in pods_of(plane, PROD, "session")
                if all(status["ready"] for status in pod["status"].get("containerStatuses", [{"ready": False}]))
            ]
            if len(ready) == 2 and not {pod["metadata"]["name"] for pod in ready} & originals:
                break
            time.sleep(1)
    assert refused > 0  # the second eviction waited for the first one's replacement
