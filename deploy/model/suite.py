"""The suite as one model: which services there are, their ports, and who calls whom."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    database: bool = True
    calls: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def command(self) -> tuple[str, ...]:
        """What the service's image runs: wait for the database, migrate, serve."""
        return ("python3", "-m", self.module)


GATEWAY = "nginx-lua"
GATEWAY_PORT = 8080

# The contract between the images (build) and the objects that run them (render, local target).
APP_USER_ID = 10001  # every container runs as this non-root user
DATA_DIR = "/data"  # SQLite files: DATABASE_PATH=/data/NAME.db, an emptyDir or a PVC
SCRATCH_DIR = "/tmp"  # writable scratch (emptyDir) under a read-only root filesystem
GATEWAY_CONF = "/etc/k8sdeploy/nginx.conf"  # baked for one pod on localhost; a ConfigMap may replace it
GATEWAY_LUA_DIR = "/usr/share/k8sdeploy/lua"
GATEWAY_RUNTIME_DIR = "/tmp/nginx"  # pid, temp files
GATEWAY_TLS_PORT = 8443  # HTTPS, when the environment names a certificate (tls_secret)
GATEWAY_TLS_DIR = "/etc/k8sdeploy/tls"  # tls.crt and tls.key of that Secret
GATEWAY_COMMAND = ("nginx", "-p", GATEWAY_RUNTIME_DIR, "-e", "stderr", "-c", GATEWAY_CONF)

SERVICES: tuple[Service, ...] = (
    Service("frontend", 8081, database=False, calls=("person",)),
    Service("authentication", 8082),
    Service("authorisation", 8083),
    Service("session", 8084),
    Service("person", 8085, calls=("authorisation",)),
)

# The services the gateway itself talks to.
GATEWAY_CALLS: tuple[str, ...] = ("frontend", "authentication", "session")


@dataclass(frozen=True)
class User:
    """A user the deployment seeds (services/common/seed.py reads them from SEED_USERS)."""

    id: int
    email: str
    password: str
    role: str  # admin | user

    def seed(self) -> dict:
        return {"id": self.id, "email": self.email, "password": self.password, "role": self.role}


# Known passwords, for environments that enable them (demo_users): a demo and the tests.
DEMO_USERS = (User(1, "admin@test.com", "admin", "admin"), User(2, "user@test.com", "user", "user"))
SEEDED_BY = ("authentication", "authorisation")  # the services that read SEED_USERS
USERS_SECRET = "k8sdeploy-users"  # the Secret k8sdeploy keeps SEED_USERS in (never rendered)
USERS_KEY = "seed-users.json"


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no service named {name!r}; the suite has {', '.join(s.name for s in SERVICES)}")


def url_variable(peer: str) -> str:
    """The environment variable through which a service finds `peer`, e.g. PERSON_URL."""
    return f"{peer.upper()}_URL"
