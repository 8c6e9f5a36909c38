"""The IAM permissions each command of a gke environment uses, and the code path that uses each: one table, from
which `doctor` asks testIamPermissions, so a new call is a new row here or a test fails
(tests/deploy/targets/gke/test_gke_doctor.py compares the fakes' checked permissions with it).

Where the names come from: GKE's API methods and the Kubernetes API's resources as IAM permissions
(https://cloud.google.com/kubernetes-engine/docs/reference/api-permissions: `container.<resource>.<verb>`, where a
PATCH, server-side apply included, is `update` and a watch is `list`; a server-side apply that creates the object
needs `create` too); Compute's (https://cloud.google.com/compute/docs/reference/rest/v1, each method's
"Authorization" section: an aggregatedList needs the collection's `list`); Artifact Registry's
(https://cloud.google.com/artifact-registry/docs/access-control#permissions). IAM and the cluster's RBAC are
either-or inside the cluster: an identity given RBAC rights instead needs the Kubernetes rows only as RBAC."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from deploy.targets.kube import KINDS

WRITE = frozenset({"up", "promote"})  # promote applies as `up` does, with images copied rather than built
READ = WRITE | {"diff", "down"}
DOWN = frozenset({"down"})
DIFF = frozenset({"diff"})


@dataclass(frozen=True)
class Use:
    permission: str
    commands: frozenset[str]  # the commands whose code path calls it
    where: str  # that code path
    when: str = ""  # "": always; "create": the cluster is created; "artifact-registry": the registry is one


def uses(*rows: tuple[str, frozenset[str], str] | tuple[str, frozenset[str], str, str]) -> tuple[Use, ...]:
    return tuple(Use(*row) for row in rows)


GOOGLE = uses(
    # its answer carries the endpoint and CA the Kubernetes client is made of (cluster.py kube_api_for)
    ("container.clusters.list", READ, "cluster.py GkeCluster.find (clusters.list)"),
    ("container.clusters.create", WRITE, "cluster.py GkeCluster.create", "create"),
    ("container.operations.get", WRITE | DOWN, "cluster.py GkeCluster.follow", "create"),
    ("container.clusters.delete", DOWN, "cluster.py GkeCluster.delete"),
    ("compute.networks.get", WRITE, "firewall.py Firewall.check_network (the kit's preflight)"),
    ("compute.firewalls.get", READ, "firewall.py Firewall.current (ensure, change, delete)"),
    ("compute.firewalls.create", WRITE, "firewall.py Firewall.ensure (insert)"),
    ("compute.firewalls.update", WRITE, "firewall.py Firewall.ensure (patch)"),
    ("compute.globalOperations.get", WRITE | DOWN, "firewall.py Firewall.wait"),
    ("compute.firewalls.delete", DOWN, "firewall.py Firewall.delete"),
    ("compute.firewalls.list", DOWN, "leftovers.py Leftovers.find (firewalls.list)"),
    ("compute.httpHealthChecks.list", DOWN, "leftovers.py HttpHealthChecks.names"),
    *(
        (f"compute.{collection}.list", DOWN, "leftovers.py Leftovers.find (aggregatedList)")
        for collection in (
            "forwardingRules",
            "targetPools",
            "backendServices",
            "healthChecks",
            "networkEndpointGroups",
            "disks",
        )
    ),
    ("artifactregistry.repositories.get", WRITE, "artifact_registry.py ArtifactRepository.find", "artifact-registry"),
    (
        "artifactregistry.repositories.create",
        WRITE,
        "artifact_registry.py ArtifactRepository.create, ensure_signatures (a missing repository)",
        "artifact-registry",
    ),
    (
        "artifactregistry.repositories.update",
        WRITE,
        "artifact_registry.py ArtifactRepository.keep_released (the cleanup policy)",
        "artifact-registry",
    ),
    (
        "artifactregistry.repositories.uploadArtifacts",
        WRITE,
        "registry/client.py RegistryClient uploads (publish, promote's copy, signatures)",
        "artifact-registry",
    ),
    (
        "artifactregistry.repositories.downloadArtifacts",
        WRITE | DIFF,
        "registry/client.py RegistryClient reads (digests asked after, verify)",
        "artifact-registry",
    ),
)
# on the nodes' service account, not the project: clusters.create runs the nodes as it (api-permissions page)
ACT_AS = Use("iam.serviceAccounts.actAs", WRITE, "cluster.py GkeCluster.create (the nodes' account)", "create")


def kube(resource: str, verbs: Iterable[str], commands: frozenset[str], where: str) -> tuple[Use, ...]:
    return tuple(Use(f"container.{resource}.{verb}", commands, where) for verb in verbs)


# The managed kinds' IAM names (api-permissions: the resource's plural in lower camel case)
RESOURCES = {
    "Namespace": "namespaces",
    "ConfigMap": "configMaps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "persistentVolumeClaims",
    "Service": "services",
    "PodDisruptionBudget": "podDisruptionBudgets",
    "Deployment": "deployments",
    "StatefulSet": "statefulSets",
    "Pod": "pods",
    "NetworkPolicy": "networkPolicies",
}

# What the Kubernetes target reads and writes beside the rendered objects
KUBERNETES = (
    *kube("namespaces", ("get",), READ, "kube/client.py (the namespace looked for)"),
    *kube("namespaces", ("create", "update"), WRITE, "kube/client.py (the namespace applied)"),
    *kube("namespaces", ("delete",), DOWN, "kube/teardown.py remove_namespace"),
    *kube("leases", ("get", "create", "update"), WRITE | DOWN, "kube/lease.py KubeLease"),
    *kube("configMaps", ("get",), READ, "kube/history.py (the release history)"),
    *kube("configMaps", ("create", "update"), WRITE, "kube/history.py (a release recorded)"),
    *kube("secrets", ("get", "create", "update"), WRITE, "kube/users.py, kube/identity.py"),
    *kube("pods", ("list",), WRITE | DOWN, "kube/wait.py, kube/teardown.py"),
    *kube("pods", ("getLogs",), WRITE, "kube/wait.py (a failing service's log)"),
    *kube("events", ("list",), WRITE, "kube/wait.py (a failing pod's events)"),
    *kube("replicaSets", ("list",), WRITE, "kube/wait.py (a Deployment's revisions)"),
    *kube("daemonSets", ("list",), WRITE, "kube/policy.py (who enforces NetworkPolicies)"),
    *kube("jobs", ("get", "create", "delete"), WRITE, "kube/oneoff.py (a schema downgrade on rollback)"),
)


def rendered(objects: Iterable[dict], command: str) -> tuple[Use, ...]:
    """The managed kinds' permissions (kube/__init__.py KINDS). `up` and `promote` list and may prune every kind
    (a layout switch removes the old layout's objects) and get, create and update the rendered ones; `diff` lists
    every kind but Namespaces and Secrets (it compares what it may not dry-run client-side, names the Secrets as
    not compared, and the namespace it gets is a row of KUBERNETES); `down` lists and deletes every kind."""
    kinds = {obj.get("kind", "") for obj in objects}
    found: list[Use] = []
    for kind in KINDS:
        resource, where = RESOURCES[kind.kind], f"kube/apply.py, kube/diff.py ({kind.kind} objects)"
        if command == "diff":
            verbs: tuple[str, ...] = () if kind.kind in ("Namespace", "Secret") else ("list",)
        elif command == "down":
            verbs = ("list", "delete")
        else:
            verbs = ("list", "delete", *(("get", "create", "update") if kind.kind in kinds else ()))
        found += kube(resource, verbs, frozenset({command}), where)
    return tuple(found)


def needed(command: str, objects: Iterable[dict], creating: bool, artifact_registry: bool) -> tuple[Use, ...]:
    """The project-level permissions `command` uses for these rendered objects (actAs, on the nodes' account, is
    ACT_AS), each once, in the table's order."""
    skipped = {"create": not creating, "artifact-registry": not artifact_registry}
    found: dict[str, Use] = {}
    for use in (*GOOGLE, *KUBERNETES, *rendered(objects, command)):
        if command in use.commands and not skipped.get(use.when, False):
            found.setdefault(use.permission, use)
    return tuple(found.values())


# The predefined roles that hold a permission, for the fix of a missing one (iam/docs/roles-permissions/*)
ROLES = {
    "container.": "roles/container.admin (or roles/container.developer inside the cluster)",
    "compute.firewalls.": "roles/compute.securityAdmin",
    "compute.networks.": "roles/compute.networkViewer",
    "compute.globalOperations.": "roles/compute.securityAdmin",
    "compute.": "roles/compute.viewer",
    "artifactregistry.": "roles/artifactregistry.writer (roles/artifactregistry.admin to create repositories)",
}
DIFF_ROLES = {
    "container.": "roles/container.viewer",
    "compute.": "roles/compute.networkViewer",
    "artifactregistry.": "roles/artifactregistry.reader",
}


def roles_for(permissions: Iterable[str], command: str) -> list[str]:
    """The predefined roles that would grant `permissions` (the first matching prefix of each), in order."""
    table = DIFF_ROLES if command == "diff" else ROLES
    found: dict[str, None] = {}
    for permission in permissions:
        found.setdefault(next((role for prefix, role in table.items() if permission.startswith(prefix)), ""), None)
    return [role for role in found if role]
