"""The audit after teardown: Compute resources of this deployment that are still there (they cost money)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from google.cloud import compute_v1

from .cloud import RETRY, Place, calling

Say = Callable[[str], None]


@dataclass(frozen=True)
class ComputeClients:
    """The Compute API clients the gke target uses, made once in the composition root."""

    firewalls: compute_v1.FirewallsClient
    operations: compute_v1.GlobalOperationsClient
    forwarding_rules: compute_v1.ForwardingRulesClient
    target_pools: compute_v1.TargetPoolsClient
    backend_services: compute_v1.BackendServicesClient
    health_checks: compute_v1.HealthChecksClient
    disks: compute_v1.DisksClient


def load_balancer_name(service: dict) -> str:
    """The name GKE gives a Service's forwarding rule, target pool and k8s-fw-* rule: a + its uid."""
    return "a" + service["metadata"]["uid"].replace("-", "")[:31]


@dataclass(frozen=True)
class Leftover:
    kind: str  # forwardingRule, targetPool, backendService, healthCheck, firewall, disk
    scope: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.scope}/{self.name}"


class Leftovers:
    """Finds what belongs to one deployment: described as made for a Service or claim in our namespace, named
    after one of our load balancers or disks, or a firewall rule that is ours or targets our node tag."""

    def __init__(self, compute: ComputeClients, place: Place, namespace: str, own_firewall: str, tag: str,
                 say: Say = lambda _line: None, poll: float = 5.0):
        self.compute = compute
        self.place = place
        self.namespace = namespace
        self.own_firewall = own_firewall
        self.tag = tag
        self.say = say
        self.poll = poll

    def ours(self, resource: object, names: Iterable[str]) -> bool:
        try:
            described = json.loads(getattr(resource, "description", "") or "{}")
        except ValueError:
            described = {}
        described = described if isinstance(described, dict) else {}
        return (described.get("kubernetes.io/service-name", "").startswith(f"{self.namespace}/")
                or described.get("kubernetes.io/created-for/pvc/namespace") == self.namespace
                or any(name and name in resource.name for name in names))

    def find(self, names: Iterable[str] = (), disks: bool = True) -> list[Leftover]:
        names = tuple(names)
        project, found = self.place.gke.project, []
        with calling("auditing what is left in Compute", self.place):
            aggregated = [("forwardingRule", self.compute.forwarding_rules, "forwarding_rules"),
                          ("targetPool", self.compute.target_pools, "target_pools"),
                          ("backendService", self.compute.backend_services, "backend_services"),
                          ("healthCheck", self.compute.health_checks, "health_checks")]
            if disks:
                aggregated.append(("disk", self.compute.disks, "disks"))
            for kind, client, field in aggregated:
                for scope, scoped in client.aggregated_list(project=project, retry=RETRY):
                    found += [Leftover(kind, scope, r.name) for r in getattr(scoped, field) if self.ours(r, names)]
            for rule in self.compute.firewalls.list(project=project, retry=RETRY):
                if rule.name == self.own_firewall or self.tag in rule.target_tags or self.ours(rule, names):
                    found.append(Leftover("firewall", "global", rule.name))
        return found

    def wait_gone(self, names: Iterable[str], timeout: float) -> None:
        """Wait until the cloud pieces of deleted Services and claims are gone (GKE removes them slowly)."""
        names, deadline = tuple(n for n in names if n), time.monotonic() + timeout
        while names and (left := [item for item in self.find(names) if any(n in item.name for n in names)]):
            if time.monotonic() > deadline:
                self.say(f"still there after {timeout:g} s: {', '.join(map(str, left))}")
                return
            self.say(f"waiting for {len(left)} load balancer or disk resource(s) to go")
            time.sleep(self.poll)
