"""GKE and Compute operations as Google runs them (tests/fakes/gke.py, tests/fakes/compute.py): one operation at
a time on a cluster, a failed cluster deleted by GKE itself, Compute changes that land only when their operation
is DONE, requestIds that make a retried insert safe, the network an environment names, and the per-Service health
check of a Service with externalTrafficPolicy Local."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import requests

from deploy import clients
from deploy.model.errors import CloudError, LeftoversError
from deploy.targets.gke.kind import gke_target
from deploy.targets.gke.target import GkeTarget
from tests.deploy.targets.gke.conftest import ENV, TOKEN, Cloud, config_file, environment, wait_for
from tests.deploy.targets.kube.objects import single_pod
from tests.helpers import k8sdeploy

KEY = ("my-project", "europe-west1-b", "ms-auth")
FIREWALL = "k8sdeploy-ms-auth-staging-test-gateway"


@pytest.mark.parametrize(
    "message",
    [
        "Cluster is running incompatible operation {operation}.",
        "Operation {operation} is currently {doing} cluster {cluster}. Please wait and try again once it is done.",
        "A message GKE has not used yet about {operation}.",  # the ErrorInfo reason alone says it
    ],
)
def test_a_delete_during_another_operation_waits_for_it_then_deletes(
    cloud: Cloud, target: GkeTarget, said: list[str], message: str
) -> None:
    """Before: only the first message was known; the others ended `down` with exit 8 and the cluster left."""
    target.cluster.ensure()
    cloud.gke.busy_messages = itertools.cycle([message])
    cloud.gke.upgrade(KEY)  # someone upgrades the control plane: the cluster stays RUNNING meanwhile
    cloud.gke.done_after = 6
    assert target.down()[-1] == "cluster ms-auth"
    assert any("runs another operation" in line for line in said)
    assert cloud.gke.clusters == {}


def test_a_cluster_whose_create_failed_is_reported_and_deleted_by_gke(cloud: Cloud, target: GkeTarget) -> None:
    """Before: the next `up` stopped at 'cluster ms-auth is ERROR ... delete it with k8sdeploy down', which GKE was
    doing already."""
    cloud.gke.fail_next = "Insufficient regional quota to satisfy request: resource 'CPUS'"
    with pytest.raises(CloudError, match="GKE deletes the failed cluster"):
        target.cluster.ensure()
    assert cloud.gke.clusters[KEY]["status"] == "ERROR"
    with pytest.raises(CloudError) as caught:
        target.cluster.ensure()  # the next `up`: it waits for GKE to delete it, and says why it failed
    assert str(caught.value).startswith(
        "cluster ms-auth failed and was deleted by GKE: Insufficient regional quota to satisfy request"
    )
    assert cloud.gke.clusters == {}
    assert target.cluster.ensure().status.name == "RUNNING"  # the cause fixed: created anew


def test_down_of_a_cluster_in_error_waits_for_gke_to_delete_it(cloud: Cloud, target: GkeTarget) -> None:
    cloud.gke.fail_next = "Insufficient regional quota"
    with pytest.raises(CloudError):
        target.cluster.ensure()
    mark = cloud.mark()
    assert target.down() == ("cluster ms-auth",)
    assert ("DELETE", "/v1/projects/my-project/locations/europe-west1-b/clusters/ms-auth") not in cloud.mutations(mark)


def test_a_failed_firewall_operation_changes_nothing(cloud: Cloud, target: GkeTarget) -> None:
    """Compute applies a change when its operation is DONE, and not at all when it fails (before: the fake applied
    it at once, so a failed insert left a rule)."""
    cloud.compute.fail_next = "Quota 'FIREWALLS' exceeded.  Limit: 100.0 globally."
    with pytest.raises(CloudError, match="Quota 'FIREWALLS' exceeded"):
        target.apply(single_pod(ENV))
    assert ("firewalls", "global", FIREWALL) not in cloud.compute.resources
    target.apply(single_pod(ENV))  # run again: it is created
    assert ("firewalls", "global", FIREWALL) in cloud.compute.resources


def test_an_insert_whose_answer_was_lost_is_sent_again_and_applied_once(cloud: Cloud, target: GkeTarget) -> None:
    """The insert carries a requestId, the same on its retry: Compute answers the first operation again (before:
    no requestId; the retry met 409 and ensure() read, inserted and met 409 again without waiting)."""
    target.cluster.ensure()
    cloud.compute.lose_next["POST"] = 1  # acted on, its answer lost
    assert target.firewall.ensure({8080}) == "created"
    inserts = [i for i, (method, _) in enumerate(cloud.compute.requests) if method == "POST"]
    assert len(inserts) == 2
    ids = {cloud.compute.queries[i].get("requestId") for i in inserts}
    assert len(ids) == 1 and None not in ids
    assert [op["operationType"] for op in cloud.compute.operations.values()] == ["insert"]


def test_an_insert_under_way_elsewhere_is_waited_for(cloud: Cloud, target: GkeTarget, said: list[str]) -> None:
    """Another run's insert of the same rule is not DONE yet: ours answers 409, waits for it to land, then makes
    the rule what this environment wants."""
    target.cluster.ensure()
    other = requests.post(
        f"http://{cloud.compute.address}/compute/v1/projects/my-project/global/firewalls",
        json={"name": FIREWALL, "network": "global/networks/default", "sourceRanges": ["10.0.0.0/8"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert other.json()["status"] == "PENDING"
    assert target.firewall.ensure({8080}) == "updated"
    assert any("is being created elsewhere; waiting" in line for line in said)
    assert cloud.compute.resources[("firewalls", "global", FIREWALL)]["sourceRanges"] == ["0.0.0.0/0"]


def test_a_network_the_project_lacks_is_refused_before_anything_is_created(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Projects under the compute.skipDefaultNetworkCreation policy have no `default` network (before: the
    firewall rule named global/networks/default, after the images were pushed and the cluster created)."""
    monkeypatch.setattr(clients, "google_apis", cloud.apis)
    cloud.compute.networks = {"auth-vpc"}
    result = k8sdeploy("up", env=ENV, config=config_file(tmp_path / "k.toml", cloud.namespace))
    assert result.exit_code == 2, result.stderr
    assert "project my-project has no VPC network 'default'; set network in [environments.staging-test.gke]" in (
        result.stderr
    )
    assert cloud.gke.mutating_requests() == [] and cloud.compute.mutating_requests() == []


def test_the_configured_network_is_the_clusters_and_the_rules(cloud: Cloud, said: list[str]) -> None:
    cloud.compute.networks = {"auth-vpc"}
    target = gke_target(environment(cloud.namespace, network="auth-vpc"), said.append, cloud.apis())
    target.firewall.check_network()
    target.apply(single_pod(ENV))
    assert cloud.gke.clusters[KEY]["network"] == "auth-vpc"
    assert cloud.compute.resources[("firewalls", "global", FIREWALL)]["network"] == "global/networks/auth-vpc"


def test_a_local_traffic_service_gets_its_own_health_check_which_the_audit_finds(
    cloud: Cloud, target: GkeTarget
) -> None:
    """externalTrafficPolicy Local (the gateway's, so the login limit sees each client): GKE makes a health check
    of the Service's own on its healthCheckNodePort, with a firewall rule, not the cluster's shared node check
    (before: the fake made the shared one, a case the gateway never has)."""
    objects = single_pod(ENV)
    objects[0]["spec"]["externalTrafficPolicy"] = "Local"
    target.apply(objects)
    service = cloud.kube.get("services", "gateway")
    name = "a" + service["metadata"]["uid"].replace("-", "")[:31]
    wait_for(lambda: ("httpHealthChecks", "global", name) in cloud.compute.resources, timeout=120)
    check = cloud.compute.resources[("httpHealthChecks", "global", name)]
    assert check["port"] == service["spec"]["healthCheckNodePort"]
    assert ("firewalls", "global", f"k8s-{name}-http-hc") in cloud.compute.resources
    assert not [n for n in cloud.compute.names("httpHealthChecks") if n.endswith("-node")]
    cloud.controller.leaks |= {name, f"k8s-{name}-http-hc"}  # its controller fails to delete them all
    target.cloud_timeout = 1
    with pytest.raises(LeftoversError) as caught:
        target.down()
    left = str(caught.value)
    assert f"httpHealthCheck global/{name}" in left and f"firewall global/k8s-{name}-http-hc" in left


def test_a_regional_cluster_is_shown_with_its_nodes_in_all_zones(cloud: Cloud, said: list[str]) -> None:
    target = gke_target(environment(cloud.namespace, location="europe-west1"), said.append, cloud.apis())
    (change, *_rest) = target.diff([])
    assert change.note == "3 nodes (1 per zone x 3 zones) of e2-small in europe-west1"
    target.cluster.ensure()
    assert any(
        line.startswith("creating cluster ms-auth in europe-west1 (3 nodes (1 per zone x 3 zones) of e2-small;")
        for line in said
    )
    assert cloud.gke.clusters[("my-project", "europe-west1", "ms-auth")]["currentNodeCount"] == 3


@pytest.mark.parametrize("api", ["gke", "compute"])
def test_an_operation_that_never_ends_is_given_up_naming_what_was_waited_for(cloud: Cloud, api: str) -> None:
    """Every wait on a Google operation ends at operation_timeout (before: GKE's and Compute's were waited for
    without end)."""
    target = gke_target(environment(cloud.namespace, operation_timeout=0.2), lambda _line: None, cloud.apis())
    if api == "compute":
        target.cluster.ensure()
        cloud.compute.done_after = 10**9
        waited = r"opening the gateway's ports in firewall rule k8sdeploy-ms-auth-staging-test-gateway \(operation "
    else:
        cloud.gke.done_after = 10**9
        waited = r"creating cluster ms-auth \(operation operation-1-create_cluster\)"
    with pytest.raises(CloudError, match=rf"^gave up after 0\.2 s waiting for {waited}") as caught:
        target.apply(single_pod(ENV))
    assert caught.value.exit_code == 8 and "raise operation_timeout in [environments.staging-test.gke]" in str(
        caught.value
    )


def test_a_degraded_cluster_is_warned_about_and_deployed_to(cloud: Cloud, target: GkeTarget, said: list[str]) -> None:
    """DEGRADED: GKE asks for an action, and the cluster still serves (before: `up` stopped, 'cluster ms-auth is
    DEGRADED ... wait for it to finish')."""
    target.cluster.ensure()
    cloud.gke.degrade(KEY, "The node service account was deleted.")
    target.apply(single_pod(ENV))
    assert (
        "warning: cluster ms-auth is DEGRADED (The node service account was deleted.); it still serves, so the "
        "deploy goes on: see the cluster's page in the console for the action GKE asks for" in said
    )
    assert cloud.kube.get("services", "gateway") is not None
    assert [row.name for row in target.status()][:1] == ["authentication"]
