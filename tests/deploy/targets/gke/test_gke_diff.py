"""The gke target's diff over the fake GKE and Compute APIs and the real API server: before the first apply the
cluster, every object and the firewall rule are `create`; after it nothing changes; other source ranges make
the rule an `update` naming that field. No request of any diff mutates GKE, Compute or the cluster."""

from __future__ import annotations

from deploy.targets.gke.kind import gke_target
from deploy.targets.gke.target import GkeTarget
from tests.deploy.targets.gke.conftest import ENV, Cloud, environment
from tests.deploy.targets.kube.objects import single_pod

FIREWALL = "compute#firewall/k8sdeploy-ms-auth-staging-test-gateway"


def test_diff_of_a_new_then_a_running_environment(cloud: Cloud, target: GkeTarget, said: list[str]) -> None:
    objects = single_pod(ENV)
    mark = cloud.mark()
    planned = {change.ref: change for change in target.diff(objects)}
    assert cloud.mutations(mark) == [] and not cloud.gke.clusters
    assert planned["Cluster/ms-auth"].action == "create"
    assert {ref for ref in planned if ref.startswith(("Deployment/", "Service/"))} == {
        "Deployment/auth-suite",
        "Service/gateway",
    }
    assert {change.action for change in planned.values()} == {"create"}
    assert [(f.path, f.old) for f in planned[FIREWALL].fields] == [
        ("allowed", None),
        ("sourceRanges", None),
        ("targetTags", None),
    ]

    target.apply(objects)
    cloud.controller.wait_idle()
    mark = cloud.mark()
    running = target.diff(objects)
    assert cloud.mutations(mark) == []
    assert [change.ref for change in running if change.changed] == []
    assert FIREWALL in {change.ref for change in running}

    narrowed = gke_target(
        environment(cloud.namespace, source_ranges=("203.0.113.0/24",)), said.append, cloud.apis()
    ).diff(objects)
    [rule] = [change for change in narrowed if change.changed]
    assert (rule.ref, rule.action) == (FIREWALL, "update")
    assert [(f.path, f.old, f.new) for f in rule.fields] == [("sourceRanges[0]", "0.0.0.0/0", "203.0.113.0/24")]
    assert cloud.mutations(mark) == []
