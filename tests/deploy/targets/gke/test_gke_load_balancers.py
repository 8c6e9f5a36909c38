"""Both kinds of load balancer GKE makes for a LoadBalancer Service (tests/fakes/compute.py says what each is made
of, deploy/targets/gke/naming.py how it is named): backend-service based with a GCE_VM_IP NEG in each zone, as
current GKE makes them, and target-pool based; `down` removes either and its audit names what is left of either
(before: it knew only target pools, and exited 0 with a backend service, health check, firewall rules and NEGs
left). The shared health checks are named after the cluster's ids as the cluster keeps them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import clients
from deploy.model.errors import LeftoversError
from deploy.targets.gke.kind import gke_target
from deploy.targets.gke.naming import ClusterIds, content_hash
from deploy.targets.gke.target import GkeTarget
from tests.deploy.targets.gke.conftest import ENV, Cloud, config_file, environment, wait_for
from tests.deploy.targets.kube.objects import single_pod
from tests.helpers import k8sdeploy

ZONES = ("europe-west1-b", "europe-west1-c", "europe-west1-d")


def deploy_neg_way(cloud: Cloud, how: str, local: bool = False) -> tuple[GkeTarget, dict, str]:
    """The single-pod layout, its gateway's load balancer made the NEG way (`how`: GKE's default of 1.37 on, or
    the annotation); the target, the gateway Service, and the name ingress-gce gives its pieces."""
    cloud.compute.zones = ZONES
    objects = single_pod(ENV)
    if how == "default":
        cloud.controller.backend_services = True
    else:
        objects[0]["metadata"].setdefault("annotations", {})["cloud.google.com/l4-rbs"] = "enabled"
    if local:
        objects[0]["spec"]["externalTrafficPolicy"] = "Local"
    target = gke_target(environment(cloud.namespace), lambda _line: None, cloud.apis())
    target.apply(objects)
    cloud.controller.wait_idle()
    service = cloud.kube.get("services", "gateway")
    system_uid = cloud.kube.session().get(f"{cloud.kube.server}/api/v1/namespaces/kube-system", timeout=10).json()
    ids = ClusterIds(content_hash(system_uid["metadata"]["uid"], 8))
    return target, service, ids.l4_backend(cloud.namespace, "gateway")


@pytest.mark.parametrize("how", ["default", "annotation"])
def test_a_neg_load_balancer_is_removed_by_down_which_exits_0(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setattr(clients, "google_apis", cloud.apis)
    _target, service, backend = deploy_neg_way(cloud, how)
    uid = "a" + service["metadata"]["uid"].replace("-", "")[:31]
    assert "service.kubernetes.io/load-balancer-cleanup" not in service["metadata"]["finalizers"]
    assert "gke.networking.io/l4-netlb-v3" in service["metadata"]["finalizers"]
    region = "regions/europe-west1"
    made = set(cloud.compute.everything())
    assert {
        ("forwardingRules", region, uid),
        ("backendServices", region, backend),
        ("firewalls", "global", backend),
        *(("networkEndpointGroups", f"zones/{zone}", backend) for zone in ZONES),
    } <= made
    shared = [key for key in made if key[2].endswith("-l4-shared-hc")]
    assert [key[:2] for key in shared] == [("healthChecks", region)]
    assert ("firewalls", "global", f"{shared[0][2]}-fw") in made
    assert not cloud.compute.names("targetPools") and not cloud.compute.names("httpHealthChecks")
    result = k8sdeploy("down", "--yes", env=ENV, config=config_file(tmp_path / "k.toml", cloud.namespace))
    assert result.exit_code == 0, result.stderr
    assert cloud.compute.everything() == [] and cloud.gke.clusters == {}


def test_a_neg_piece_left_behind_makes_down_exit_7_naming_it(cloud: Cloud) -> None:
    """Its own health check (externalTrafficPolicy Local, the gateway's) and NEGs are left by a controller that
    failed to delete them."""
    target, _service, backend = deploy_neg_way(cloud, "default", local=True)
    assert ("healthChecks", "regions/europe-west1", backend) in cloud.compute.resources
    assert ("firewalls", "global", f"{backend}-fw") in cloud.compute.resources
    cloud.controller.leaks.add(backend)  # its backend service, health check, nodes' rule and NEGs stay
    target.cloud_timeout = 1  # how long down waits for them before it audits
    with pytest.raises(LeftoversError) as caught:
        target.down()
    assert caught.value.exit_code == 7
    left = str(caught.value)
    assert left.startswith("6 Compute resource(s) of environment staging-test are left: ")
    for piece in (
        f"backendService regions/europe-west1/{backend}",
        f"healthCheck regions/europe-west1/{backend}",
        f"firewall global/{backend}",
        *(f"networkEndpointGroup zones/{zone}/{backend}" for zone in ZONES),
    ):
        assert piece in left
    assert f"firewall global/{backend}-fw" not in left  # the health check's rule went


@pytest.fixture
def cluster_id(cloud: Cloud) -> Iterator[str]:
    """The cloud provider's id of the cluster, in kube-system/ingress-uid: a federated `provider-uid` beside the
    `uid`, which GetID prefers; the ConfigMap taken away afterwards (the controller makes a new one)."""
    path = f"{cloud.kube.server}/api/v1/namespaces/kube-system/configmaps"
    session = cloud.kube.session()
    session.delete(f"{path}/ingress-uid", timeout=10)
    body = {
        "metadata": {"name": "ingress-uid"},
        "data": {"uid": "1111111111111111", "provider-uid": "b74c81ed5ad4dc2c"},
    }
    assert session.post(path, json=body, timeout=10).status_code == 201
    yield "b74c81ed5ad4dc2c"
    session.delete(f"{path}/ingress-uid", timeout=10)


def test_the_shared_node_health_check_is_named_after_the_clusters_ingress_uid(cloud: Cloud, cluster_id: str) -> None:
    """A target-pool load balancer's shared node health check is named after the cluster id the cloud provider
    reads from kube-system/ingress-uid (before: after GKE's cluster id, which is another id): left behind, `down`
    names it."""
    target = gke_target(environment(cloud.namespace), lambda _line: None, cloud.apis())
    target.apply(single_pod(ENV))
    check = f"k8s-{cluster_id}-node"
    wait_for(lambda: ("httpHealthChecks", "global", check) in cloud.compute.resources)
    cloud.controller.leaks |= {check, f"{check}-http-hc"}
    target.cloud_timeout = 1
    with pytest.raises(LeftoversError) as caught:
        target.down()
    assert str(caught.value).startswith(
        "2 Compute resource(s) of environment staging-test are left: "
        f"httpHealthCheck global/{check}, firewall global/{check}-http-hc; delete them"
    )
    assert not cloud.compute.names("targetPools") and not cloud.compute.names("forwardingRules")
