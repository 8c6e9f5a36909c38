"""The clients a command shares, made here: the Docker Engine, registries over HTTP, Google's credentials and
endpoints (tests give their fakes' endpoints in GoogleApis) and the Artifact Registry repository. Each target kind
makes the clients of its own API from these in its kind.py (a kubeconfig context's API server; GKE's and
Compute's clients). compose.py wires them into the stages."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from deploy.model.errors import ConfigError, CredentialsError
from deploy.model.googleapis import GoogleApis
from deploy.model.progress import Say
from deploy.registry.auth import Credentials, credentials_for
from deploy.registry.client import DOCKER_HOST, RegistryAddress, RegistryClient, RetryPolicy, Traffic
from deploy.targets.gke.apis import rest_client

if TYPE_CHECKING:  # the cloud clients are imported only for gke environments: they take a second to load
    import docker  # only where the Docker Engine is used (the local target, --builder docker)

    from deploy.registry.artifact_registry import ArtifactRepository

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
    the Docker Engine (OCI builds pushing to a registry need none), Google's credentials (a gke environment, an
    Artifact Registry repository). The target kinds reach them through this (deploy/targets/kit.py Connections)."""

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
        self._google: GoogleApis | None = None
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

    def google(self) -> GoogleApis:
        """Google's credentials (looked up once) and endpoints: a gke environment's kind makes its clients with
        them, and so does an Artifact Registry repository."""
        with self._lock:
            if self._google is None:
                self._google = google_apis()
            return self._google

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._docker is not None:
            self._docker.close()


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


def artifact_repository(
    address: RegistryAddress, say: Say, ask_google: bool, google: Callable[[], GoogleApis] | None = None
) -> ArtifactRepository | None:
    """The Artifact Registry repository at `address`; None for any other registry. Google is asked for
    credentials (`google`, by default looked up now) only for a *-docker.pkg.dev registry, or when `ask_google`
    (a gke environment, whose credentials are needed anyway)."""
    if not DOCKER_HOST.match(address.host) and not ask_google:
        return None
    from deploy.registry.artifact_registry import ArtifactRepository, repository_of  # Google's libraries: 0.2 s

    apis = (google or google_apis)()
    name = repository_of(address, apis.docker_locations)
    if name is None:
        return None
    from google.cloud import artifactregistry_v1

    client = rest_client(artifactregistry_v1.ArtifactRegistryClient, apis.artifact_registry_endpoint, apis)
    return ArtifactRepository(client, name, say, poll=min(apis.poll, 1.0))
