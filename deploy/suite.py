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


GATEWAY = "nginx-lua"
GATEWAY_PORT = 8080

SERVICES: tuple[Service, ...] = (
    Service("frontend", 8081, database=False, calls=("person",)),
    Service("authentication", 8082),
    Service("authorisation", 8083),
    Service("session", 8084),
    Service("person", 8085, calls=("authorisation",)),
)

# The services the gateway itself talks to.
GATEWAY_CALLS: tuple[str, ...] = ("frontend", "authentication", "session")

DEMO_USERS = (("admin@test.com", "admin"), ("user@test.com", "user"))


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no service named {name!r}; the suite has {', '.join(s.name for s in SERVICES)}")


def url_variable(peer: str) -> str:
    """The environment variable through which a service finds `peer`, e.g. PERSON_URL."""
    return f"{peer.upper()}_URL"
