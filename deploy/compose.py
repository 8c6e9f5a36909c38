"""The composition root: every client (Docker, registry HTTP, GKE, Compute, Artifact Registry, Kubernetes) and
every stage object is made here, once; the CLI calls make_runner() or image_build() and nothing else makes one."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import httpx
from docker.errors import DockerException

from deploy.attest import Attester, Unsigned
from deploy.attest.keys import load_public_key
from deploy.attest.sign import Signer
from deploy.attest.verify import ImageVerifier, Verified
from deploy.builders.bases import BaseResolver
from deploy.builders.oci import OciBuilder
from deploy.builders.store import BlobStore, default_cache_dir
from deploy.model.changes import ImagePlan
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, CredentialsError
from deploy.model.images import BuildRecord, PublishedImage, build_record_path
from deploy.model.progress import Progress, Say
from deploy.model.releases import ReleaseHistory
from deploy.model.version import Version
from deploy.output import progress_for
from deploy.publish.bases import BasePublisher, PublishedBases
from deploy.publish.engine import EnginePublisher
from deploy.publish.promote import LATEST, Moved, move_latest, registry_of
from deploy.publish.registry import RegistryPublisher
from deploy.publish.stage import BuildOptions, ImageBuild
from deploy.registry.auth import Credentials, credentials_for
from deploy.registry.client import RegistryAddress, RegistryClient, RetryPolicy, Traffic
from deploy.render.credentials import SECRET_VARIABLE
from deploy.runner import Runner, Stages, UpResult
from deploy.smoke import HttpSmoke, NoSmoke, Smoke
from deploy.users import Users

if TYPE_CHECKING:  # the cloud clients are imported only for gke environments: they take a second to load
    from google.auth.credentials import Credentials as GoogleCredentials

    from deploy.dev.logs import Emit
    from deploy.dev.loop import DevLoop
    from deploy.registry.artifact_registry import ArtifactRepository
    from deploy.targets.gke.target import GkeTarget
    from deploy.targets.kube.client import KubeApi

CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def docker_client() -> docker.DockerClient:
    """The local Docker Engine; the one error when it does not answer, for every command."""
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
    """The clients of a build, created once: HTTP (counted), registry clients by host, the Docker Engine (lazily:
    OCI builds pushing to a registry need no engine)."""

    def __init__(
        self,
        *,
        http: httpx.Client | None = None,
        traffic: Traffic | None = None,
        credentials: Callable[[str], Credentials] = credentials_for,
        retry: RetryPolicy | None = None,
    ):
        self.traffic = traffic or Traffic()
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(60, connect=10), follow_redirects=True, event_hooks={"request": [self.traffic.hook]}
        )
        self._credentials, self._retry = credentials, retry or RetryPolicy()
        self._docker: docker.DockerClient | None = None
        self._registries: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

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

    def close(self) -> None:
        self.http.close()
        if self._docker is not None:
            self._docker.close()


def image_build(options: BuildOptions, clients: Clients, progress: Progress) -> ImageBuild:
    """The build stage: a builder and the publisher paired with it (both made before anything is built, so a
    missing engine or registry is found first)."""
    store = BlobStore(options.store_dir or options.cache_dir)
    bases = BaseResolver(store, options.cache_dir, clients.registry, step=progress.step)
    if options.builder == "docker":
        from deploy.builders.docker import DockerBuilder
        from deploy.publish.docker import DockerPublisher

        address = RegistryAddress.parse(options.registry) if options.registry else None
        publisher = DockerPublisher(clients.docker(), address, clients.registry, step=progress.step)
        builder = DockerBuilder(clients.docker(), bases, step=progress.step)
        return ImageBuild(options, bases, builder, publisher, progress.step, attester(options, clients, progress))
    return ImageBuild(
        options,
        bases,
        OciBuilder(store, bases, step=progress.step),
        oci_publisher(options, clients, progress),
        progress.step,
        attester(options, clients, progress),
    )


def oci_publisher(options: BuildOptions, clients: Clients, progress: Progress) -> RegistryPublisher | EnginePublisher:
    """Where OCI images go: the options' registry, or the local Docker Engine. Either also plans (Planner)."""
    if not options.registry:
        return EnginePublisher(clients.docker(), step=progress.step)
    address = RegistryAddress.parse(options.registry)
    return RegistryPublisher(address, clients.registry(address.host), step=progress.step)


def preview_images(options: BuildOptions) -> tuple[Version, tuple[ImagePlan, ...]]:
    """`diff`: build the six images with the OCI builder, whose digests follow from the layers, and ask the
    registry (or engine) which it lacks; nothing is pushed or loaded."""
    clients, progress = Clients(), progress_for()
    try:
        build = image_build(replace(options, builder="oci"), clients, progress)
        return build.plan(oci_publisher(options, clients, progress))
    finally:
        progress.close()
        clients.close()


def attester(options: BuildOptions, clients: Clients, progress: Progress) -> Attester:
    """With a signing key, a Signer through the registry the images go to; else nothing is signed."""
    if options.signing_key is None:
        return Unsigned()
    if not options.registry or options.builder != "oci":
        raise ConfigError(
            f"signing ({options.signing_key.origin}) needs a registry and the oci builder: signatures and SBOMs are "
            "kept beside the images and made from the layers k8sdeploy writes",
            "pass --registry (or set the environment's registry) and leave --builder at oci",
        )
    return Signer(options.signing_key, clients.registry, step=progress.step)


def verify_images(environment: Environment, images: Mapping[str, PublishedImage]) -> list[Verified]:
    """`verify`, and `up` and `rollback` before they apply: every image against the environment's `verify`."""
    if environment.verify is None:
        raise ConfigError(
            f"environment {environment.name} sets no verify",
            f'add verify = {{ key = "cosign.pub" }} to [environments.{environment.name}]',
        )
    key = load_public_key(Path(environment.verify.key))
    clients = Clients()
    try:
        verifier = ImageVerifier(key, clients.registry, environment.verify.key, environment.verify.attestations)
        return verifier.verify(images)
    finally:
        clients.close()


def verification(environment: Environment, say: Say) -> Callable[[Mapping[str, PublishedImage]], object]:
    """What the runner checks before applying: nothing, or the images against the environment's `verify`."""
    if environment.verify is None:
        return lambda images: None
    key = environment.verify.key

    def check(images: Mapping[str, PublishedImage]) -> object:
        verified = verify_images(environment, images)
        say(f"verified: {len(verified)} images signed with {key}")
        return verified

    return check


def build_and_record(options: BuildOptions, record_path: Path) -> BuildRecord:
    """`build` and `up` alike: make the clients, build and publish with progress on stderr, save the record."""
    clients, progress = Clients(), progress_for()
    try:
        record = image_build(options, clients, progress).run()
    finally:
        progress.close()
        clients.close()
    record.save(record_path)
    return record


def publish_bases(registry: str) -> PublishedBases:
    """`bases`: build the Debian bases (debootstrap, once; cached) and push them to `registry` by digest."""
    address, cache = RegistryAddress.parse(registry), default_cache_dir()
    clients, progress = Clients(), progress_for()
    try:
        resolver = BaseResolver(BlobStore(cache), cache, clients.registry, step=progress.step)
        publisher = RegistryPublisher(address, clients.registry(address.host), step=progress.step)
        return BasePublisher(resolver, publisher, progress.step).publish()
    finally:
        progress.close()
        clients.close()


def release_latest(environment: Environment, version: str, say: Say) -> tuple[Moved, ...]:
    """`release`: move `latest` of the environment's registry to `version` (refused where tags are immutable)."""
    address = registry_of(environment.registry, environment.name)
    repository = artifact_repository(environment, say)
    if repository is not None:
        repository.refuse_moving([LATEST])
    clients = Clients()
    try:
        return move_latest(address, clients.registry(address.host), version, say)
    finally:
        clients.close()


def mysql_secret() -> str:
    """$K8SDEPLOY_MYSQL_SECRET, from which the MySQL passwords are derived (render/credentials.py)."""
    return os.environ.get(SECRET_VARIABLE, "")


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
    )
    container = rest_client(container_v1.ClusterManagerClient, apis.container_endpoint, apis)
    cluster = GkeCluster(container, place, say, poll=apis.poll)
    firewall = Firewall(compute.firewalls, compute.operations, place, network_tag(place), say, poll=apis.poll)
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


def artifact_repository(environment: Environment, say: Say, registry: str | None = None) -> ArtifactRepository | None:
    """The Artifact Registry repository the environment (or `registry`) pushes to; None for any other registry.
    Google is asked for credentials only for a *-docker.pkg.dev registry, or on gke (whose credentials are
    needed anyway)."""
    from deploy.registry.artifact_registry import DOCKER_HOST, ArtifactRepository, repository_of

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


def make_smoke(environment: Environment, say: Say, skip: bool = False) -> Callable[[Users], Smoke]:
    """The smoke login as the environment's smoke users, or a stage that says why it was skipped (--no-smoke,
    or the environment's `smoke = false`)."""
    if skip:
        return lambda users: NoSmoke(say, "--no-smoke")
    if not environment.smoke:
        return lambda users: NoSmoke(say, f"environment {environment.name} sets smoke = false")
    return lambda users: HttpSmoke(say=say, users=users.smoke)


def stages(environment: Environment, say: Say, keep_cluster: bool = False, host_paths: tuple[Path, ...] = ()) -> Stages:
    """The environment's target, and where it keeps its release history, lease and users: files in the local
    target's state directory; a ConfigMap, a Lease and a Secret in the namespace of a Kubernetes target (on
    gke, in its cluster once that runs)."""
    if environment.target == "local":
        from deploy.model.lease import FileLease
        from deploy.targets.local.containers import default_state_dir
        from deploy.targets.local.target import LocalTarget
        from deploy.users import FileUsers

        state = default_state_dir(environment.name)
        return Stages(
            environment,
            LocalTarget(docker_client(), environment.name, say=say, host_paths=host_paths),
            history(environment, say),
            FileLease(state / "lease.json", environment.name),
            FileUsers(state / "users.json"),
        )
    from deploy.targets.kube.history import ConfigMapHistory
    from deploy.targets.kube.lease import KubeLease
    from deploy.targets.kube.users import KubeUsers

    namespace, name = environment.namespace, environment.name
    if environment.target == "kubeconfig":
        from deploy.targets.kube.kubeconfig import kubeconfig_api
        from deploy.targets.kube.target import KubeTarget

        api = kubeconfig_api(environment.kube_context, kubeconfig_path(environment))
        return Stages(
            environment,
            KubeTarget(api, namespace, name, say),
            ConfigMapHistory(api, namespace, name),
            KubeLease(api, namespace, name, say),
            KubeUsers(lambda: api, namespace, name, say),
        )
    from deploy.targets.gke.history import ClusterHistory
    from deploy.targets.gke.target import ClusterLease

    gke = gke_target(environment, say, google_apis(), keep_cluster)

    def running_api() -> KubeApi | None:
        kube = gke.kube(gke.cluster.find())
        return kube.api if kube is not None else None

    return Stages(
        environment,
        gke,
        ClusterHistory(gke),
        ClusterLease(gke, lambda api: KubeLease(api, namespace, name, say), say),
        KubeUsers(running_api, namespace, name, say),
    )


def history(environment: Environment, say: Say) -> ReleaseHistory:
    """The environment's release history alone: the local target's needs no Docker Engine to be read."""
    if environment.target == "local":
        from deploy.model.releases import FileHistory
        from deploy.targets.local.containers import default_state_dir

        return FileHistory(default_state_dir(environment.name) / "releases.json")
    return stages(environment, say).history


def make_runner(
    environment: Environment,
    say: Say,
    *,
    options: BuildOptions | None = None,
    no_smoke: bool = False,
    wait_timeout: float = 180,
    keep_cluster: bool = False,
) -> Runner:
    """A Runner for `environment`; `options` make its build stage (`up`), which first makes sure of the
    environment's Artifact Registry repository, keeping the versions its history records, and its preview
    (`diff`), which builds the same images and publishes nothing."""
    return Runner(
        stages(environment, say, keep_cluster),
        say,
        make_smoke(environment, say, no_smoke),
        build=build_stage(environment, options, say) if options is not None else None,
        preview=(lambda: preview_images(options)) if options is not None else None,
        verify=verification(environment, say),
        wait_timeout=wait_timeout,
        mysql_secret=mysql_secret(),
    )


def build_stage(environment: Environment, options: BuildOptions, say: Say) -> Callable[[ReleaseHistory], BuildRecord]:
    repository = artifact_repository(environment, say, options.registry)

    def build(history: ReleaseHistory) -> BuildRecord:
        if repository is not None:  # before building: a push needs the repository, and it keeps our releases
            repository.ensure(environment.name, [release.version for release in history.releases()])
        return build_and_record(options, build_record_path(environment.name))

    return build


def make_dev(
    environment: Environment, layout: str, say: Say, emit: Emit, serving: Callable[[UpResult], None],
    options: BuildOptions, no_smoke: bool = False, wait_timeout: float = 180,
) -> DevLoop:  # fmt: skip
    """`dev`: a Runner that builds uncommitted work, and how a saved file reaches what runs. On the local target
    the checkout's sources are bound into the containers (changed in place, logs followed); on a cluster the
    images a file changed are pushed and their workloads' image set."""
    import watchfiles

    from deploy.dev.live import LocalLive
    from deploy.dev.logs import LogFollower
    from deploy.dev.loop import DevLoop, InPlace, Live, Republish
    from deploy.dev.mounts import with_sources
    from deploy.model.images import IMAGE_NAMES
    from deploy.targets.local.target import LocalTarget

    checkout = options.source.resolve()
    options = replace(options, source=checkout, allow_dirty=True)
    local = environment.target == "local"
    found = stages(environment, say, host_paths=(checkout,) if local else ())
    runner = Runner(
        found,
        say,
        make_smoke(environment, say, no_smoke),
        build=build_stage(environment, options, say),
        wait_timeout=wait_timeout,
        mysql_secret=mysql_secret(),
        overlay=(lambda objects: with_sources(objects, checkout)) if local else None,
    )
    live: Live
    logs = None
    if isinstance(found.target, LocalTarget):
        engine = found.target.engine
        live = InPlace(LocalLive(engine), runner.objects_of, say)
        logs = LogFollower(engine.client, environment.name, IMAGE_NAMES, emit)
    else:
        if not options.registry:
            raise ConfigError(
                f"environment {environment.name} has no registry: `dev` pushes the images a change makes",
                f'set registry = "HOST/PATH" in [environments.{environment.name}]',
            )
        say(f"logs of environment {environment.name}: `k8sdeploy logs SERVICE --env {environment.name}`")
        live = Republish(runner, lambda names: publish_images(options, names), say)
    return DevLoop(runner, layout, checkout, live, logs, say, watchfiles.watch, serving)


def publish_images(options: BuildOptions, names: Collection[str]) -> Mapping[str, PublishedImage]:
    """`dev` on a cluster: build the six images and push only `names` to the options' registry."""
    clients, progress = Clients(), progress_for()
    try:
        _version, published = image_build(options, clients, progress).publish_some(names)
        return published
    finally:
        progress.close()
        clients.close()
