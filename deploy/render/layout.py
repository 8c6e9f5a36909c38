"""The layouts as one model: which pods hold which parts of the suite, and how each call is addressed.

Both the Kubernetes objects (manifests/<layout>/) and the gateway's upstreams are rendered from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from deploy.model.environments import LAYOUTS
from deploy.model.errors import ConfigError, RenderError
from deploy.model.suite import (
    DATA_DIR,
    DRAIN_SECONDS,
    GATEWAY,
    GATEWAY_CALLS,
    GATEWAY_COMMAND,
    GATEWAY_CONF,
    GATEWAY_PORT,
    GATEWAY_RUNTIME_DIR,
    GATEWAY_TLS_DIR,
    GATEWAY_TLS_PORT,
    HASHING,
    IDENTITY_DIR,
    IDENTITY_FILE,
    ROLES_KEY,
    SCRATCH_DIR,
    SEEDED_BY,
    SERVICE_MEMORY_LIMIT,
    SERVICES,
    USERS_KEY,
    USERS_SECRET,
    identity_secret,
    suite_ports,
    url_variable,
)

PART_OF = "auth-suite"  # app.kubernetes.io/part-of of every object
SINGLE_POD = "auth-suite"  # the pod of the single-pod layout
LOCALHOST = "127.0.0.1"
GATEWAY_CONFIG_MAP = "nginx-lua-conf"
MYSQL = "mysql"  # the database server of split-pods with database = "mysql": pod, Service and Secret
MYSQL_PORT = 3306
ROOT_PASSWORD_KEY = "root-password"  # keys of the Secret MYSQL
INIT_SQL_KEY = "init.sql"
DB_WAIT_SECONDS = 60  # how long a service waits for its database before it exits (and is restarted)
SQLITE_VOLUME_SIZE = "1Gi"
# Where the gateway's pod may have its address, for authentication to take the client address the gateway names
# (the private ranges, and the range GKE takes pods from); its NetworkPolicy admits only the gateway.
POD_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7,127.0.0.0/8,::1/128"
MYSQL_VOLUME_SIZE = "5Gi"

Storage = Literal["emptyDir", "persistentVolumeClaim", "mysql"]


def database_url_key(service: str) -> str:
    """The key of the Secret MYSQL that holds `service`'s DATABASE_URL."""
    return f"{service}-database-url"


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container. Ephemeral storage holds its logs, its writable layer (none: the root
    is read-only) and its share of the pod's emptyDir volumes (scratch, and SQLite files with ephemeral_data)."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str
    ephemeral: str = "64Mi"
    ephemeral_limit: str = "1Gi"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str = ""
    secret_key: str = ""  # taken from this key of a Secret (`secret`, default MYSQL) instead of `value`
    secret: str = ""
    optional: bool = False  # the Secret or its key may be missing (then the variable is unset)


@dataclass(frozen=True)
class Volume:
    name: str
    source: Literal["emptyDir", "persistentVolumeClaim", "configMap", "secret"]
    reference: str = ""  # the claim, ConfigMap or Secret
    key: str = ""  # the one key of a ConfigMap or Secret that is mounted


@dataclass(frozen=True)
class Mount:
    volume: str
    path: str
    sub_path: str = ""
    read_only: bool = False


@dataclass(frozen=True)
class Claim:
    """A PersistentVolumeClaim: its own object, or a StatefulSet's volume claim template."""

    name: str
    owner: str  # the part whose data it holds: its app.kubernetes.io/name
    size: str


@dataclass(frozen=True)
class Part:
    """One container of the suite: the gateway, a service or the database server."""

    name: str  # also the name of its image in the build record
    port: int
    command: tuple[str, ...] = ()  # () runs the image's own entrypoint
    calls: tuple[str, ...] = ()  # parts it sends HTTP requests to
    database: bool = False  # keeps data: an SQLite file or a MySQL database of its own
    probe: Literal["http", "tcp"] = "http"  # http: /readyz and /healthz on `port`
    start_seconds: int = 10  # liveness is not checked before this
    scratch_dir: str = SCRATCH_DIR
    resources: Resources = Resources("50m", "64Mi", "500m", SERVICE_MEMORY_LIMIT)
    env: tuple[EnvVar, ...] = ()
    mounts: tuple[Mount, ...] = ()
    volumes: tuple[Volume, ...] = ()
    extra_ports: tuple[int, ...] = ()  # served beside `port` (the gateway's HTTPS), never probed

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)


@dataclass(frozen=True)
class Pod:
    name: str
    parts: tuple[Part, ...]
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    claim_templates: tuple[Claim, ...] = ()


GATEWAY_PART = Part(
    GATEWAY,
    GATEWAY_PORT,
    GATEWAY_COMMAND,
    GATEWAY_CALLS,
    scratch_dir=GATEWAY_RUNTIME_DIR,
    resources=Resources("50m", "32Mi", "500m", "128Mi", "32Mi", "256Mi"),
    mounts=(Mount("nginx-conf", GATEWAY_CONF, sub_path="nginx.conf", read_only=True),),
    volumes=(Volume("nginx-conf", "configMap", GATEWAY_CONFIG_MAP, "nginx.conf"),),
)
SERVICE_PARTS = tuple(
    Part(s.name, s.port, s.command, s.calls, s.database, start_seconds=(DB_WAIT_SECONDS + 30) if s.database else 10)
    for s in SERVICES
)
# Any MySQL-compatible image that runs as a non-root user with a read-only root filesystem, given a
# writable socket directory and /tmp (the official mysql and mariadb images do), and runs the *.sql
# files in /docker-entrypoint-initdb.d when it first initialises its data directory.
MYSQL_PART = Part(
    MYSQL,
    MYSQL_PORT,
    probe="tcp",
    start_seconds=120,
    resources=Resources("100m", "256Mi", "1", "1Gi", "64Mi", "512Mi"),
    env=(EnvVar("MYSQL_ROOT_PASSWORD", secret_key=ROOT_PASSWORD_KEY),),
    mounts=(
        Mount("mysql-data", "/var/lib/mysql"),
        Mount("mysql-run", "/var/run/mysqld"),
        Mount("mysql-init", "/docker-entrypoint-initdb.d", read_only=True),
    ),
    volumes=(Volume("mysql-run", "emptyDir"), Volume("mysql-init", "secret", MYSQL, INIT_SQL_KEY)),
)


@dataclass(frozen=True)
class Layout:
    """Pods of parts; a call between pods goes to the callee pod's Service, within a pod to localhost."""

    name: str
    pods: tuple[Pod, ...]
    storage: Storage  # where the services keep their data
    # where the services listen: every address of their pod in a cluster (probes come from the node), loopback
    # on the local target (its containers share the host's network: nothing else should reach them)
    bind: str = "0.0.0.0"
    tls_secret: str = ""  # the kubernetes.io/tls Secret the gateway serves HTTPS with; "" for none
    # storage "mysql" on a server k8sdeploy does not run: its (CIDR, port), and the Secret holding the URLs
    external_server: tuple[str, int] | None = None
    database_secret: str = MYSQL  # the Secret with each service's DATABASE_URL (database_url_key)

    def __post_init__(self) -> None:
        names = {part.name for part in self.parts}
        for caller, callee in self.calls:
            if callee not in names:
                raise RenderError(
                    f"layout {self.name}: {caller} calls {callee}, which the layout does not have",
                    f"put {callee} in a pod of the layout, or remove the call from deploy/model/suite.py",
                )

    @property
    def parts(self) -> tuple[Part, ...]:
        return tuple(part for pod in self.pods for part in pod.parts)

    @property
    def calls(self) -> tuple[tuple[str, str], ...]:
        """(caller, callee) for every HTTP call, and for every service to its MySQL database."""
        http = [(part.name, callee) for part in self.parts for callee in part.calls]
        database = [
            (part.name, MYSQL)
            for part in self.parts
            if part.database and self.storage == "mysql" and self.external_server is None
        ]
        return tuple(http + database)

    def part(self, name: str) -> Part:
        return next(part for part in self.parts if part.name == name)

    def pod_of(self, name: str) -> Pod:
        return next(pod for pod in self.pods if any(part.name == name for part in pod.parts))

    def address(self, caller: str, callee: str) -> str:
        """host:port at which `caller` reaches `callee`."""
        pod = self.pod_of(callee)
        host = LOCALHOST if pod == self.pod_of(caller) else pod.name
        return f"{host}:{self.part(callee).port}"

    def upstreams(self) -> dict[str, str]:
        return {callee: self.address(GATEWAY, callee) for callee in self.part(GATEWAY).calls}

    def callers(self, pod: Pod) -> tuple[tuple[Part, tuple[Pod, ...]], ...]:
        """Each part of `pod` that other pods call, with those pods: what its Service and policy admit."""
        found = []
        for part in pod.parts:
            pods = tuple(
                other
                for other in self.pods
                if other != pod and any((caller.name, part.name) in self.calls for caller in other.parts)
            )
            if pods:
                found.append((part, pods))
        return tuple(found)

    def callees(self, pod: Pod) -> tuple[tuple[Part, Pod], ...]:
        """Each part of another pod that a part of `pod` calls, with its pod: what `pod`'s egress admits."""
        found = []
        for caller, callee in self.calls:
            if any(part.name == caller for part in pod.parts) and self.pod_of(callee) != pod:
                entry = (self.part(callee), self.pod_of(callee))
                if entry not in found:
                    found.append(entry)
        return tuple(found)

    def external_egress(self, pod: Pod) -> tuple[tuple[str, int], ...]:
        """The (CIDR, port) of the server k8sdeploy does not run, for a pod whose services keep data there."""
        if self.external_server is None or not any(part.database for part in pod.parts):
            return ()
        return (self.external_server,)

    def claims(self) -> tuple[Claim, ...]:
        """The PersistentVolumeClaims that are objects of their own: one per service's SQLite file."""
        if self.storage != "persistentVolumeClaim":
            return ()
        return tuple(Claim(f"{part.name}-data", part.name, SQLITE_VOLUME_SIZE) for part in self.parts if part.database)

    def strategy(self, pod: Pod) -> Literal["Recreate", "RollingUpdate"]:
        """Recreate where two pods must not overlap: one pod by definition, or a ReadWriteOnce volume (two pods
        writing one SQLite file, or a new pod waiting for a claim the old one holds, must never happen). A
        RollingUpdate starts the new pod and waits for its readiness before an old one stops (maxUnavailable 0)."""
        return "Recreate" if self.recreated(pod) else "RollingUpdate"

    def recreated(self, pod: Pod) -> tuple[str, ...]:
        """Why `pod` must stop before its replacement starts, as words; () when it can roll."""
        if self.name == "single-pod":
            return ("single-pod runs the suite in one pod",)
        return tuple(
            f"{volume.reference} is a ReadWriteOnce claim"
            for volume in self.volumes(pod)
            if volume.source == "persistentVolumeClaim"
        )

    def ephemeral_data(self, pod: Pod) -> tuple[str, ...]:
        """The services of `pod` whose data is on an emptyDir volume: it goes when the pod is replaced."""
        if self.storage != "emptyDir":
            return ()
        return tuple(part.name for part in pod.parts if self.keeps_sqlite(part))

    def keeps_sqlite(self, part: Part) -> bool:
        return part.database and self.storage != "mysql"

    def env(self, part: Part) -> tuple[EnvVar, ...]:
        """The service settings of deploy/model/suite.py's contract: address, database, peers."""
        if part.name not in {service.name for service in SERVICE_PARTS}:
            return part.env
        found = [EnvVar("HOST", self.bind), EnvVar("PORT", str(part.port))]
        if self.keeps_sqlite(part):
            found.append(EnvVar("DATABASE_PATH", f"{DATA_DIR}/{part.name}.db"))
        elif part.database:
            found.append(EnvVar("DATABASE_URL", secret_key=database_url_key(part.name), secret=self.database_secret))
        if part.database:
            found.append(EnvVar("DB_WAIT_SECONDS", str(DB_WAIT_SECONDS)))
        found.append(EnvVar("DRAIN_SECONDS", str(DRAIN_SECONDS)))
        found += [EnvVar(url_variable(peer), f"http://{self.address(part.name, peer)}") for peer in part.calls]
        found.append(EnvVar("IDENTITY_KEYS", f"{IDENTITY_DIR}/{IDENTITY_FILE}"))  # deploy/identity.py
        if part.name == HASHING:  # bounds its concurrent hashes by it (services/common/passwords.py)
            found.append(EnvVar("MEMORY_LIMIT", part.resources.memory_limit))
            if self.pod_of(GATEWAY) != self.pod_of(part.name):  # the gateway's X-Real-IP names the client
                found.append(EnvVar("TRUSTED_PROXIES", POD_NETWORKS))
        if part.name in SEEDED_BY:  # the users k8sdeploy keeps for the environment (deploy/users.py)
            key = USERS_KEY if part.name == HASHING else ROLES_KEY  # authorisation, session: ids and roles only
            found.append(EnvVar("SEED_USERS", secret_key=key, secret=USERS_SECRET, optional=True))
        return (*found, *part.env)

    def mounts(self, part: Part) -> tuple[Mount, ...]:
        scratch = (Mount(f"{part.name}-tmp", part.scratch_dir),)
        data = (Mount(f"{part.name}-data", DATA_DIR),) if self.keeps_sqlite(part) else ()
        # the whole Secret, not a subPath: a rotated key reaches the running container
        identity = (Mount(f"{part.name}-identity", IDENTITY_DIR, read_only=True),) if part.name != MYSQL else ()
        return scratch + data + identity + part.mounts

    def volumes(self, pod: Pod) -> tuple[Volume, ...]:
        found: list[Volume] = []
        for part in pod.parts:
            found.append(Volume(f"{part.name}-tmp", "emptyDir"))
            if self.keeps_sqlite(part) and self.storage == "emptyDir":
                found.append(Volume(f"{part.name}-data", "emptyDir"))
            elif self.keeps_sqlite(part):
                found.append(Volume(f"{part.name}-data", "persistentVolumeClaim", f"{part.name}-data"))
            if part.name != MYSQL:
                found.append(Volume(f"{part.name}-identity", "secret", identity_secret(part.name)))
            found += part.volumes
        return tuple(found)


def tls_gateway(secret: str) -> Part:
    """The gateway serving HTTPS too, with the certificate and key of Secret `secret` (read-only files)."""
    return replace(
        GATEWAY_PART,
        extra_ports=(GATEWAY_TLS_PORT,),
        mounts=(*GATEWAY_PART.mounts, Mount("gateway-tls", GATEWAY_TLS_DIR, read_only=True)),
        volumes=(*GATEWAY_PART.volumes, Volume("gateway-tls", "secret", secret)),
    )


def build_layout(
    name: str,
    database: str = "sqlite",
    bind: str = "0.0.0.0",
    tls_secret: str = "",
    ephemeral: bool = False,
    port_base: int = GATEWAY_PORT,
    server: tuple[str, int, str] | None = None,
) -> Layout:
    """The layout `name` with the services' data in SQLite (on claims, or on emptyDir volumes when `ephemeral`) or
    MySQL (on `server` = (CIDR, port, Secret) when k8sdeploy runs none), the services listening on `bind`, the
    gateway serving HTTPS when `tls_secret` names its certificate, the gateway on `port_base` and the services on
    the ports after it (suite_ports); a ConfigError for what cannot be."""
    if name not in LAYOUTS:
        raise ConfigError(f"unknown layout {name!r}", f"choose one of: {', '.join(LAYOUTS)}")
    ports = suite_ports(port_base)
    parts = tuple(
        replace(part, port=ports[part.name])
        for part in (tls_gateway(tls_secret) if tls_secret else GATEWAY_PART, *SERVICE_PARTS)
    )
    sqlite: Storage = "emptyDir" if ephemeral else "persistentVolumeClaim"
    if name == "single-pod":
        if database == "mysql":
            raise ConfigError(
                'layout single-pod keeps each service\'s data in an SQLite file, but database = "mysql"',
                'render --layout split-pods, or set database = "sqlite"',
            )
        return Layout(name, (Pod(SINGLE_POD, parts),), storage=sqlite, bind=bind, tls_secret=tls_secret)
    pods = tuple(Pod(part.name, (part,)) for part in parts)
    if database == "mysql" and server is not None:
        cidr, port, secret = server
        return Layout(name, pods, "mysql", bind, tls_secret, external_server=(cidr, port), database_secret=secret)
    if database == "mysql":
        own = Pod(
            MYSQL, (MYSQL_PART,), kind="StatefulSet", claim_templates=(Claim("mysql-data", MYSQL, MYSQL_VOLUME_SIZE),)
        )
        return Layout(name, (*pods, own), storage="mysql", bind=bind, tls_secret=tls_secret)
    return Layout(name, pods, storage=sqlite, bind=bind, tls_secret=tls_secret)
