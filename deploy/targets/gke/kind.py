"""The gke target kind: a GKE cluster k8sdeploy creates, with its firewall rule; the environment's records are
objects in the cluster's namespace once it runs (none before); `dev` publishes new images; the registry may be an
Artifact Registry repository under any host name (Google is asked). The kind makes its own clients (GKE's,
Compute's, the cluster's API server) from the command's Google credentials."""

from __future__ import annotations

from typing import Any

from deploy.model.environments import Environment
from deploy.model.googleapis import GoogleApis
from deploy.model.progress import Say
from deploy.registry.client import RegistryAddress
from deploy.targets.gke.apis import rest_client
from deploy.targets.gke.cloud import Place
from deploy.targets.gke.cluster import GkeCluster, kube_api_for, network_tag
from deploy.targets.gke.doctor import DoctorApis, GkeDoctor
from deploy.targets.gke.firewall import Firewall
from deploy.targets.gke.history import ClusterHistory
from deploy.targets.gke.leftovers import ComputeClients, HttpHealthChecks, Leftovers
from deploy.targets.gke.rest import Rest
from deploy.targets.gke.target import ClusterLease, GkeTarget
from deploy.targets.kit import Connections, Kind, KitOptions, TargetKit
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.identity import KubeIdentity
from deploy.targets.kube.lease import KubeLease
from deploy.targets.kube.secrets import tls_certificate
from deploy.targets.kube.users import KubeUsers


def kit(environment: Environment, connections: Connections, say: Say, options: KitOptions) -> TargetKit:
    gke = gke_target(environment, say, connections.google(), options.keep_cluster)
    namespace, name = environment.namespace, environment.name

    def running_api() -> KubeApi | None:
        kube = gke.kube(gke.cluster.find())
        return kube.api if kube is not None else None

    return TargetKit(
        environment,
        gke,
        ClusterHistory(gke),
        ClusterLease(gke, lambda api: KubeLease(api, namespace, name, say), say),
        KubeUsers(running_api, namespace, name, say),
        KubeIdentity(running_api, namespace, name),
        preflight=gke.firewall.check_network,
        doctor=lambda objects, purpose: gke_doctor(environment, connections.google())(objects, purpose),
        tls_certificate=tls_certificate(running_api, namespace),
    )


def gke_target(environment: Environment, say: Say, apis: GoogleApis, keep_cluster: bool = False) -> GkeTarget:
    """The GKE target and its clients: GKE's and Compute's over REST, with the credentials and at the endpoints
    of `apis`."""
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import compute_v1, container_v1

    assert environment.gke is not None  # the environment model requires the table for gke
    place = Place(environment.name, environment.gke)
    legacy_checks = HttpHealthChecks(AuthorizedSession(apis.credentials), apis.compute_endpoint, apis.scheme)

    def compute_client(client_class: Any) -> Any:
        return rest_client(client_class, apis.compute_endpoint, apis)

    compute = ComputeClients(
        compute_client(compute_v1.FirewallsClient),
        compute_client(compute_v1.GlobalOperationsClient),
        compute_client(compute_v1.ForwardingRulesClient),
        compute_client(compute_v1.TargetPoolsClient),
        compute_client(compute_v1.BackendServicesClient),
        compute_client(compute_v1.HealthChecksClient),
        compute_client(compute_v1.DisksClient),
        legacy_checks,
        compute_client(compute_v1.NetworksClient),
        compute_client(compute_v1.NetworkEndpointGroupsClient),
    )
    container = rest_client(container_v1.ClusterManagerClient, apis.container_endpoint, apis)
    cluster = GkeCluster(container, place, say, poll=apis.poll)
    firewall = Firewall(
        compute.firewalls, compute.operations, compute.networks, place, network_tag(place), say, poll=apis.poll
    )
    leftovers = Leftovers(compute, place, firewall.name, say, apis.poll)
    return GkeTarget(
        environment,
        cluster,
        firewall,
        leftovers,
        lambda c: kube_api_for(c, apis.credentials),
        say,
        keep_cluster=keep_cluster,
        poll=min(apis.poll, 1.0),
    )


def gke_doctor(environment: Environment, apis: GoogleApis) -> GkeDoctor:
    """The gke environment's read-only checks (`doctor`), over the APIs they read; nothing else is made."""
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import container_v1

    from deploy.registry.artifact_registry import repository_of

    assert environment.gke is not None  # the environment model requires the table for gke
    session = AuthorizedSession(apis.credentials)
    rest = {
        endpoint: Rest(session, endpoint, apis.scheme)
        for endpoint in (
            apis.service_usage_endpoint,
            apis.resource_manager_endpoint,
            apis.iam_endpoint,
            apis.compute_endpoint,
        )
    }
    container = rest_client(container_v1.ClusterManagerClient, apis.container_endpoint, apis)
    cluster = GkeCluster(container, Place(environment.name, environment.gke))
    registry = environment.registry
    on_artifact_registry = (
        bool(registry) and repository_of(RegistryAddress.parse(registry), apis.docker_locations) is not None
    )
    return GkeDoctor(
        environment,
        DoctorApis(
            rest[apis.service_usage_endpoint],
            rest[apis.resource_manager_endpoint],
            rest[apis.iam_endpoint],
            rest[apis.compute_endpoint],
        ),
        lambda: cluster.find() is not None,
        on_artifact_registry,
    )


KIND = Kind(kit, registry_on_google=True, own_cluster=True)
