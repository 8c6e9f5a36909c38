"""The composition root: every client (Docker, Kubernetes, cloud APIs) is created here, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import docker
from docker.errors import DockerException

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.targets import Target

Say = Callable[[str], None]
CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise ConfigError(f"cannot reach the Docker Engine ({str(exc).splitlines()[0][:160]})",
                          "start it with `make docker-engine` or set DOCKER_HOST") from None
    return client


@dataclass(frozen=True)
class GoogleApis:
    """Credentials, and where the GKE, Compute and Artifact Registry APIs answer (their public endpoints unless
    a test says)."""

    credentials: object  # google.auth.credentials.Credentials
    container_endpoint: str = "container.googleapis.com"
    compute_endpoint: str = "compute.googleapis.com"
    scheme: str = "https"
    poll: float = 5.0  # seconds between polls of long-running operations and cloud clean-up
    artifact_registry_endpoint: str = "artifactregistry.googleapis.com"
    # registry hosts that are Artifact Registry although not named LOCATION-docker.pkg.dev (a test's stand-in)
    docker_locations: Mapping[str, str] = field(default_factory=dict)


def google_apis() -> GoogleApis:
    """Application default credentials: a key file, workload identity or user credentials; no shelling out."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    from deploy.model.errors import CredentialsError
    from deploy.googleapi import CREDENTIALS_HINT

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_SCOPE])
    except DefaultCredentialsError as exc:
        raise CredentialsError(f"no Google credentials found ({str(exc).splitlines()[0][:120]})",
                               CREDENTIALS_HINT) from None
    return GoogleApis(credentials)


def rest_client(client_class: type, host: str, apis: GoogleApis):  # noqa: ANN201 - a google-cloud client
    transport = client_class.get_transport_class("rest")(host=host, credentials=apis.credentials,
                                                         url_scheme=apis.scheme)
    return client_class(transport=transport)


def gke_target(environment: Environment, say: Say, apis: GoogleApis, keep_cluster: bool = False) -> Target:
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import compute_v1, container_v1

    from deploy.targets.gke.cloud import Place
    from deploy.targets.gke.cluster import GkeCluster, kube_api_for, network_tag
    from deploy.targets.gke.firewall import Firewall
    from deploy.targets.gke.leftovers import ComputeClients, HttpHealthChecks, Leftovers
    from deploy.targets.gke.target import GkeTarget

    assert environment.gke is not None  # the environment model requires the table for gke
    place = Place(environment.name, environment.gke)
    legacy_checks = HttpHealthChecks(AuthorizedSession(apis.credentials), apis.compute_endpoint, apis.scheme)
    compute = ComputeClients(*(rest_client(cls, apis.compute_endpoint, apis) for cls in (
        compute_v1.FirewallsClient, compute_v1.GlobalOperationsClient, compute_v1.ForwardingRulesClient,
        compute_v1.TargetPoolsClient, compute_v1.BackendServicesClient, compute_v1.HealthChecksClient,
        compute_v1.DisksClient)), legacy_checks)
    container = rest_client(container_v1.ClusterManagerClient, apis.container_endpoint, apis)
    cluster = GkeCluster(container, place, say, poll=apis.poll)
    firewall = Firewall(compute.firewalls, compute.operations, place, network_tag(place), say, poll=apis.poll)
    leftovers = Leftovers(compute, place, firewall.name, say, apis.poll)
    return GkeTarget(environment, cluster, firewall, leftovers, lambda c: kube_api_for(c, apis.credentials), say,
                     keep_cluster=keep_cluster, poll=min(apis.poll, 1.0))


def artifact_repository(environment: Environment, say: Say, registry: str | None = None):  # noqa: ANN201
    """The Artifact Registry repository the environment (or `registry`) pushes to, as a
    publish.artifact_registry.ArtifactRepository; None for any other registry. Google is asked for
    credentials only for a *-docker.pkg.dev registry, or on gke (whose credentials are needed anyway)."""
    from deploy.registry.artifact_registry import DOCKER_HOST, ArtifactRepository, repository_of
    from deploy.registry.client import RegistryAddress

    registry = environment.registry if registry is None else registry
    if not registry:
        return None
    address = RegistryAddress.parse(registry)
    if not DOCKER_HOST.match(address.host) and environment.target != "gke":
        return None
    apis = google_apis()
    name = repository_of(address, apis.docker_locations)
    if name is None:
        return None
    from google.cloud import artifactregistry_v1

    client = rest_client(artifactregistry_v1.ArtifactRegistryClient, apis.artifact_registry_endpoint, apis)
    return ArtifactRepository(client, name, say, poll=min(apis.poll, 1.0))


def kubeconfig_path(environment: Environment) -> Path | None:
    return Path(environment.kubeconfig).expanduser() if environment.kubeconfig else None


def make_smoke(environment: Environment, say: Say, skip: bool = False, users=None):  # noqa: ANN001, ANN201
    """The smoke login as the environment's smoke users (a users.Users), or a stage that says why it was skipped
    (--no-smoke, or the environment's `smoke = false`)."""
    from deploy.smoke import HttpSmoke, NoSmoke

    if skip:
        return NoSmoke(say, "--no-smoke")
    if not environment.smoke:
        return NoSmoke(say, f"environment {environment.name} sets smoke = false")
    return HttpSmoke(say=say, users=users.smoke) if users is not None else HttpSmoke(say=say)


def users_store(environment: Environment, target: Target, say: Say):  # noqa: ANN201 - FileUsers or KubeUsers
    """Where the environment's users are kept: a 0600 file of the local target, the Secret k8sdeploy-users in
    the namespace of a Kubernetes target (on gke, once its cluster runs)."""
    if environment.target == "local":
        from deploy.targets.local.containers import default_state_dir
        from deploy.users import FileUsers

        return FileUsers(default_state_dir(environment.name) / "users.json")
    from deploy.targets.kube.users import KubeUsers

    if environment.target == "kubeconfig":
        return KubeUsers(lambda: target.api, environment.namespace, environment.name, say)

    def api():  # noqa: ANN202 - the running cluster's KubeApi, or None
        kube = target.kube(target.cluster.find())
        return kube.api if kube is not None else None

    return KubeUsers(api, environment.namespace, environment.name, say)


def make_target(environment: Environment, say: Say, keep_cluster: bool = False) -> Target:
    if environment.target == "local":
        from deploy.targets.local.target import LocalTarget

        return LocalTarget(docker_client(), environment.name, say=say)
    if environment.target == "kubeconfig":
        from deploy.targets.kube.kubeconfig import kubeconfig_api
        from deploy.targets.kube.target import KubeTarget

        return KubeTarget(kubeconfig_api(environment.kube_context, kubeconfig_path(environment)), environment.namespace,
                          environment.name, say)
    return gke_target(environment, say, google_apis(), keep_cluster)


def make_history(environment: Environment, say: Say, target: Target | None = None):  # noqa: ANN201
    """Where the environment's target keeps its releases (a releases.ReleaseHistory): local state for the
    local target, a ConfigMap in the cluster for Kubernetes targets (on `target`'s API when given)."""
    if environment.target == "local":
        from deploy.model.releases import FileHistory
        from deploy.targets.local.containers import default_state_dir

        return FileHistory(default_state_dir(environment.name) / "releases.json")
    if environment.target == "kubeconfig":
        from deploy.targets.kube.history import ConfigMapHistory
        from deploy.targets.kube.kubeconfig import kubeconfig_api

        api = target.api if target is not None else kubeconfig_api(environment.kube_context,
                                                                   kubeconfig_path(environment))
        return ConfigMapHistory(api, environment.namespace, environment.name)
    from deploy.targets.gke.history import ClusterHistory

    return ClusterHistory(target if target is not None else make_target(environment, say))


def make_lease(environment: Environment, say: Say, target: Target):  # noqa: ANN201 - a lease.Lease
    """Where the environment's lease is kept: a file in the local target's state directory, a Lease in the
    environment's namespace on Kubernetes targets (on gke, once its cluster runs)."""
    if environment.target == "local":
        from deploy.model.lease import FileLease
        from deploy.targets.local.containers import default_state_dir

        return FileLease(default_state_dir(environment.name) / "lease.json", environment.name)
    from deploy.targets.kube.lease import KubeLease

    if environment.target == "kubeconfig":
        return KubeLease(target.api, environment.namespace, environment.name, say)
    from deploy.targets.gke.target import ClusterLease

    return ClusterLease(target, lambda api: KubeLease(api, environment.namespace, environment.name, say), say)
