"""The gke target through the real google-cloud-container, google-cloud-compute and kubernetes clients,
over HTTP against the fake GKE and Compute APIs, and over TLS against the real Kubernetes API server that
the fake GKE hands out as the cluster's endpoint."""

from __future__ import annotations

import pytest
from google.cloud import container_v1

from deploy.loopback import LocalSuite
from deploy.model.errors import CloudError, ConfigError, LeftoversError, NotReadyError
from deploy.smoke import HttpSmoke
from deploy.targets.gke.cluster import CLOUD_PLATFORM
from deploy.targets.gke.kind import gke_target
from deploy.targets.gke.target import GkeTarget
from tests.deploy.conftest import FAULT_SEEDS
from tests.deploy.targets.gke.conftest import ENV, NODES, Cloud, environment, wait_for
from tests.deploy.targets.kube.objects import single_pod, split_pods

FIREWALL = "k8sdeploy-ms-auth-staging-test-gateway"


def test_first_apply_creates_cluster_objects_and_firewall_then_a_second_changes_nothing(
    cloud: Cloud, target: GkeTarget, said: list[str], sqlite_suite: LocalSuite
) -> None:
    objects = single_pod(ENV)
    objects[0]["spec"]["ports"][0]["port"] = sqlite_suite.settings.base_port  # the LB address reaches the real suite
    target.apply(objects)
    cloud.controller.wait_idle()
    cluster = cloud.gke.clusters[("my-project", "europe-west1-b", "ms-auth")]
    assert cluster["status"] == "RUNNING" and cluster["resourceLabels"]["managed-by"] == "k8sdeploy"
    assert {k: cluster["nodeConfig"][k] for k in ("machineType", "tags")} == {
        "machineType": "e2-small",
        "tags": ["k8sdeploy-ms-auth"],
    }
    assert cluster["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert cluster["nodeConfig"]["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableIntegrityMonitoring": True,
    }
    assert (cluster["nodeConfig"]["serviceAccount"], cluster["nodeConfig"]["oauthScopes"]) == (NODES, [CLOUD_PLATFORM])
    assert cluster["networkConfig"] == {"datapathProvider": "ADVANCED_DATAPATH"}  # enforces the NetworkPolicies
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "my-project.svc.id.goog"}
    assert cluster["shieldedNodes"] == {"enabled": True} and cluster["ipAllocationPolicy"]["useIpAliases"]
    assert any(line.startswith("creating cluster ms-auth: running") for line in said)
    assert {(plural, name) for plural, name in cloud.kube.owned() if plural != "pods"} == {
        ("namespaces", cloud.namespace),
        ("configmaps", "gateway-conf"),
        ("deployments", "auth-suite"),
        ("services", "gateway"),
    }
    rule = cloud.compute.resources[("firewalls", "global", FIREWALL)]
    node_port = cloud.kube.get("services", "gateway")["spec"]["ports"][0]["nodePort"]
    assert rule["allowed"] == [
        {"IPProtocol": "tcp", "ports": sorted([str(sqlite_suite.settings.base_port), "8080", str(node_port)], key=int)}
    ]
    assert rule["targetTags"] == ["k8sdeploy-ms-auth"] and rule["sourceRanges"] == ["0.0.0.0/0"]
    target.wait(timeout=60)
    assert target.gateway_url() == f"http://127.0.0.1:{sqlite_suite.settings.base_port}"
    assert HttpSmoke().run(target.gateway_url()).checks
    mark = cloud.mark()
    result = target.apply(objects)
    assert cloud.mutations(mark) == []
    assert not result.changed


def test_status_names_the_cluster_and_the_address(cloud: Cloud, target, said: list[str]) -> None:  # noqa: ANN001
    assert target.status() == [] and said[-1] == "cluster ms-auth: none"
    target.apply(single_pod(ENV))
    target.wait(timeout=60)
    rows = target.status()
    assert [row.name for row in rows][:2] == ["authentication", "authorisation"] and all(r.ready for r in rows)
    assert said[-2].startswith("cluster ms-auth in europe-west1-b: RUNNING, endpoint 127.0.0.1:")
    assert said[-1] == "gateway: http://127.0.0.1:8080"


def test_down_deletes_load_balancers_first_claims_after_workloads_and_leaves_nothing(cloud: Cloud, target) -> None:  # noqa: ANN001
    target.apply(split_pods(ENV))
    wait_for(lambda: cloud.compute.names("forwardingRules") and cloud.compute.names("disks"))
    mark = cloud.kube.mark()
    removed = target.down()
    assert removed[0] == "Service/gateway" and removed[-4:] == (
        "PersistentVolumeClaim/person-data",
        f"Namespace/{cloud.namespace}",
        f"firewall rule {FIREWALL}",
        "cluster ms-auth",
    )
    deletes = [line for line in cloud.kube.mutations(mark) if line.startswith("delete ")]
    assert deletes[0] == "delete services/gateway" and deletes[-2:] == [
        "delete persistentvolumeclaims/person-data",
        f"delete namespaces/{cloud.namespace}",
    ]
    assert cloud.compute.everything() == [] and cloud.gke.clusters == {} and cloud.kube.owned() == []
    mark = cloud.mark()
    assert target.down() == ()
    assert cloud.mutations(mark) == []


def test_down_keep_cluster_keeps_only_the_cluster(cloud: Cloud) -> None:
    target = gke_target(environment(cloud.namespace), lambda _line: None, cloud.apis(), keep_cluster=True)
    target.apply(single_pod(ENV))
    cloud.controller.wait_idle()
    removed = target.down()
    assert "Service/gateway" in removed and "cluster ms-auth" not in removed
    assert list(cloud.gke.clusters) == [("my-project", "europe-west1-b", "ms-auth")]
    assert cloud.compute.everything() == [] and cloud.kube.owned() == []


def test_leftovers_are_reported_with_exit_7(cloud: Cloud, target) -> None:  # noqa: ANN001
    target.apply(single_pod(ENV))
    cloud.controller.wait_idle()
    uid = cloud.kube.get("services", "gateway")["metadata"]["uid"]
    leaked = "a" + uid.replace("-", "")[:31]
    cloud.controller.leaks.add(leaked)  # its controller fails to delete this Service's forwarding rule and pool
    target.cloud_timeout = 1  # how long down waits for them before it audits
    description = f'{{"kubernetes.io/service-name":"{cloud.namespace}/gateway"}}'  # another cluster's, same names
    cloud.compute.put("forwardingRules", "regions/europe-west1", {"name": "a" + "0" * 31, "description": description})
    cloud.compute.put("disks", "zones/europe-west1-b", {"name": "unrelated", "description": "someone else's"})
    with pytest.raises(LeftoversError) as caught:
        target.down()
    assert caught.value.exit_code == 7
    assert str(caught.value).startswith(
        "2 Compute resource(s) of environment staging-test are left: "
        f"forwardingRule regions/europe-west1/{leaked}, targetPool regions/europe-west1/"
        f"{leaked}; delete them"
    )
    assert cloud.gke.clusters == {}  # the rest went


def test_two_environments_in_one_cluster_do_not_report_each_other(cloud: Cloud, said: list[str]) -> None:
    """Each environment's down audits only its own load balancers, disks and firewall rule (before: by
    namespace and node tag, so the other environment's firewall rule, on the same tag, was a leftover)."""
    other = f"{cloud.namespace}-b"
    cloud.controller.namespaces.add(other)
    a = gke_target(environment(cloud.namespace), said.append, cloud.apis(), keep_cluster=True)
    b_environment = environment(other).model_copy(update={"name": "other-test"})
    b = gke_target(b_environment, said.append, cloud.apis(), keep_cluster=True)
    a.apply(split_pods(ENV))
    b.apply(split_pods("other-test"))
    cloud.controller.wait_idle()
    try:
        assert "Service/gateway" in a.down()
        assert cloud.compute.names("forwardingRules") and "k8sdeploy-ms-auth-other-test-gateway" in cloud.compute.names(
            "firewalls"
        )  # b's are there, and were not a's leftovers
        assert "Service/gateway" in b.down()
    finally:
        cloud.kube.session().delete(f"{cloud.kube.server}/api/v1/namespaces/{other}", timeout=10)
    assert not [name for name in cloud.compute.names("forwardingRules")]


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_thirty_percent_faults_converge(cloud: Cloud, target, seed: int) -> None:  # noqa: ANN001
    """30% of the requests to GKE, Compute and the API server answered 429 or 503, dropped, or acted on with the
    answer lost (a repeated create meets 409 and is read back)."""
    cloud.flaky(0.3, seed)
    target.apply(split_pods(ENV))
    target.wait(timeout=60)
    target.down()
    assert cloud.injected >= 20
    assert cloud.compute.everything() == [] and cloud.gke.clusters == {} and cloud.kube.owned() == []


def test_an_existing_cluster_with_other_settings_stops_the_deploy(cloud: Cloud, target) -> None:  # noqa: ANN001
    target.apply([])
    other = gke_target(environment(cloud.namespace, machine_type="e2-standard-4"), lambda _line: None, cloud.apis())
    with pytest.raises(
        ConfigError,
        match="cluster ms-auth exists with machine type e2-small "
        r"\(configured e2-standard-4\), which k8sdeploy cannot change",
    ):
        other.apply(single_pod(ENV))


def test_an_existing_cluster_that_enforces_no_policies_is_warned_about(
    cloud: Cloud,
    target,  # noqa: ANN001
    said: list[str],
) -> None:
    target.apply([])
    assert not any("does not enforce NetworkPolicies" in line for line in said)  # ours: Dataplane V2
    del cloud.gke.clusters[("my-project", "europe-west1-b", "ms-auth")]["networkConfig"]  # someone's older cluster
    target.apply([])
    assert (
        "warning: cluster ms-auth does not enforce NetworkPolicies (no Dataplane V2, no network policy add-on): "
        "the layout's policies are applied but not enforced" in said
    )


def test_a_cluster_k8sdeploy_did_not_create_is_kept(cloud: Cloud, target, said: list[str]) -> None:  # noqa: ANN001
    target.apply([])
    cloud.gke.clusters[("my-project", "europe-west1-b", "ms-auth")]["resourceLabels"] = {}
    target.down()
    assert "keeping cluster ms-auth: k8sdeploy did not create it" in said
    assert len(cloud.gke.clusters) == 1


def create_by_hand(target: GkeTarget) -> None:
    """A cluster created as the REST API is called with nothing but the basics (no scope, no account): an
    interrupted `up`'s, or what gcloud-less scripts make."""
    cluster = container_v1.Cluster(
        name="ms-auth",
        initial_node_count=1,
        resource_labels={"managed-by": "k8sdeploy"},
        node_config=container_v1.NodeConfig(machine_type="e2-small", tags=["k8sdeploy-ms-auth"]),
    )
    target.cluster.client.create_cluster(parent=target.cluster.parent, cluster=cluster)


def test_down_waits_for_a_cluster_still_being_created(cloud: Cloud, target, said: list[str]) -> None:  # noqa: ANN001
    """An interrupted `up` (or a test's clean-up) leaves a create running; GKE answers a delete then with 400
    FAILED_PRECONDITION 'Cluster is running incompatible operation' (before: that error, and the cluster left)."""
    create_by_hand(target)
    assert target.down()[-1] == "cluster ms-auth"
    assert any(line.endswith("is provisioning; waiting for that to finish") for line in said)
    assert cloud.gke.clusters == {}


def test_nodes_run_as_the_configured_service_account(cloud: Cloud, said: list[str]) -> None:
    account = "k8sdeploy-nodes@my-project.iam.gserviceaccount.com"
    target = gke_target(environment(cloud.namespace, node_service_account=account), said.append, cloud.apis())
    target.cluster.ensure()
    node = cloud.gke.clusters[("my-project", "europe-west1-b", "ms-auth")]["nodeConfig"]
    assert (node["serviceAccount"], node["oauthScopes"]) == (
        account,
        ["https://www.googleapis.com/auth/cloud-platform"],
    )
    assert not any(line.startswith("note: the nodes run as") for line in said)


def test_nodes_without_a_scope_cannot_pull_from_artifact_registry(cloud: Cloud, target: GkeTarget) -> None:
    """The API adds no scope when none is given (gcloud does): such a cluster's pods wait in ImagePullBackOff."""
    create_by_hand(target)
    assert "oauthScopes" not in cloud.gke.clusters[("my-project", "europe-west1-b", "ms-auth")]["nodeConfig"]
    target.apply(single_pod(ENV))
    with pytest.raises(NotReadyError, match="nginx-lua, person, session is failing") as caught:
        target.wait(timeout=180)  # a failing container ends the wait at once
    assert "ImagePullBackOff" in caught.value.details


def test_the_default_node_account_when_chosen_gets_the_scope_and_pulls(cloud: Cloud, said: list[str]) -> None:
    cloud.gke.default_account_roles = True  # an older organisation: the default account has its roles
    settings = {"node_service_account": "", "default_node_account": True}
    target = gke_target(environment(cloud.namespace, **settings), said.append, cloud.apis())
    target.apply(single_pod(ENV))
    node = cloud.gke.clusters[("my-project", "europe-west1-b", "ms-auth")]["nodeConfig"]
    assert (node["serviceAccount"], node["oauthScopes"]) == ("default", [CLOUD_PLATFORM])
    assert any(line.startswith("note: the nodes run as the project's Compute Engine default") for line in said)
    target.wait(timeout=60)


def test_a_node_service_account_that_does_not_exist_is_named(cloud: Cloud, said: list[str]) -> None:
    account = "nobody@my-project.iam.gserviceaccount.com"
    target = gke_target(environment(cloud.namespace, node_service_account=account), said.append, cloud.apis())
    with pytest.raises(CloudError, match=f'Service account "{account}" does not exist'):
        target.cluster.ensure()
