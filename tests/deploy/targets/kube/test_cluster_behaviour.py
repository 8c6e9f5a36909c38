"""What real clusters do that the old fake API server did not, each against the real control plane:
claims protected while pods use them, claims made from StatefulSet templates, rollouts observed before
their pods exist, namespaces that stay Terminating, the API server's own 422s and defaulted fields, and
TLS failures. Each test failed before the change it came with."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from deploy.model.errors import CloudError, NotReadyError
from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.deploy.targets.kube.conftest import ENV, identity_secrets
from tests.deploy.targets.kube.objects import (
    RESTRICTED_CONTAINER,
    deployment,
    gateway_service,
    labels,
    single_pod,
    split_pods,
)


def with_claim(objects: list[dict], workload: str, claim: str) -> list[dict]:
    """`workload`'s pod mounts the claim `claim` (as the sqlite split-pods layout does)."""
    objects = copy.deepcopy(objects)
    for obj in objects:
        if obj["metadata"]["name"] == workload and obj["kind"] in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
            pod["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return objects


def with_claim_template(objects: list[dict]) -> list[dict]:
    """person as a StatefulSet with a claim template, labelled as the render labels it (no version)."""
    objects = copy.deepcopy(objects)
    person = next(o for o in objects if o["kind"] == "StatefulSet")
    template_labels = {k: v for k, v in labels(ENV, "person").items() if k != "app.kubernetes.io/version"}
    person["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "data", "labels": template_labels},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    ]
    person["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return objects


def test_down_deletes_claims_after_the_pods_that_use_them(
    target: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    """A claim in use keeps kubernetes.io/pvc-protection until its pods are gone (before: claims were deleted
    first and waited for, so down stalled until its timeout)."""
    target.apply(with_claim(split_pods(ENV, "NodePort"), "session", "person-data"))
    target.wait(timeout=60)
    assert "kubernetes.io/pvc-protection" in kube.get("persistentvolumeclaims", "person-data")["metadata"]["finalizers"]
    target.teardown.timeout = 30
    removed = target.down(volumes=True)
    assert removed.index("Deployment/session") < removed.index("PersistentVolumeClaim/person-data")
    assert removed[-1] == f"Namespace/{kube.namespace}" and kube.owned() == []


def test_claims_of_a_statefulset_template_survive_ups_and_a_layout_round_trip(
    target: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    """The StatefulSet's claim carries the template's labels, which match the prune selector (before: each
    apply deleted it, and the data with it)."""
    split = with_claim_template(split_pods(ENV, "NodePort"))
    target.apply(split)
    target.wait(timeout=60)
    uid = kube.get("persistentvolumeclaims", "data-person-0")["metadata"]["uid"]
    target.apply(split)
    target.apply(single_pod(ENV, "NodePort"))
    assert "kept PersistentVolumeClaim/person-data: it holds data (`k8sdeploy down --volumes` removes it)" in said
    target.apply(split)
    target.wait(timeout=60)
    assert kube.get("persistentvolumeclaims", "data-person-0")["metadata"]["uid"] == uid
    target.down(volumes=True)
    assert kube.owned() == []


def test_a_rollout_is_ready_only_when_the_new_pods_are(target: KubeTarget, kube: KubeCluster) -> None:
    """The new generation is observed before its pods exist (before: the old, ready pods passed the wait)."""
    objects = [
        gateway_service(ENV, "NodePort"),
        deployment(
            ENV,
            "frontend",
            [{"name": "frontend", "image": "example/frontend:1", "securityContext": RESTRICTED_CONTAINER}],
        ),
    ]
    target.apply(objects)
    target.wait(timeout=60)
    objects[1]["spec"]["template"]["spec"]["containers"][0]["image"] = "example/frontend:2"
    objects[1]["spec"]["template"]["spec"]["serviceAccountName"] = "missing"  # its pods can never be created
    target.apply(objects)
    with pytest.raises(NotReadyError, match=r"Deployment/frontend: 0 of 1 replicas updated"):
        target.readiness.wait(timeout=5)


def test_up_right_after_a_namespace_was_deleted_waits_for_it(
    target: KubeTarget, kube: KubeCluster, said: list[str]
) -> None:
    """A deleted namespace stays Terminating and refuses new objects with 403 (before: reported as a missing
    permission); a down while it terminates is a no-op that exits 0."""
    target.apply(split_pods(ENV, "NodePort"))
    kube.session().delete(f"{kube.server}/api/v1/namespaces/{kube.namespace}", timeout=10)
    assert kube.get("namespaces", kube.namespace)["metadata"].get("deletionTimestamp")
    target.down(volumes=True)  # exits as a down does: it waits for the namespace to go
    assert kube.get("namespaces", kube.namespace) is None
    target.apply(split_pods(ENV, "NodePort"))
    kube.session().delete(f"{kube.server}/api/v1/namespaces/{kube.namespace}", timeout=10)
    result = target.apply(single_pod(ENV, "NodePort"))
    assert f"namespace {kube.namespace} is still terminating (an earlier down); waiting for it to go" in said
    assert len(result.created) == 3
    target.wait(timeout=60)


def test_a_tls_failure_is_one_cloud_error(kube: KubeCluster, tmp_path: Path) -> None:
    """A certificate the kubeconfig's CA did not sign: one line, exit 8, at once (before: ten retries over three
    minutes, then 'cannot reach'; and without retries the client's ApiException with status 0, a traceback)."""
    path = kubeconfig_for(kube.cluster, tmp_path / "kubeconfig")
    config = yaml.safe_load(path.read_text())
    other_ca = kube.cluster.state / "pki/apiserver.crt"  # a certificate, but not the CA that signed the server's
    config["clusters"][0]["cluster"]["certificate-authority"] = str(other_ca)
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(
        CloudError, match=r"^no TLS connection to the Kubernetes API at https://127\.0\.0\.1:"
    ) as caught:
        KubeTarget(kubeconfig_api("test", path), kube.namespace, ENV).status()
    assert caught.value.exit_code == 8 and "\n" not in str(caught.value)


def test_what_cannot_be_patched_is_replaced(target: KubeTarget, kube: KubeCluster, said: list[str]) -> None:
    """The API server's own 422 for a StatefulSet ('updates to statefulset spec for fields other than ... are
    forbidden'), and a Deployment switched from RollingUpdate (whose rollingUpdate the server defaulted) to
    Recreate, as sqlite and mysql layouts switch."""
    objects = split_pods(ENV, "NodePort")
    target.apply(objects)
    person = next(o for o in objects if o["kind"] == "StatefulSet")
    uid = kube.get("statefulsets", "person")["metadata"]["uid"]
    person["spec"]["serviceName"] = "person-headless"
    assert target.apply(objects).replaced == ("StatefulSet/person",)
    assert any(line.startswith("replacing StatefulSet/person: ") and "are forbidden" in line for line in said)
    assert kube.get("statefulsets", "person")["metadata"]["uid"] != uid
    frontend = next(o for o in objects if o["metadata"]["name"] == "frontend" and o["kind"] == "Deployment")
    frontend["spec"]["strategy"] = {"type": "RollingUpdate"}
    target.apply(objects)
    assert kube.get("deployments", "frontend")["spec"]["strategy"]["rollingUpdate"]  # defaulted by the server
    frontend["spec"]["strategy"] = {"type": "Recreate"}
    assert target.apply(objects).updated == ("Deployment/frontend",)
    assert kube.get("deployments", "frontend")["spec"]["strategy"] == {"type": "Recreate"}
    target.wait(timeout=60)


def test_the_mysql_claim_of_the_real_render_survives_ups_and_a_layout_round_trip(
    target: KubeTarget, kube: KubeCluster
) -> None:
    """split-pods with MySQL as `render` makes it (its StatefulSet's claim template): up twice, to single-pod and
    back keep the same claim (its uid), and down --volumes leaves no object."""
    from deploy.model.environments import Environment
    from deploy.render.objects import render
    from tests.deploy.inputs import MYSQL_IMAGE, MYSQL_SECRET, VERSION, fake_images

    environment = Environment(
        name=ENV,
        target="kubeconfig",
        namespace=kube.namespace,
        layout="split-pods",
        database="mysql",
        mysql_image=MYSQL_IMAGE,
    )

    def objects(layout: str) -> tuple[dict, ...]:  # single-pod keeps SQLite: the environment says sqlite there
        chosen = environment if layout == "split-pods" else environment.model_copy(update={"database": "sqlite"})
        rendered = render(chosen, layout, fake_images(), VERSION, mysql_secret=MYSQL_SECRET).objects
        return (*rendered, *identity_secrets(kube.namespace))  # as `up` applies it: the parts' key Secrets too

    target.apply(objects("split-pods"))
    target.wait(timeout=90)
    claims = kube.list("persistentvolumeclaims")
    assert len(claims) == 1 and claims[0]["metadata"]["name"].endswith("-0")  # made from the template
    name, uid = claims[0]["metadata"]["name"], claims[0]["metadata"]["uid"]
    assert not target.apply(objects("split-pods")).changed
    target.apply(objects("single-pod"))
    target.wait(timeout=90)
    target.apply(objects("split-pods"))
    target.wait(timeout=90)
    assert kube.get("persistentvolumeclaims", name)["metadata"]["uid"] == uid
    target.down(volumes=True)
    assert kube.owned() == [] and kube.get("namespaces", kube.namespace) is None


@pytest.mark.parametrize("layout", ["single-pod", "split-pods"])
def test_each_services_claim_keeps_its_uid_through_up_of_the_next_version(
    layout: str, target: KubeTarget, kube: KubeCluster
) -> None:
    """The real render of both layouts with SQLite: a claim per service, each kept (same uid) when the next
    version replaces every pod, the pods replaced with Recreate (before: single-pod had emptyDir volumes, so
    every up of a new version started from empty databases)."""
    from dataclasses import replace

    from deploy.model.environments import Environment
    from deploy.render.objects import render
    from tests.deploy.inputs import VERSION, fake_images

    environment = Environment(name=ENV, target="kubeconfig", namespace=kube.namespace, layout=layout)

    def objects(version: str, salt: int) -> tuple[dict, ...]:
        images = {
            name: replace(image, tag=version, digest=f"sha256:{int(image.digest[7:], 16) + salt:064x}")
            for name, image in fake_images().items()
        }
        return (*render(environment, layout, images, version).objects, *identity_secrets(kube.namespace))

    target.apply(objects(VERSION, 0))
    target.wait(timeout=90)
    claims = {claim["metadata"]["name"]: claim["metadata"]["uid"] for claim in kube.list("persistentvolumeclaims")}
    assert set(claims) == {"authentication-data", "authorisation-data", "session-data", "person-data"}
    applied = target.apply(objects("1.4.1", 100))
    assert any(ref.startswith("Deployment/") for ref in applied.updated)  # every pod of the layout is replaced
    target.wait(timeout=90)
    assert {
        claim["metadata"]["name"]: claim["metadata"]["uid"] for claim in kube.list("persistentvolumeclaims")
    } == claims
    for workload in kube.list("deployments"):
        data = [v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"].endswith("-data")]
        assert all("persistentVolumeClaim" in volume for volume in data)
        if data:
            assert workload["spec"]["strategy"]["type"] == "Recreate"  # never two pods on one claim
    target.down(volumes=True)
    assert kube.owned() == []


def test_an_external_mysql_server_needs_its_secret_before_anything_is_applied(
    target: KubeTarget, kube: KubeCluster
) -> None:
    """mysql_server: k8sdeploy runs no server and makes no MySQL Secret; the services read their DATABASE_URL from
    the environment's own Secret, which must hold every service's key before the first object is applied."""
    from deploy.model.environments import Environment
    from deploy.model.errors import ConfigError
    from deploy.render.objects import render
    from tests.deploy.inputs import VERSION, fake_images

    environment = Environment(
        name=ENV,
        target="kubeconfig",
        namespace=kube.namespace,
        layout="split-pods",
        database="mysql",
        mysql_server={"address": "10.20.0.5:3306", "secret": "cloud-sql"},
    )
    objects = (*render(environment, "split-pods", fake_images(), VERSION).objects, *identity_secrets(kube.namespace))
    assert not [obj for obj in objects if obj["kind"] == "StatefulSet"]
    with pytest.raises(ConfigError) as refused:
        target.apply(objects)
    assert "Secret cloud-sql in namespace" in refused.value.message and "DATABASE_URL" in refused.value.message
    # nothing applied but the namespace, where the Secret is to be made
    assert kube.owned() == [("namespaces", kube.namespace)]
    url = "mysql://{0}:pw@10.20.0.5:3306/{0}"
    urls = {f"{name}-database-url": url.format(name) for name in ("session", "person")}
    kube.create("secrets", {"metadata": {"name": "cloud-sql"}, "stringData": urls})
    with pytest.raises(ConfigError) as lacking:
        target.apply(objects)
    assert "lacks authentication-database-url, authorisation-database-url" in lacking.value.message
    assert kube.owned() == [("namespaces", kube.namespace)]
    urls.update({f"{name}-database-url": url.format(name) for name in ("authentication", "authorisation")})
    kube.session().delete(f"{kube.server}/api/v1/namespaces/{kube.namespace}/secrets/cloud-sql", timeout=10)
    kube.wait_gone("secrets", "cloud-sql")
    kube.create("secrets", {"metadata": {"name": "cloud-sql"}, "stringData": urls})
    assert target.apply(objects).changed
    target.wait(timeout=90)
    target.down(volumes=True)
