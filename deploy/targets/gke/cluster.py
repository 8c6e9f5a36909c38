"""The GKE cluster: found or created (following its operation), deleted, and a Kubernetes client for it."""

from __future__ import annotations

import base64
import time

import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.auth.credentials import Credentials
from google.auth.exceptions import RefreshError
from google.cloud import container_v1

from deploy.googleapi import server_message
from deploy.model.errors import CloudError, ConfigError, CredentialsError
from deploy.model.progress import Say, silent
from deploy.targets.gke.cloud import CREDENTIALS_HINT, RETRY, Deadline, Place, calling
from deploy.targets.kube.client import Endpoint, KubeApi

Cluster = container_v1.Cluster
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
OURS = {"managed-by": "k8sdeploy"}  # resource labels marking a cluster k8sdeploy created


# GKE runs one operation at a time on a cluster and refuses another with 400 FAILED_PRECONDITION, its ErrorInfo
# reason CLUSTER_ALREADY_HAS_OPERATION, in one of these words (as GKE answers them; the REST transport names
# the status BadRequest, gRPC FailedPrecondition)
BUSY_REASON = "CLUSTER_ALREADY_HAS_OPERATION"
BUSY_WORDS = ("incompatible operation", "please wait and try again once it is done")
WAITED = (Cluster.Status.PROVISIONING, Cluster.Status.RECONCILING, Cluster.Status.STOPPING)
# a cluster that serves: DEGRADED "requires user action to restore full functionality" but still serves
# (https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters#Status)
SERVING = (Cluster.Status.RUNNING, Cluster.Status.DEGRADED)


def busy(exc: gexc.GoogleAPICallError) -> bool:
    """Whether GKE refused a call because another operation runs on the cluster."""
    if not isinstance(exc, (gexc.BadRequest, gexc.FailedPrecondition)):
        return False
    return exc.reason == BUSY_REASON or any(words in str(exc.message).lower() for words in BUSY_WORDS)


def created_by_us(cluster: Cluster) -> bool:
    return all(cluster.resource_labels.get(k) == v for k, v in OURS.items())


def hardened(place: Place, cluster: Cluster) -> Cluster:
    """What a cluster k8sdeploy creates has beyond the defaults: Dataplane V2, which enforces the layouts'
    NetworkPolicies (a VPC-native cluster: it needs alias IPs); Workload Identity, so pods get no node
    credentials from the metadata server (GKE_METADATA); shielded nodes with secure boot and integrity
    monitoring; and the nodes' service account (the configured one, else the Compute Engine default) with the
    cloud-platform scope, so that IAM decides what they may do: the API adds no scope when none is given, and a
    node without one cannot pull from Artifact Registry
    (https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/NodeConfig `oauthScopes`;
    https://cloud.google.com/artifact-registry/docs/integrate-gke)."""
    node = cluster.node_config
    node.shielded_instance_config = container_v1.ShieldedInstanceConfig(
        enable_secure_boot=True, enable_integrity_monitoring=True
    )
    node.workload_metadata_config = container_v1.WorkloadMetadataConfig(
        mode=container_v1.WorkloadMetadataConfig.Mode.GKE_METADATA
    )
    if place.gke.node_service_account:
        node.service_account = place.gke.node_service_account
    node.oauth_scopes = [CLOUD_PLATFORM]
    cluster.network_config = container_v1.NetworkConfig(
        datapath_provider=container_v1.DatapathProvider.ADVANCED_DATAPATH
    )
    cluster.ip_allocation_policy = container_v1.IPAllocationPolicy(use_ip_aliases=True)
    cluster.workload_identity_config = container_v1.WorkloadIdentityConfig(
        workload_pool=f"{place.gke.project}.svc.id.goog"
    )
    cluster.shielded_nodes = container_v1.ShieldedNodes(enabled=True)
    return cluster


def degraded_why(cluster: Cluster) -> str:
    """What GKE says is wrong with a DEGRADED cluster: its status message, else its conditions."""
    return cluster.status_message or "; ".join(c.message for c in cluster.conditions) or "no message"


def network_tag(place: Place) -> str:
    return place.gke.network_tag or f"k8sdeploy-{place.gke.cluster}"


class GkeCluster:
    def __init__(self, client: container_v1.ClusterManagerClient, place: Place, say: Say = silent, poll: float = 5.0):
        self.client = client
        self.place = place
        self.say = say
        self.poll = poll
        self.parent = f"projects/{place.gke.project}/locations/{place.gke.location}"
        self.name = f"{self.parent}/clusters/{place.gke.cluster}"

    def find(self) -> Cluster | None:
        with calling(f"looking for cluster {self.place.gke.cluster}", self.place):
            clusters = self.client.list_clusters(parent=self.parent, retry=RETRY).clusters
        return next((c for c in clusters if c.name == self.place.gke.cluster), None)

    def ensure(self) -> Cluster:
        """The running cluster, created first if missing; stops on settings it cannot reconcile, and on a cluster
        in ERROR (once GKE has deleted it); a DEGRADED one is warned about and used."""
        cluster = self.settled()
        if cluster is None:
            self.create()
            cluster = self.settled()
        if cluster is not None and cluster.status == Cluster.Status.ERROR:
            self.gone_in_error(cluster)
        if cluster is not None and cluster.status == Cluster.Status.DEGRADED:
            self.say(
                f"warning: cluster {cluster.name} is DEGRADED ({degraded_why(cluster)}); it still serves, so the "
                "deploy goes on: see the cluster's page in the console for the action GKE asks for"
            )
        if cluster is None or cluster.status not in SERVING:
            state = cluster.status.name if cluster else "gone"
            raise CloudError(
                f"cluster {self.place.gke.cluster} is {state}: {cluster.status_message if cluster else ''}",
                "wait for it to finish (or delete it with `k8sdeploy down`) and run again",
            )
        self.reconcile(cluster)
        return cluster

    def gone_in_error(self, cluster: Cluster) -> None:
        """A cluster in ERROR (its create failed) is deleted by GKE itself: say so, wait for that, then stop."""
        why = cluster.status_message or "no message"
        self.say(f"cluster {cluster.name} is in ERROR ({why}); GKE deletes it, waiting for that")
        deadline = Deadline(f"GKE to delete cluster {cluster.name}, which is in ERROR", self.place)
        while (found := self.find()) is not None and found.status in (Cluster.Status.ERROR, *WAITED):
            deadline.sleep(self.poll)
        raise CloudError(
            f"cluster {cluster.name} failed and was deleted by GKE: {why}",
            f"fix that (quota, permissions or {self.place.table}) and run again",
        )

    def reconcile(self, cluster: Cluster, warn: bool = True) -> None:
        """Stop on settings k8sdeploy cannot change; `warn` of a cluster that does not enforce NetworkPolicies."""
        gke, found = self.place.gke, cluster.node_config
        wrong = []
        if found.machine_type != gke.machine_type:
            wrong.append(f"machine type {found.machine_type} (configured {gke.machine_type})")
        if network_tag(self.place) not in found.tags:
            wrong.append(f"nodes without the network tag {network_tag(self.place)}")
        if wrong:
            raise ConfigError(
                f"cluster {gke.cluster} exists with {' and '.join(wrong)}, which k8sdeploy cannot change",
                f"make {self.place.table} match the cluster, or delete it (k8sdeploy down) first",
            )
        advanced = cluster.network_config.datapath_provider == container_v1.DatapathProvider.ADVANCED_DATAPATH
        if warn and not advanced and not cluster.network_policy.enabled:
            self.say(
                f"warning: cluster {gke.cluster} does not enforce NetworkPolicies (no Dataplane V2, no network "
                "policy add-on): the layout's policies are applied but not enforced"
            )

    def create(self) -> None:
        gke = self.place.gke
        cluster = hardened(
            self.place,
            Cluster(
                name=gke.cluster,
                network=gke.network,
                initial_node_count=gke.node_count,
                node_config=container_v1.NodeConfig(machine_type=gke.machine_type, tags=[network_tag(self.place)]),
                resource_labels={**OURS, "k8sdeploy-environment": self.place.env_name},
            ),
        )
        self.say(
            f"creating cluster {gke.cluster} in {gke.location} ({self.place.nodes} of {gke.machine_type}; "
            "Dataplane V2 enforcing NetworkPolicies, Workload Identity, shielded nodes)"
        )
        if not gke.node_service_account:
            self.say(
                "note: the nodes run as the project's Compute Engine default service account "
                f"(default_node_account = true); set node_service_account in {self.place.table} to a dedicated one"
            )
        with calling(f"creating cluster {gke.cluster}", self.place):
            try:
                operation = self.client.create_cluster(parent=self.parent, cluster=cluster, retry=RETRY)
            except gexc.Conflict:  # a retried create whose first answer was lost: it is being created
                self.say(f"cluster {gke.cluster} is already being created (an earlier try went through)")
                return
        self.follow(operation, f"creating cluster {gke.cluster}", failed="; GKE deletes the failed cluster")

    def settled(self) -> Cluster | None:
        """The cluster once no operation runs on it (GKE refuses a delete while a create runs: a `down` after
        an interrupted `up`, or a test's clean-up), or None when there is none (or it was being deleted)."""
        cluster = self.find()
        deadline = Deadline(f"cluster {self.place.gke.cluster} to finish what it is doing", self.place)
        while cluster is not None and cluster.status in WAITED:
            self.say(f"cluster {cluster.name} is {cluster.status.name.lower()}; waiting for that to finish")
            deadline.sleep(self.poll)
            cluster = self.find()
        return cluster

    def delete(self) -> bool:
        """Delete the cluster if it is there and k8sdeploy created it; True when deleted. Another operation on
        it (an upgrade, a create an interrupted `up` left) is waited for, then the delete sent again."""
        deadline = Deadline(f"cluster {self.place.gke.cluster} to be deleted", self.place)
        while True:
            cluster = self.settled()
            if cluster is None:
                return False
            if not created_by_us(cluster):
                self.say(f"keeping cluster {cluster.name}: k8sdeploy did not create it")
                return False
            if cluster.status == Cluster.Status.ERROR:  # GKE deletes it itself
                self.say(f"cluster {cluster.name} is in ERROR ({cluster.status_message}); GKE deletes it")
                while self.find() is not None:
                    deadline.sleep(self.poll)
                return True
            self.say(f"deleting cluster {cluster.name}")
            with calling(f"deleting cluster {cluster.name}", self.place):
                try:
                    operation = self.client.delete_cluster(name=self.name, retry=RETRY)
                except gexc.NotFound:  # a retried delete whose first answer was lost: it is gone
                    return True
                except gexc.GoogleAPICallError as exc:
                    if not busy(exc):
                        raise
                    self.say(f"cluster {cluster.name} runs another operation ({server_message(exc)}); waiting")
                    deadline.sleep(self.poll)
                    continue
            self.follow(operation, f"deleting cluster {cluster.name}")
            while self.find() is not None:
                deadline.sleep(self.poll)
            return True

    def follow(self, operation: container_v1.Operation, what: str, failed: str = "") -> None:
        """Poll the operation until DONE (at most operation_timeout), then raise its error, if any."""
        started = time.monotonic()
        name = f"{self.parent}/operations/{operation.name}"
        deadline = Deadline(f"{what} (operation {operation.name})", self.place)
        while operation.status != container_v1.Operation.Status.DONE:
            deadline.sleep(self.poll)
            with calling(what, self.place):
                operation = self.client.get_operation(name=name, retry=RETRY)
            self.say(f"{what}: {operation.status.name.lower()} ({time.monotonic() - started:.0f} s)")
        if operation.error.message or operation.status_message:
            raise CloudError(
                f"{what} failed: {operation.error.message or operation.status_message}{failed}",
                f"fix that (quota, permissions or {self.place.table}) and run again; operation {operation.name}",
            )


def kube_api_for(cluster: Cluster, credentials: Credentials) -> KubeApi:
    """A Kubernetes client for the cluster, configured in memory: endpoint, CA, a Google token refreshed when it
    is no longer valid (asked for before each request)."""

    def authorization() -> str:
        if not credentials.valid:
            try:
                credentials.refresh(google.auth.transport.requests.Request())
            except RefreshError as exc:
                raise CredentialsError(
                    f"cannot refresh the Google token for the cluster ({exc})", CREDENTIALS_HINT
                ) from None
        return f"Bearer {credentials.token or ''}"

    ca = base64.b64decode(cluster.master_auth.cluster_ca_certificate)
    return KubeApi(Endpoint(f"https://{cluster.endpoint}", ca_pem=ca, authorization=authorization))
