"""`k8sdeploy diff` as the preview's read-only identity on the real API server: a ServiceAccount bound to a
ClusterRole of exactly the rules of docs/preview-rbac.yaml (get and list of the kinds k8sdeploy manages, no
Secrets, no writes), its token from the TokenRequest API in a kubeconfig of its own. The API server refuses it
every dry run (it authorizes a dry run as the write), so diff compares client-side and says so: before any
deploy everything is `create`; after an admin `up` nothing is to change (exit 0: no false update), the Secrets
named as not compared; after a change exit 1, naming the changed object and field; a hand edit is drift taken
back, as the dry run says it. Without any one of the documented rules diff names what it could not read: the
documented permissions are exactly what it needs. docs/targets.md's IAM list is those rules in IAM's names."""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from deploy.model.environments import Environment
from deploy.render.objects import render
from deploy.targets.kube import DEPLOYMENT, KINDS, describe, kind_of, readonly
from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.deploy.conftest import clone
from tests.deploy.targets.kube.conftest import ENV as TARGET_ENV
from tests.deploy.targets.kube.conftest import identity_secrets, kubeconfig_environment
from tests.deploy.targets.kube.objects import single_pod
from tests.deploy.targets.kube.test_diff import kubectl_edit
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry

ROOT = Path(__file__).resolve().parents[4]
RBAC = ROOT / "docs/preview-rbac.yaml"
ENV = "preview-test"
LOCALLY = "compared client-side (not dry-run: no permission to patch)"
NO_SECRETS = "not compared: no permission to read Secrets"
# Google permissions beside the Kubernetes rules: the cluster's endpoint, the firewall rule, the registry
GOOGLE = {"container.clusters.list", "compute.firewalls.get", "artifactregistry.repositories.downloadArtifacts"}


def documented_rules() -> list[dict]:
    [role] = [doc for doc in yaml.safe_load_all(RBAC.read_text()) if doc["kind"] == "ClusterRole"]
    return role["rules"]


def grants(rules: list[dict]) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of each permission of `rules`."""
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def without(rules: list[dict], grant: tuple[str, str, str]) -> list[dict]:
    group, resource, verb = grant
    found = []
    for rule in rules:
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            rest = [r for r in rule["resources"] if r != resource]
            found += [{**rule, "resources": rest}] if rest else []
            verbs = [v for v in rule["verbs"] if v != verb]
            found += [{**rule, "resources": [resource], "verbs": verbs}] if verbs else []
        else:
            found.append(rule)
    return found


@dataclass
class Preview:
    """A ServiceAccount (in a namespace of its own) bound cluster-wide to a ClusterRole, as the docs bind it."""

    kube: KubeCluster
    name: str
    namespace: str
    kubeconfig: Path

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:preview"

    def grant(self, rules: list[dict]) -> None:
        """The ClusterRole's rules made `rules`, and waited for until the authorizer answers by them."""
        session, url = self.kube.session(), f"{self.kube.server}/apis/rbac.authorization.k8s.io/v1/clusterroles"
        answer = session.get(f"{url}/{self.name}", timeout=10)
        role = {**answer.json(), "rules": rules} if answer.status_code == 200 else {"metadata": {"name": self.name}}
        role.update(apiVersion="rbac.authorization.k8s.io/v1", kind="ClusterRole", rules=rules)
        answer = (session.put(f"{url}/{self.name}", json=role, timeout=10) if answer.status_code == 200 else
                  session.post(url, json=role, timeout=10))  # fmt: skip
        assert answer.status_code < 300, answer.text
        wanted = grants(rules)
        while {grant for grant in grants(documented_rules()) | wanted if self.allowed(grant)} != wanted:
            time.sleep(0.1)  # the authorizer's informer has not seen the change yet

    def allowed(self, grant: tuple[str, str, str]) -> bool:
        group, resource, verb = grant
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": self.user,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}"],
                "resourceAttributes": {"group": group, "resource": resource, "verb": verb,
                                       "namespace": self.kube.namespace},
            },
        }  # fmt: skip
        url = f"{self.kube.server}/apis/authorization.k8s.io/v1/subjectaccessreviews"
        answer = self.kube.session().post(url, json=review, timeout=10)
        assert answer.status_code < 300, answer.text
        return bool(answer.json()["status"].get("allowed"))


@pytest.fixture
def preview(kube: KubeCluster, tmp_path: Path) -> Iterator[Preview]:
    session, server = kube.session(), kube.server
    namespace, name = f"{kube.namespace}-sa", f"k8sdeploy-preview-{uuid.uuid4().hex[:8]}"
    rbac = f"{server}/apis/rbac.authorization.k8s.io/v1"

    def made(url: str, body: dict) -> dict:
        answer = session.post(url, json=body, timeout=10)
        assert answer.status_code < 300, answer.text
        return answer.json()

    made(f"{server}/api/v1/namespaces", {"metadata": {"name": namespace}})
    made(f"{server}/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "preview"}})
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "preview", "namespace": namespace}],
    }
    made(f"{rbac}/clusterrolebindings", binding)
    token = made(
        f"{server}/api/v1/namespaces/{namespace}/serviceaccounts/preview/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )["status"]["token"]
    found = Preview(kube, name, namespace, kubeconfig_for(kube.cluster, tmp_path / "preview-kubeconfig", token))
    found.grant(documented_rules())
    yield found
    for url in (
        f"{rbac}/clusterrolebindings/{name}",
        f"{rbac}/clusterroles/{name}",
        f"{server}/api/v1/namespaces/{namespace}",
    ):
        session.delete(url, timeout=10)


@pytest.fixture
def checkout(source_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clone of the suite's source, built with this test's own state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return str(clone(source_repo, tmp_path / "checkout"))


def objects_of(document: dict) -> dict[str, dict]:
    return {f"{obj['kind']}/{obj['name']}": obj for obj in document["objects"]}


def write_config(path: Path, kubeconfig: Path, registry: Registry, namespace: str, replicas: str = "") -> Path:
    extra = ['layout = "split-pods"', *([f"replicas = {replicas}"] if replicas else [])]
    path.write_text(kubeconfig_environment(ENV, kubeconfig, registry.host, namespace, *extra))
    return path


@pytest.mark.timeout(900)
def test_diff_as_the_read_only_preview_compares_client_side_and_names_what_it_cannot_read(
    kube: KubeCluster, kubeconfig: Path, preview: Preview, fresh_registry: Registry, checkout: str, tmp_path: Path
) -> None:
    admin = write_config(tmp_path / "admin.toml", kubeconfig, fresh_registry, kube.namespace)
    config = write_config(tmp_path / "preview.toml", preview.kubeconfig, fresh_registry, kube.namespace)

    def diff(*extra: str) -> tuple[int, dict]:
        found = k8sdeploy("diff", "--source", checkout, "--output", "json", *extra, env=ENV, config=config)
        assert found.exit_code in (0, 1), found.stderr
        return found.exit_code, valid(found.stdout)

    code, fresh = diff()
    assert code == 1 and {obj["action"] for obj in fresh["objects"]} == {"create"}
    assert objects_of(fresh)[f"Namespace/{kube.namespace}"]["action"] == "create"

    up = k8sdeploy("up", "--source", checkout, "--wait-timeout", "120", env=ENV, config=admin)
    assert up.exit_code == 0, up.stderr
    mark = kube.mark()
    code, same = diff()
    assert code == 0 and same["result"] == "no-change"
    assert {obj["kind"] for obj in same["objects"]} == {"Secret"}
    assert all(obj["action"] == "unknown" and obj["note"].startswith(NO_SECRETS) for obj in same["objects"])
    assert {"Secret/k8sdeploy-users", "Secret/k8sdeploy-identity", "Secret/*"} <= set(objects_of(same))
    text = k8sdeploy("diff", "--source", checkout, env=ENV, config=config)
    assert text.exit_code == 0 and f"unknown Secret/k8sdeploy-users ({NO_SECRETS})" in text.stdout.splitlines()

    write_config(config, preview.kubeconfig, fresh_registry, kube.namespace, replicas="{ frontend = 2 }")
    code, scaled = diff()
    changed = {ref: obj for ref, obj in objects_of(scaled).items() if obj["action"] != "unknown"}
    assert code == 1 and list(changed) == ["PodDisruptionBudget/frontend", "Deployment/frontend"]
    assert changed["PodDisruptionBudget/frontend"]["action"] == "create"  # a part of two replicas has one
    assert changed["Deployment/frontend"]["action"] == "update" and changed["Deployment/frontend"]["note"] == LOCALLY
    assert changed["Deployment/frontend"]["fields"] == [{"path": "spec.replicas", "old": 1, "new": 2}]

    kubectl_edit(kube, DEPLOYMENT, "authentication", {"spec": {"replicas": 3}})
    code, drifted = diff()
    edited = objects_of(drifted)["Deployment/authentication"]
    assert code == 1 and edited["action"] == "update" and edited["note"] == LOCALLY
    assert edited["fields"] == [{"path": "spec.replicas", "old": 3, "new": 1}]
    assert edited["drift"] == [{"manager": "kubectl-edit", "paths": ["spec.replicas"], "taken_back": True}]

    # the dry runs were asked for and refused; nothing else was written, by anyone
    assert kube.mutations(mark, user=preview.user) == []
    assert set(kube.mutations(mark, user=preview.user, dry_runs=True)) == {
        "patch deployments/frontend",
        "patch poddisruptionbudgets/frontend",
        "patch deployments/authentication",
    }
    assert k8sdeploy("down", "--yes", "--volumes", env=ENV, config=admin).exit_code == 0


def test_each_documented_rule_is_needed(kube: KubeCluster, kubeconfig: Path, preview: Preview, said: list[str]) -> None:
    """With all the rules only the Secrets are not compared; without any one, diff names the kind it lacks."""
    objects = [*single_pod(TARGET_ENV, "NodePort"), *identity_secrets(kube.namespace)]
    KubeTarget(kubeconfig_api("test", kubeconfig), kube.namespace, TARGET_ENV, said.append).apply(objects)

    def unknown() -> set[str]:
        target = KubeTarget(kubeconfig_api("test", preview.kubeconfig), kube.namespace, TARGET_ENV, said.append)
        changes = target.diff(objects)
        assert [change.ref for change in changes if change.changed] == []
        return {change.kind for change in changes if change.action == "unknown"}

    assert unknown() == {"Secret"}
    plural = {kind.plural: kind.kind for kind in KINDS}
    rules = documented_rules()
    for grant in sorted(grants(rules) - {("", "configmaps", "get")}):  # the history's: the next test
        preview.grant(without(rules, grant))
        assert unknown() == {"Secret", plural[grant[1]]}, grant


@pytest.mark.timeout(900)
def test_without_reading_configmaps_the_release_history_is_named(
    kube: KubeCluster, preview: Preview, fresh_registry: Registry, checkout: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "preview.toml", preview.kubeconfig, fresh_registry, kube.namespace)
    preview.grant(without(documented_rules(), ("", "configmaps", "get")))
    found = k8sdeploy("diff", "--source", checkout, "--output", "json", env=ENV, config=config)
    assert found.exit_code == 1, found.stderr
    assert (
        "the release history could not be read (no permission): migrations not compared" in valid(found.stdout)["notes"]
    )


def iam_name(group: str, resource: str, verb: str) -> str:
    """GKE's IAM permission of a Kubernetes request: container.RESOURCE.VERB, the resource in camelCase."""
    camel = {
        "configmaps": "configMaps",
        "persistentvolumeclaims": "persistentVolumeClaims",
        "statefulsets": "statefulSets",
        "networkpolicies": "networkPolicies",
        "poddisruptionbudgets": "podDisruptionBudgets",
    }
    return f"container.{camel.get(resource, resource)}.{verb}"


def test_the_documented_iam_role_is_the_rbac_rules_and_the_cloud_reads() -> None:
    section = (ROOT / "docs/targets.md").read_text().partition("## The preview's permissions")[2]
    listed = re.search(r"```text\n(.*?)```", section, re.S)
    assert listed, "docs/targets.md's section on the preview's permissions has no permission list"
    permissions = listed.group(1).split()
    assert len(permissions) == len(set(permissions))
    assert set(permissions) == {iam_name(*grant) for grant in grants(documented_rules())} | GOOGLE
    assert "secrets" not in {resource for _, resource, _ in grants(documented_rules())}
    assert {verb for _, _, verb in grants(documented_rules())} <= {"get", "list"}


def edited(objects: tuple[dict, ...]) -> tuple[dict, ...]:
    """The render with a change of each sort: a count, a quantity, a list item and a label gone, data changed."""
    objects = copy.deepcopy(objects)
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            obj["spec"]["replicas"] = obj["spec"].get("replicas", 1) + 1
            for container in obj["spec"]["template"]["spec"]["containers"]:
                limits = container.get("resources", {}).get("limits", {})
                if "memory" in limits:
                    limits["memory"] = "300Mi"
                if container.get("env"):
                    container["env"] = container["env"][:-1]
        if obj["kind"] == "ConfigMap":
            obj["data"] = {**obj.get("data", {}), "added": "yes"}
        if obj["kind"] == "Service":
            obj["metadata"]["labels"].pop("app.kubernetes.io/version", None)
    return objects


@pytest.mark.parametrize("layout", ["single-pod", "split-pods"])
def test_client_side_comparison_says_what_the_dry_run_says(
    kube: KubeCluster, target: KubeTarget, preview: Preview, said: list[str], layout: str
) -> None:
    """The real layouts (MySQL for split-pods): unchanged, every object compared client-side finds nothing (the
    API server's defaults are no change); changed, it finds the fields the admin's dry run finds."""
    from tests.deploy.inputs import MYSQL_IMAGE, MYSQL_SECRET, VERSION, fake_images

    database = "mysql" if layout == "split-pods" else "sqlite"
    environment = Environment(
        name=TARGET_ENV, target="kubeconfig", namespace=kube.namespace, layout=layout, database=database,
        mysql_image=MYSQL_IMAGE,
    )  # fmt: skip
    rendered = render(environment, layout, fake_images(), VERSION, mysql_secret=MYSQL_SECRET).objects
    objects = (*rendered, *identity_secrets(kube.namespace))
    target.apply(objects)
    for obj in objects:
        prepared = target.applier.prepare(obj)
        live = target.applier.api.get(kind_of(prepared), kube.namespace, prepared["metadata"]["name"])
        assert live is not None
        assert readonly.changes(live, prepared, kind_of(prepared).kind == "Secret") == (), describe(obj)
        assert list(readonly.drift(live, prepared)) == [], describe(obj)

    changed = edited(objects)
    read_only = KubeTarget(kubeconfig_api("test", preview.kubeconfig), kube.namespace, TARGET_ENV, said.append)
    by_admin = {change.ref: change for change in target.diff(changed)}
    by_preview = {change.ref: change for change in read_only.diff(changed) if change.kind != "Secret"}
    assert {ref for ref, change in by_preview.items() if change.changed} >= {
        ref for ref in by_admin if ref.startswith(("Deployment/", "ConfigMap/", "Service/"))
    }
    for ref, change in by_preview.items():
        assert change.note in ("", LOCALLY), ref
        ours, theirs = set(map(repr, change.fields)), set(map(repr, by_admin[ref].fields))
        assert (change.action, ours - theirs, theirs - ours) == (by_admin[ref].action, set(), set()), ref
