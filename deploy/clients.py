"""Every client k8sdeploy talks through, made here and nowhere else: the Docker Engine, registries over HTTP,
a kubeconfig context's API server, and Google's GKE, Compute and Artifact Registry APIs (tests give their
fakes' endpoints in GoogleApis). compose.py wires them into the stages."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, CredentialsError
from deploy.model.progress import Say
from deploy.registry.auth import Credentials, credentials_for
from deploy.registry.client import DOCKER_HOST, RegistryAddress, RegistryClient, RetryPolicy, Traffic

if TYPE_CHECKING:  # the cloud clients are imported only for gke environments: they take a second to load
    import docker  # only where the Docker Engine is used (the local target, --builder docker)
    from google.auth.credentials import Credentials as GoogleCredentials

    from deploy.registry.artifact_registry import ArtifactRepository
    from deploy.targets.gke.doctor import GkeDoctor
    from deploy.targets.gke.target import GkeTarget
    from deploy.targets.kube.client import KubeApi

CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class DeferredTrust(ssl.SSLContext):
    """A client TLS context that loads the certificates it trusts on its first TLS connection: those httpx would
    load (SSL_CERT_FILE, SSL_CERT_DIR, else certifi's bundle). Parsing them takes 20-30 ms, which a run that talks
    to a plain-HTTP registry, or to none, need not pay."""

    def __new__(cls) -> DeferredTrust:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name

    def __init__(self) -> None:
        self._loading = threading.Lock()
        self._loaded = False

    def trust(self) -> None:
        with self._loading:
            if not self._loaded:
                if os.environ.get("SSL_CERT_FILE"):
                    self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
                elif os.environ.get("SSL_CERT_DIR"):
                    self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
                else:
                    import certifi

                    self.load_verify_locations(cafile=certifi.where())
                self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.trust()
        return super().wrap_bio(*args, **kwargs)


def docker_client() -> docker.DockerClient:
    """The local Docker Engine; the one error when it does not answer, for every command."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise ConfigError(
            f"cannot reach the Docker Engine ({str(exc).splitlines()[0][:160]})",
            "start it with `make docker-engine` or set DOCKER_HOST",
        ) from None
    return client


class Clients:
    """The clients of one command, each made once when first asked for: HTTP (counted), registry clients by host,
    the Docker Engine (OCI builds pushing to a registry need none), a kubeconfig context, a GKE environment's
    cloud. The target kinds reach them through this (deploy/targets/kit.py Connections)."""

    def __init__(
        self,
        *,
        http: httpx.Client | None = None,
        traffic: Traffic | None = None,
        credentials: Callable[[str], Credentials] = credentials_for,
        retry: RetryPolicy | None = None,
    ):
        self.traffic = traffic or Traffic()
        self._http = http  # made when a registry is first asked for: its TLS set-up takes tens of milliseconds
        self._credentials, self._retry = credentials, retry or RetryPolicy()
        self._docker: docker.DockerClient | None = None
        self._registries: dict[str, RegistryClient] = {}
        self._lock = threading.RLock()  # registry() makes the HTTP client under it

    @property
    def http(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    verify=DeferredTrust(),
                    timeout=httpx.Timeout(60, connect=10),
                    follow_redirects=True,
                    event_hooks={"request": [self.traffic.hook]},
                )
            return self._http

    def registry(self, host: str) -> RegistryClient:
        with self._lock:
            if host not in self._registries:
                self._registries[host] = RegistryClient(
                    host, self.http, self._credentials(host), self._retry, self.traffic
                )
            return self._registries[host]

    def docker(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    def kubeconfig(self, context: str, path: Path | None) -> KubeApi:
        from deploy.targets.kube.kubeconfig import kubeconfig_api

        return kubeconfig_api(context, path)

    def gke(self, environment: Environment, say: Say, keep_cluster: bool) -> GkeTarget:
        return gke_target(environment, say, google_apis(), keep_cluster)

    def gke_doctor(self, environment: Environment) -> GkeDoctor:
        return gke_doctor(environment, google_apis())

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._docker is not None:
            self._docker.close()


@dataclass(frozen=True)
class GoogleApis:
    """Credentials, and where the GKE, Compute and Artifact Registry APIs answer (their public endpoints unless
    a test says)."""

    credentials: GoogleCredentials
    container_endpoint: str = "container.googleapis.com"
    compute_endpoint: str = "compute.googleapis.com"
    scheme: str = "https"
    poll: float = 5.0  # seconds between polls of long-running operations and cloud clean-up
    artifact_registry_endpoint: str = "artifactregistry.googleapis.com"
    # registry hosts that are Artifact Registry although not named LOCATION-docker.pkg.dev (a test's stand-in)
    docker_locations: Mapping[str, str] = field(default_factory=dict)
    # what `doctor` reads besides: enabled APIs, permissions held, workload identity providers
    service_usage_endpoint: str = "serviceusage.googleapis.com"
    resource_manager_endpoint: str = "cloudresourcemanager.googleapis.com"
    iam_endpoint: str = "iam.googleapis.com"


def google_apis() -> GoogleApis:
    """Application default credentials: a key file, workload identity or user credentials; no shelling out."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    from deploy.googleapi import CREDENTIALS_HINT

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_SCOPE])
    except DefaultCredentialsError as exc:
        raise CredentialsError(
            f"no Google credentials found ({str(exc).splitlines()[0][:120]})", CREDENTIALS_HINT
        ) from None
    return GoogleApis(credentials)


def rest_client(client_class: Any, host: str, apis: GoogleApis) -> Any:
    """A google-cloud client of `client_class` over REST at `host` (each class has its own transport factory;
    their common base declares none, hence Any)."""
    transport = client_class.get_transport_class("rest")(
        host=host, credentials=apis.credentials, url_scheme=apis.scheme
    )
    return client_class(transport=transport)


def gke_target(environment: Environment, say: Say, apis: GoogleApis, keep_cluster: bool = False) -> GkeTarget:
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
    from deploy.targets.gke.cloud import Place
    from deploy.targets.gke.cluster import GkeCluster
    from deploy.targets.gke.doctor import DoctorApis, GkeDoctor
    from deploy.targets.gke.rest import Rest

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


def artifact_repository(address: RegistryAddress, say: Say, ask_google: bool) -> ArtifactRepository | None:
    """The Artifact Registry repository at `address`; None for any other registry. Google is asked for
    credentials only for a *-docker.pkg.dev registry, or when `ask_google` (a gke environment, whose credentials
    are needed anyway)."""
    if not DOCKER_HOST.match(address.host) and not ask_google:
        return None
    from deploy.registry.artifact_registry import ArtifactRepository, repository_of  # Google's libraries: 0.2 s

    apis = google_apis()
    name = repository_of(address, apis.docker_locations)
    if name is None:
        return None
    from google.cloud import artifactregistry_v1

    client = rest_client(artifactregistry_v1.ArtifactRegistryClient, apis.artifact_registry_endpoint, apis)
    return ArtifactRepository(client, name, say, poll=min(apis.poll, 1.0))
