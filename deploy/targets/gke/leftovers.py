"""The audit after teardown: Compute resources of this deployment that are still there (they cost money)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.transport.requests import AuthorizedSession
from google.cloud import compute_v1

from deploy.model.progress import Say, silent
from deploy.targets.gke.cloud import RETRY, Place, calling


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
    http_health_checks: HttpHealthChecks  # the legacy ones target pools use
    networks: compute_v1.NetworksClient
    network_endpoint_groups: compute_v1.NetworkEndpointGroupsClient  # the zonal NEGs of backend services


@dataclass(frozen=True)
class Leftover:
    kind: str  # forwardingRule, targetPool, backendService, healthCheck, networkEndpointGroup, firewall, disk
    scope: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.scope}/{self.name}"


class HttpHealthChecks:
    """The legacy global httpHealthChecks collection that target-pool load balancers use, for which
    google-cloud-compute has no client: `GET compute/v1/projects/PROJECT/global/httpHealthChecks`, paged by
    nextPageToken (Compute Engine REST reference, httpHealthChecks.list), over an authorized session."""

    def __init__(self, session: AuthorizedSession, endpoint: str, scheme: str = "https"):
        self.session = session
        self.base = f"{scheme}://{endpoint}/compute/v1/projects"

    def names(self, project: str, retry: Retry = RETRY) -> list[str]:
        found, token = [], ""
        while True:

            def page(token: str = token) -> dict:
                answer = self.session.get(
                    f"{self.base}/{project}/global/httpHealthChecks",
                    params={"pageToken": token} if token else None,
                    timeout=30,
                )
                if answer.status_code >= 400:
                    raise gexc.from_http_response(answer)
                return answer.json()

            data = retry(page)()
            found += [item["name"] for item in data.get("items", [])]
            token = data.get("nextPageToken", "")
            if not token:
                return found


class Leftovers:
    """Finds what belongs to one deployment and nothing else: resources named after the load balancers and
    disks of its own Services and claims, of either kind GKE makes (naming.py: a<service uid>,
    k8s-fw-a<service uid>, k8s2-<cluster uid>-<namespace>-<name>-<hash>; pvc-<claim uid>), the cluster's shared
    health checks and their firewall rules when its cluster is being deleted (named after the cluster's ids),
    and the environment's own firewall rule. Not by namespace or node tag: two environments in one project, or
    in one cluster, would report each other's."""

    def __init__(self, compute: ComputeClients, place: Place, own_firewall: str, say: Say = silent, poll: float = 5.0):
        self.compute = compute
        self.place = place
        self.own_firewall = own_firewall
        self.say = say
        self.poll = poll

    def find(self, names: Iterable[str] = (), disks: bool = True) -> list[Leftover]:
        """`names`: of this deployment's load balancers and disks (and its cluster's shared health checks, when
        the cluster is deleted); what has one of them in its name is ours."""
        names = tuple(n for n in names if n)
        project, found = self.place.gke.project, []

        def ours(name: str) -> bool:
            return any(n in name for n in names)

        with calling("auditing what is left in Compute", self.place):
            aggregated: list[tuple[str, Any, str]] = [
                ("forwardingRule", self.compute.forwarding_rules, "forwarding_rules"),
                ("targetPool", self.compute.target_pools, "target_pools"),
                ("backendService", self.compute.backend_services, "backend_services"),
                ("healthCheck", self.compute.health_checks, "health_checks"),
                ("networkEndpointGroup", self.compute.network_endpoint_groups, "network_endpoint_groups"),
            ]
            if disks:
                aggregated.append(("disk", self.compute.disks, "disks"))
            for kind, client, field in aggregated:
                for scope, scoped in client.aggregated_list(project=project, retry=RETRY):
                    found += [Leftover(kind, scope, r.name) for r in getattr(scoped, field) if ours(r.name)]
            for check in self.compute.http_health_checks.names(project):
                if ours(check):
                    found.append(Leftover("httpHealthCheck", "global", check))
            for rule in self.compute.firewalls.list(project=project, retry=RETRY):
                if rule.name == self.own_firewall or ours(rule.name):
                    found.append(Leftover("firewall", "global", rule.name))
        return found

    def wait_gone(self, names: Iterable[str], timeout: float) -> None:
        """Wait until the cloud pieces of deleted Services and claims are gone (GKE removes them slowly)."""
        names, deadline = tuple(n for n in names if n), time.monotonic() + timeout
        while names and (left := self.find(names)):
            left = [item for item in left if item.name != self.own_firewall]
            if not left:
                return
            if time.monotonic() > deadline:
                self.say(f"still there after {timeout:g} s: {', '.join(map(str, left))}")
                return
            self.say(f"waiting for {len(left)} load balancer or disk resource(s) to go")
            time.sleep(self.poll)
