"""What keeps the suite serving while it changes and while the cluster works on its nodes, in every rendered
layout: requests and limits of each resource a node can run out of, a budget and spread constraints for every
part of two replicas or more, rolling updates that start a replacement before an old pod stops, and a stop that
first leaves the Service's endpoints and then drains within the pod's grace period."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deploy.model.environments import Environment
from deploy.model.suite import DRAIN_SECONDS, GATEWAY_STOP_SIGNAL, PRE_STOP_SECONDS
from deploy.render.objects import Rendered, render
from tests.deploy.inputs import MYSQL_IMAGE, MYSQL_SECRET, VARIANTS, VERSION, fake_images, of_kind, pod_templates

RESOURCES = ("cpu", "memory", "ephemeral-storage")
SPREAD_KEYS = ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]


def quantity(text: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    return float(text)


def production(**changes: object) -> Environment:
    environment, _ = VARIANTS["split-pods-mysql"]
    return environment.model_copy(update={"replicas": {}, **changes})


def rendered_production(environment: Environment | None = None, images: dict | None = None) -> Rendered:
    return render(
        environment or production(), "split-pods", images or fake_images(), VERSION, mysql_secret=MYSQL_SECRET
    )


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Rendered:
    environment, layout = VARIANTS[request.param]
    return render(environment, layout, fake_images(), VERSION, mysql_secret=MYSQL_SECRET)


def test_every_container_requests_and_limits_cpu_memory_and_ephemeral_storage(variant: Rendered) -> None:
    for workload, template in pod_templates(variant.objects):
        for container in template["spec"]["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            assert set(RESOURCES) <= set(requests) & set(limits), where
            for resource in RESOURCES:
                assert 0 < quantity(requests[resource]) <= quantity(limits[resource]), (where, resource)


def test_every_part_of_two_replicas_or_more_has_a_budget_and_spreads(variant: Rendered) -> None:
    budgets = of_kind(variant.objects, "PodDisruptionBudget")
    for workload, template in pod_templates(variant.objects):
        name, replicas = workload["metadata"]["name"], workload["spec"]["replicas"]
        if workload["kind"] == "StatefulSet":  # the database server: one, where its claim is
            assert name not in budgets and "topologySpreadConstraints" not in template["spec"], name
            continue
        spread = template["spec"]["topologySpreadConstraints"]  # on every Deployment: scaling restarts no pod
        if replicas < 2:
            assert name not in budgets, name  # one replica: a budget of 1 unavailable would guard nothing
        else:
            budget = budgets[name]["spec"]
            assert budget["maxUnavailable"] == 1 and budget["selector"] == workload["spec"]["selector"], name
            assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert [constraint["topologyKey"] for constraint in spread] == SPREAD_KEYS, name
        for constraint in spread:
            assert constraint["labelSelector"] == workload["spec"]["selector"], name
            assert constraint["maxSkew"] == 1 and constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    assert set(budgets) <= {w["metadata"]["name"] for w, _ in pod_templates(variant.objects)}


def test_every_pod_leaves_its_endpoints_then_drains_within_its_grace(variant: Rendered) -> None:
    for workload, template in pod_templates(variant.objects):
        spec = template["spec"]
        for container in spec["containers"]:
            assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": PRE_STOP_SECONDS}}, container["name"]
        assert spec["terminationGracePeriodSeconds"] > PRE_STOP_SECONDS + DRAIN_SECONDS, workload["metadata"]["name"]
        services = [c for c in spec["containers"] if c["name"] not in ("nginx-lua", "mysql")]
        for container in services:
            drain = [v["value"] for v in container["env"] if v["name"] == "DRAIN_SECONDS"]
            assert drain == [str(DRAIN_SECONDS)], container["name"]


def test_the_gateway_quits_gracefully_within_the_drain() -> None:
    rendered = render(*VARIANTS["split-pods"], fake_images(), VERSION)
    conf = of_kind(rendered.objects, "ConfigMap")["nginx-lua-conf"]["data"]["nginx.conf"]
    assert f"worker_shutdown_timeout {DRAIN_SECONDS}s;" in conf
    assert GATEWAY_STOP_SIGNAL == "SIGQUIT"  # nginx's graceful quit; the image carries it (tests/deploy/builders)


def test_with_a_database_server_every_part_rolls_with_two_replicas_or_more() -> None:
    rendered = rendered_production()
    deployments = of_kind(rendered.objects, "Deployment")
    assert len(deployments) == 6
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] >= 2, name
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }, name
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert not [v for v in volumes if "persistentVolumeClaim" in v], name  # its data is in the server
    [server] = of_kind(rendered.objects, "StatefulSet").values()
    assert server["spec"]["replicas"] == 1 and server["spec"]["volumeClaimTemplates"]
    assert len(of_kind(rendered.objects, "PodDisruptionBudget")) == 6
    scaled = rendered_production(production(replicas={"frontend": 4}))
    assert of_kind(scaled.objects, "Deployment")["frontend"]["spec"]["replicas"] == 4


def test_the_database_server_changes_only_with_its_own_image() -> None:
    """A new version of the suite (other images, another version label) leaves the server's pods as they are."""
    before = of_kind(rendered_production().objects, "StatefulSet")["mysql"]
    images = {name: replace(image, digest="sha256:" + "c" * 64) for name, image in fake_images().items()}
    next_version = render(production(), "split-pods", images, "2.0.0", mysql_secret=MYSQL_SECRET)
    assert of_kind(next_version.objects, "StatefulSet")["mysql"]["spec"] == before["spec"]
    other = rendered_production(production(mysql_image=MYSQL_IMAGE.replace("@sha256:", "-other@sha256:")))
    assert of_kind(other.objects, "StatefulSet")["mysql"]["spec"] != before["spec"]


def test_without_a_database_server_the_parts_that_keep_data_are_recreated() -> None:
    rendered = render(*VARIANTS["split-pods"], fake_images(), VERSION)
    for name, deployment in of_kind(rendered.objects, "Deployment").items():
        claims = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
        assert deployment["spec"]["strategy"]["type"] == ("Recreate" if claims else "RollingUpdate"), name
