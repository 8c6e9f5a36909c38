"""The suite as one model: which services there are, their ports, and who calls whom."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from suitekit.passwords import hash_password, hash_prefix


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
GATEWAY_STOP_SIGNAL = "SIGQUIT"  # nginx's graceful quit (SIGTERM is its fast one): the image's StopSignal

# Stopping without dropping a request: a pod told to stop first keeps serving PRE_STOP_SECONDS while it leaves its
# Service's endpoints (kube-proxy's rules, a load balancer's backends), then each part finishes its in-flight
# requests within DRAIN_SECONDS of its stop signal (uvicorn's graceful shutdown, nginx's worker_shutdown_timeout);
# the pod's terminationGracePeriodSeconds covers both.
PRE_STOP_SECONDS = 5
DRAIN_SECONDS = 20
GRACE_SECONDS = PRE_STOP_SECONDS + DRAIN_SECONDS + 5

# Each service container's memory limit (render: resources.limits; authentication reads it as MEMORY_LIMIT and
# bounds its concurrent password hashes by it, and the gateway's per-client login burst follows from that).
SERVICE_MEMORY_LIMIT = "256Mi"
HASHING = "authentication"  # the service that hashes passwords

SERVICES: tuple[Service, ...] = (
    Service("frontend", 8081, database=False, calls=("person",)),
    Service("authentication", 8082),
    Service("authorisation", 8083),
    Service("session", 8084),
    Service("person", 8085, calls=("authorisation",)),
)

# The services the gateway itself talks to.
GATEWAY_CALLS: tuple[str, ...] = ("frontend", "authentication", "session")

# Proof between the parts (services/common/identity.py): each call carries a token of the caller for the callee,
# and authentication's token for session is its proof of a login, which the gateway hands to the session service.
LOGIN_PROOF = ("authentication", "session")
# The session service's user context for each part that acts for a user (services/common/context.py): the pair
# session>PART, so that the frontend cannot sign person's or authorisation's.
USER_CONTEXT: tuple[tuple[str, str], ...] = tuple(("session", part) for part in ("frontend", "person", "authorisation"))
# authentication's key for the device cookies it signs and alone reads (services/authentication/devices.py)
DEVICE_COOKIES = ("authentication", "device")
# The gateway's key for the failing hop it writes into an error answer, which only k8sdeploy's smoke test reads
# (deploy/smoke.py): strangers are told no service's name.
FAILURE_REFERENCE = (GATEWAY, "smoke")
IDENTITY_DIR = "/etc/k8sdeploy/identity"  # where each part reads its key file (a Secret volume)
IDENTITY_FILE = "keys"


def trust_pairs() -> tuple[tuple[str, str], ...]:
    """(issuer, audience) for every token the suite sends: the calls of the gateway and the services, the login
    proof, the user contexts, the device cookies, the failure references. Each pair has a key of its own, held only
    by its two ends."""
    calls = [(GATEWAY, callee) for callee in GATEWAY_CALLS]
    calls += [(service.name, callee) for service in SERVICES for callee in service.calls]
    return (*calls, LOGIN_PROOF, *USER_CONTEXT, DEVICE_COOKIES, FAILURE_REFERENCE)


def identity_secret(part: str) -> str:
    """The Secret that holds `part`'s key file (deploy/identity.py writes it)."""
    return f"k8sdeploy-identity-{part}"


@dataclass(frozen=True)
class User:
    """A user the deployment seeds (services/common/seed.py reads them from SEED_USERS): never a clear password."""

    id: int
    email: str
    password_hash: str  # scrypt, suitekit/passwords.py
    role: str  # admin | user

    def seed(self) -> dict:
        """authentication's entry: who logs in with what."""
        return {"id": self.id, "email": self.email, "password_hash": self.password_hash, "role": self.role}

    def role_seed(self) -> dict:
        """authorisation's entry: ids and roles only."""
        return {"id": self.id, "role": self.role}


@dataclass(frozen=True)
class Login:
    """A user's clear credentials, which only k8sdeploy holds: the demo users' (known anyway) and the smoke users'
    (kept apart from the Secret the services read)."""

    id: int
    email: str
    password: str
    role: str

    def user(self, kept: User | None = None) -> User:
        """The user seeded for this login: `kept` (the user kept under its id, hashed from this password:
        users.kept_hash) when that is k8sdeploy's hash of this login (the same address and role, the salt
        k8sdeploy derives from the address, today's parameters), else hashed now (scrypt, about 0.2 s): an `up`
        hashes only a login that is new."""
        if kept is not None and (kept.id, kept.email, kept.role) == (self.id, self.email, self.role):
            if kept.password_hash.startswith(hash_prefix(login_salt(self.email))):
                return kept
        return User(self.id, self.email, hashed(self.email, self.password), self.role)


def login_salt(email: str) -> bytes:
    """The salt of a login k8sdeploy knows: derived from the address, so that its hash is the same at every `up`
    (the Secret does not change, the pods are not replaced); the passwords are known (demo) or random."""
    return hashlib.sha256(f"k8sdeploy login {email}".encode()).digest()[:16]


@cache
def hashed(email: str, password: str) -> str:
    """The hash k8sdeploy stores for a login it knows."""
    return hash_password(password, salt=login_salt(email))


# Known passwords, for environments that enable them (demo_users): a demo and the tests.
DEMO_USERS = (Login(1, "admin@test.com", "admin", "admin"), Login(2, "user@test.com", "user", "user"))
SEEDED_BY = ("authentication", "authorisation", "session")  # the services that read SEED_USERS
USERS_SECRET = "k8sdeploy-users"  # the Secret k8sdeploy keeps SEED_USERS in (never rendered)
USERS_KEY = "seed-users.json"  # authentication's SEED_USERS: ids, addresses, password hashes and roles
ROLES_KEY = "seed-roles.json"  # authorisation's and session's SEED_USERS: ids and roles
SMOKE_SECRET = "k8sdeploy-smoke"  # the smoke users' clear passwords: read by k8sdeploy only, never by a pod
SMOKE_KEY = "smoke-logins.json"


def suite_ports(base: int = GATEWAY_PORT) -> dict[str, int]:
    """The port of the gateway and of each service when the gateway's is `base`: the services keep their
    offsets from it (8081-8085 beside 8080). The one place these ports are derived from (render's layout,
    hence the probes, the gateway's upstreams and the local target's containers; `make run`'s suite)."""
    return {GATEWAY: base, **{s.name: base + (s.port - GATEWAY_PORT) for s in SERVICES}}


PORT_SPAN = len(SERVICES) + 1  # a port base takes this many consecutive ports


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no service named {name!r}; the suite has {', '.join(s.name for s in SERVICES)}")


def url_variable(peer: str) -> str:
    """The environment variable through which a service finds `peer`, e.g. PERSON_URL."""
    return f"{peer.upper()}_URL"
