"""A faithful fake of the GKE API (container.googleapis.com v1 REST) subset k8sdeploy uses, on loopback.

Why a fake: GKE cannot be reached from these machines. Like the real API, clusters are listed, got,
created and deleted under projects/P/locations/L; create and delete answer an Operation that is PENDING,
then RUNNING, then DONE after a few polls of operations.get (or DONE with an error when a test asks);
a new cluster is PROVISIONING until its operation is done, then RUNNING with an endpoint and a CA
certificate - those of the real Kubernetes API server the tests run (tests/controlplane.py), whose
objects of the cluster's environment go when the cluster is deleted (`on_delete`; the load balancer
pieces in the fake Compute API do not: real GKE leaks them too). Unknown projects
answer 403 CONSUMER_INVALID, unknown locations 404, missing permissions 403, throttling 429/503.

A create is refused with 400 INVALID_ARGUMENT where GKE refuses the combination
(https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters):
the GKE metadata server (nodeConfig.workloadMetadataConfig.mode GKE_METADATA) without Workload Identity
(https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity: the pool is PROJECT.svc.id.goog);
Dataplane V2 (networkConfig.datapathProvider ADVANCED_DATAPATH) on a cluster that is not VPC-native
(https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2); a node service account that does
not exist in the project; no nodes (initialNodeCount below 1, "Cluster.initial_node_count must be greater than
zero."); a machine type it does not know. Every refusal comes at once, before any operation exists, and so does
a create beyond the project's regional quotas: 403 "Insufficient regional quota to satisfy request: resource
\"CPUS\" ..." for the nodes' CPUs, disks and addresses in all their zones (tests/fakes/gke_quota.py); a name
taken is 409 ALREADY_EXISTS (https://cloud.google.com/kubernetes-engine/docs/troubleshooting/cluster-quota;
https://cloud.google.com/apis/design/errors). Enums arrive as numbers (`$alt=json;enum-encoding=int`) or names.
A running cluster may turn DEGRADED (`degrade`): it still serves, and says why in statusMessage and conditions
(Cluster.Status reference: "requires user action to restore full functionality").

Node defaults as the API applies them, not as gcloud does
(https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/NodeConfig): `serviceAccount` "default" (the
Compute Engine default account) when none is given, and no `oauthScopes` at all ("If unspecified, no scopes are
added"). Nodes pull from Artifact Registry only with a scope that lets them
(https://cloud.google.com/artifact-registry/docs/access-control#compute: cloud-platform, cloud-platform.read-only
or devstorage.read_only) and an account with roles/artifactregistry.reader: `can_pull` says whether a cluster's
nodes could; the default account has no roles unless `default_account_roles` (organisations made since May 2024,
https://cloud.google.com/resource-manager/docs/organization-policy/restricting-service-accounts#disable_service_account_default_grants).
`on_create` is called with the cluster once it runs.

Operations (https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.operations;
https://cloud.google.com/kubernetes-engine/docs/troubleshooting/cluster-operations): one at a time per cluster;
another call meanwhile is refused with 400 FAILED_PRECONDITION, ErrorInfo reason CLUSTER_ALREADY_HAS_OPERATION,
in one of the messages GKE uses (`busy_messages`, taken in turn). A create that fails leaves the cluster in
ERROR with its status message, and GKE deletes it by itself a while later (`error_deleted_after` reads).
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable

from tests.fakes.gke_quota import RegionalQuota, node_locations
from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

LOC = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
PULL_SCOPES = {
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/cloud-platform.read-only",
    "https://www.googleapis.com/auth/devstorage.read_only",
}


class FakeGke(GoogleFake):
    service, title = "container.googleapis.com", "Kubernetes Engine API"

    def __init__(
        self,
        endpoint: str,
        ca_pem: bytes,
        on_create: Callable[[dict], None] = lambda _cluster: None,
        on_delete: Callable[[], None] = lambda: None,
        locations: tuple[str, ...] = ("europe-west1-b", "europe-west1"),
        done_after: int = 3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.endpoint = endpoint  # host:port of the cluster's API server
        self.ca_pem = ca_pem
        self.on_create = on_create
        self.on_delete = on_delete
        self.locations = set(locations)
        self.done_after = done_after
        self.clusters: dict[tuple[str, str, str], dict] = {}
        self.operations: dict[str, dict] = {}
        self.fail_next = ""  # an error for the next operation, e.g. a quota message
        self.quota = RegionalQuota()  # what a create may use of the project's regional quotas
        self.error_deleted_after = 3  # reads of the clusters before GKE deletes one in ERROR
        self.busy_messages = itertools.cycle(
            (
                "Cluster is running incompatible operation {operation}.",
                "Operation {operation} is currently {doing} cluster {cluster}. Please wait and try again once it "
                "is done.",
            )
        )
        self.service_accounts = {"k8sdeploy-nodes@my-project.iam.gserviceaccount.com"}  # with the reader role
        self.default_account_roles = False  # the Compute Engine default account has roles (older organisations)
        self.ids = itertools.count(1)
        self.route("GET", LOC + r"/clusters", self.list_clusters)
        self.route("POST", LOC + r"/clusters", self.create_cluster)
        self.route("GET", LOC + r"/clusters/(?P<cluster>[^/:]+)", self.get_cluster)
        self.route("DELETE", LOC + r"/clusters/(?P<cluster>[^/:]+)", self.delete_cluster)
        self.route("GET", LOC + r"/operations/(?P<operation>[^/]+)", self.get_operation)

    def where(self, request: Request, permission: str) -> tuple[str, str]:
        project, location = request.params["project"], request.params["location"]
        self.check(project, permission)
        if location not in self.locations:
            # a zone or region that does not exist: 400 INVALID_ARGUMENT, not 404
            raise fail(400, f'Location "{location}" does not exist.')
        return project, location

    def found(self, request: Request, permission: str) -> tuple[tuple[str, str, str], dict]:
        project, location = self.where(request, permission)
        key = (project, location, request.params["cluster"])
        if key not in self.clusters:
            raise fail(404, f"Not found: projects/{project}/locations/{location}/clusters/{key[2]}.")
        return key, self.clusters[key]

    def advance(self) -> None:
        """Time passes for operations nobody polls: each read of the clusters moves them one step, as the
        real ones move on by themselves."""
        for operation in self.operations.values():
            if operation["status"] != "DONE":
                self.step(operation)
        for key, cluster in list(self.clusters.items()):
            if cluster["status"] == "ERROR":
                cluster["errorReads"] = cluster.get("errorReads", 0) + 1
                if cluster["errorReads"] > self.error_deleted_after:
                    self.clusters.pop(key)

    def list_clusters(self, request: Request) -> Reply:
        project, location = self.where(request, "container.clusters.list")
        self.advance()
        return Reply(
            200,
            {
                "clusters": [
                    self.shown(c)
                    for (p, loc, _), c in sorted(self.clusters.items())
                    if p == project and location in (loc, "-")
                ]
            },
        )

    def get_cluster(self, request: Request) -> Reply:
        return Reply(200, self.shown(self.found(request, "container.clusters.get")[1]))

    @staticmethod
    def shown(cluster: dict) -> dict:
        return {k: v for k, v in cluster.items() if k != "errorReads"}

    def create_cluster(self, request: Request) -> Reply:
        project, location = self.where(request, "container.clusters.create")
        cluster = self.checked(project, request.json()["cluster"])
        key = (project, location, cluster["name"])
        if key in self.clusters:
            raise fail(409, f"Already exists: projects/{project}/locations/{location}/clusters/{cluster['name']}.")
        if int(cluster.get("initialNodeCount", 0)) < 1 and not cluster.get("nodePools"):
            raise fail(400, "Cluster.initial_node_count must be greater than zero.")
        others = {loc: c for (p, loc, _), c in self.clusters.items() if p == project}
        self.quota.check(project, location, cluster, others)  # at once: no operation, nothing made
        self.clusters[key] = {
            **cluster,
            "location": location,
            "zone": location,
            "status": "PROVISIONING",
            "id": uuid.uuid4().hex + uuid.uuid4().hex,
            "selfLink": f"https://container.googleapis.com/v1/projects/{project}/locations/"
            f"{location}/clusters/{cluster['name']}",
            "locations": node_locations(location, cluster),
            # in all zones: initialNodeCount is per zone
            "currentNodeCount": int(cluster["initialNodeCount"]) * len(node_locations(location, cluster)),
        }
        return self.operation(key, "CREATE_CLUSTER")

    def checked(self, project: str, cluster: dict) -> dict:
        node = cluster.setdefault("nodeConfig", {})
        metadata = node.get("workloadMetadataConfig", {})
        if "mode" in metadata:
            metadata["mode"] = {0: "MODE_UNSPECIFIED", 1: "GCE_METADATA", 2: "GKE_METADATA"}.get(
                metadata["mode"], metadata["mode"]
            )
        network = cluster.get("networkConfig", {})
        if "datapathProvider" in network:
            network["datapathProvider"] = {
                0: "DATAPATH_PROVIDER_UNSPECIFIED",
                1: "LEGACY_DATAPATH",
                2: "ADVANCED_DATAPATH",
            }.get(network["datapathProvider"], network["datapathProvider"])
        pool = cluster.get("workloadIdentityConfig", {}).get("workloadPool", "")
        if metadata.get("mode") == "GKE_METADATA" and not pool:
            raise fail(400, "Workload Identity must be enabled on the cluster to use the GKE metadata server.")
        if pool and pool != f"{project}.svc.id.goog":
            raise fail(400, f"Workload Identity pool must be {project}.svc.id.goog, got {pool}.")
        if network.get("datapathProvider") == "ADVANCED_DATAPATH" and not cluster.get("ipAllocationPolicy", {}).get(
            "useIpAliases"
        ):
            raise fail(400, "Dataplane V2 (ADVANCED_DATAPATH) requires a VPC-native cluster (useIpAliases).")
        account = node.setdefault("serviceAccount", "default")
        if account != "default" and account not in self.service_accounts:
            raise fail(400, f'Service account "{account}" does not exist.')
        return cluster

    def can_pull(self, cluster: dict) -> bool:
        """Whether the cluster's nodes can pull images from Artifact Registry: a scope that allows it, and an
        account with the reader role."""
        node = cluster.get("nodeConfig", {})
        account = node.get("serviceAccount", "default")
        roles = self.default_account_roles if account == "default" else account in self.service_accounts
        return roles and bool(PULL_SCOPES & set(node.get("oauthScopes", [])))

    def delete_cluster(self, request: Request) -> Reply:
        key, cluster = self.found(request, "container.clusters.delete")
        running = [name for name, op in self.operations.items() if op["cluster"] == key and op["status"] != "DONE"]
        if running:  # GKE runs one operation at a time on a cluster
            doing = self.operations[running[0]]["operationType"].split("_")[0].lower().rstrip("e") + "ing"
            message = next(self.busy_messages).format(operation=running[0], doing=doing, cluster=key[2])
            raise fail(400, message, "CLUSTER_ALREADY_HAS_OPERATION", status="FAILED_PRECONDITION")
        cluster["status"] = "STOPPING"
        return self.operation(key, "DELETE_CLUSTER")

    def degrade(self, key: tuple[str, str, str], message: str) -> None:
        """The cluster turns DEGRADED (it still serves, GKE asks for an action), with the condition that says why."""
        self.clusters[key].update(
            {
                "status": "DEGRADED",
                "statusMessage": message,
                "conditions": [
                    {"code": "GKE_SERVICE_ACCOUNT_DELETED", "message": message, "canonicalCode": "FAILED_PRECONDITION"}
                ],
            }
        )

    def upgrade(self, key: tuple[str, str, str]) -> None:
        """An operation someone else started on a running cluster (an upgrade of its control plane)."""
        self.operation(key, "UPGRADE_MASTER")

    def operation(self, key: tuple[str, str, str], kind: str) -> Reply:
        name = f"operation-{next(self.ids)}-{kind.lower()}"
        self.operations[name] = {
            "name": name,
            "zone": key[1],
            "location": key[1],
            "operationType": kind,
            "status": "PENDING",
            "polls": 0,
            "cluster": key,
            "failure": self.fail_next,
            "selfLink": f"https://container.googleapis.com/v1/projects/{key[0]}/locations/{key[1]}/operations/{name}",
            "targetLink": self.clusters[key]["selfLink"],
        }
        self.fail_next = ""
        return Reply(200, self.public(self.operations[name]))

    def get_operation(self, request: Request) -> Reply:
        project, location = self.where(request, "container.operations.get")
        operation = self.operations.get(request.params["operation"])
        if operation is None:
            raise fail(
                404, f"Not found: projects/{project}/locations/{location}/operations/{request.params['operation']}."
            )
        if operation["status"] != "DONE":
            self.step(operation)
        return Reply(200, self.public(operation))

    def step(self, operation: dict) -> None:
        operation["polls"] += 1
        operation["status"] = "DONE" if operation["polls"] >= self.done_after else "RUNNING"
        if operation["status"] == "DONE":
            self.finish(operation)

    def finish(self, operation: dict) -> None:
        key = operation["cluster"]
        if operation["failure"]:
            self.clusters[key]["status"] = "ERROR"
            self.clusters[key]["statusMessage"] = operation["failure"]
        elif operation["operationType"] == "DELETE_CLUSTER":
            self.clusters.pop(key)
            self.on_delete()
        elif operation["operationType"] == "CREATE_CLUSTER":
            self.on_create(self.clusters[key])
            self.clusters[key].update(
                {
                    "status": "RUNNING",
                    "endpoint": self.endpoint,
                    "masterAuth": {"clusterCaCertificate": base64.b64encode(self.ca_pem).decode()},
                }
            )

    @staticmethod
    def public(operation: dict) -> dict:
        shown = {k: v for k, v in operation.items() if k not in ("polls", "cluster", "failure")}
        if operation["failure"] and operation["status"] == "DONE":
            shown["error"] = {"code": 8, "message": operation["failure"]}
            shown["statusMessage"] = operation["failure"]
        return shown
