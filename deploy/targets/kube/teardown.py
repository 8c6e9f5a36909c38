"""Teardown for Kubernetes, in the order the cluster's finalizers allow: LoadBalancer Services first (their
cloud controller holds them until the load balancer is gone), then the workloads and the rest, then the
volume claims (a claim in use keeps `kubernetes.io/pvc-protection` until no pod uses it), then our namespace."""

from __future__ import annotations

import time

from deploy.model.errors import LeftoversError
from deploy.targets.kube import KINDS, NAMESPACE, PVC, SERVICE, Kind, describe, owned_by, owner_selector
from deploy.targets.kube.client import Scoped


class Teardown(Scoped):
    timeout = 300.0  # seconds for deleted objects to go

    def owned(self, kinds: tuple[Kind, ...]) -> list[tuple[Kind, dict]]:
        """Our objects of these kinds, not those a controller of ours made (pods of a Deployment)."""
        return [
            (kind, obj)
            for kind, obj in self.api.each(kinds, self.namespace, owner_selector(self.env_name))
            if not obj["metadata"].get("ownerReferences")
        ]

    def delete(self, found: list[tuple[Kind, dict]]) -> list[str]:
        removed = []
        for kind, obj in found:
            if self.api.delete(kind, self.namespace, obj["metadata"]["name"]):
                removed.append(f"{kind.kind}/{obj['metadata']['name']}")
                self.say(f"deleted {removed[-1]}")
        return removed

    def wait_gone(self, found: list[tuple[Kind, dict]], why: str) -> None:
        """Until the API has let every deleted object go (its finalizers done), with progress and a bound."""
        started = said = time.monotonic()
        while left := [(k, o) for k, o in found if self.api.get(k, self.namespace, o["metadata"]["name"]) is not None]:
            waited = time.monotonic() - started
            names = ", ".join(describe(o) for _, o in left)
            if waited > self.timeout:
                finalizers = sorted({f for _, o in left for f in o["metadata"].get("finalizers") or []})
                raise LeftoversError(
                    f"{names} still being deleted after {self.timeout:g} s"
                    + (f" (finalizers: {', '.join(finalizers)})" if finalizers else ""),
                    "look at its finalizers and events, then run down again",
                )
            if time.monotonic() - said >= 5:
                self.say(f"waiting for {names} to go: {why} ({waited:.0f} s)")
                said = time.monotonic()
            time.sleep(self.poll)

    def load_balancers(self) -> tuple[list[str], list[dict]]:
        """Delete LoadBalancer Services and wait until the API has let them go; returns what was removed and
        the deleted Services, whose cloud pieces the caller may wait for."""
        found = [(k, o) for k, o in self.owned((SERVICE,)) if o["spec"].get("type") == "LoadBalancer"]
        removed = self.delete(found)
        self.wait_gone(found, "their load balancers are being deleted")
        return removed, [obj for _, obj in found]

    def workloads(self) -> list[str]:
        """Everything else of ours but the claims and the namespace: workloads first, then what they use."""
        return self.delete(self.owned(tuple(k for k in reversed(KINDS) if k not in (NAMESPACE, PVC))))

    def claims(self) -> tuple[list[str], list[dict]]:
        """Delete our claims (those of StatefulSets' templates too) and wait until their pods have let them go."""
        found = self.owned((PVC,))
        removed = self.delete(found)
        self.wait_gone(found, "pods that used them are still stopping")
        return removed, [obj for _, obj in found]

    def remove_namespace(self) -> list[str]:
        """Delete our namespace once nothing of ours is left in it, and wait until it has gone."""
        namespace = self.api.get(NAMESPACE, "", self.namespace)
        if namespace is None or not owned_by(namespace, self.env_name) or self.remaining(volumes=True):
            return []
        removed = [] if namespace["metadata"].get("deletionTimestamp") else self.delete([(NAMESPACE, namespace)])
        self.wait_namespace_gone(self.timeout)
        return removed

    def remaining(self, volumes: bool) -> list[str]:
        kinds = tuple(k for k in KINDS if k is not NAMESPACE and (volumes or k is not PVC))
        return [f"{kind.kind}/{obj['metadata']['name']}" for kind, obj in self.owned(kinds)]
