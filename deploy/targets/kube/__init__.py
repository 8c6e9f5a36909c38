"""What the Kubernetes targets share: the kinds k8sdeploy applies (in order), and its ownership labels."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.model.errors import ApplyError

MANAGER = "k8sdeploy"  # the one server-side apply field manager
MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"  # the environment's name
NAME = "app.kubernetes.io/name"
APPLIED = "k8sdeploy.io/applied"  # annotation: digest of the manifest last applied


@dataclass(frozen=True)
class Resource:
    """A kind of Kubernetes object k8sdeploy reads or applies, and where the API serves it (not the target Kind
    of deploy/targets/kit.py)."""

    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str = "", name: str = "") -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{base}{scope}/{self.plural}" + (f"/{name}" if name else "")


NAMESPACE = Resource("Namespace", "v1", "namespaces", namespaced=False)
SERVICE = Resource("Service", "v1", "services")
PVC = Resource("PersistentVolumeClaim", "v1", "persistentvolumeclaims")
DEPLOYMENT = Resource("Deployment", "apps/v1", "deployments")
STATEFULSET = Resource("StatefulSet", "apps/v1", "statefulsets")
REPLICASET = Resource("ReplicaSet", "apps/v1", "replicasets")  # read only: a Deployment's revisions
POD = Resource("Pod", "v1", "pods")
NODE = Resource("Node", "v1", "nodes", namespaced=False)
EVENT = Resource("Event", "v1", "events")
SECRET = Resource("Secret", "v1", "secrets")

# The fixed order of apply; prune and teardown go in reverse.
KINDS: tuple[Resource, ...] = (
    NAMESPACE,
    Resource("ConfigMap", "v1", "configmaps"),
    SECRET,
    PVC,
    SERVICE,
    Resource("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
    DEPLOYMENT,
    STATEFULSET,
    POD,
    Resource("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
)


def kind_of(obj: dict) -> Resource:
    for kind in KINDS:
        if kind.kind == obj.get("kind") and kind.api_version == obj.get("apiVersion"):
            return kind
    known = ", ".join(f"{k.api_version} {k.kind}" for k in KINDS)
    raise ApplyError(
        f"k8sdeploy does not apply {obj.get('apiVersion')} {obj.get('kind')} objects",
        f"render only these kinds: {known}",
    )


def describe(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj['metadata']['name']}"


def owner_selector(env_name: str) -> str:
    return f"{MANAGED_BY}={MANAGER},{INSTANCE}={env_name}"


def owned_by(obj: dict, env_name: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == MANAGER and labels.get(INSTANCE) == env_name
