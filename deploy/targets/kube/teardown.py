"""Teardown for Kubernetes: load balancers and volume claims first, then the rest, then our namespace."""

from __future__ import annotations

import time

from ...errors import LeftoversError
from . import KINDS, NAMESPACE, PVC, SERVICE, Kind, owned_by, owner_selector
from .client import Scoped



class Teardown(Scoped):
    timeout = 300.0  # seconds for deleted objects to go

    def owned(self, kinds: tuple[Kind, ...]) -> list[tuple[Kind, dict]]:
        """Our objects of these kinds, not those a controller of ours made (pods of a Deployment)."""
        return [(kind, obj) for kind, obj in self.api.each(kinds, self.namespace, owner_selector(self.instance))
                if not obj["metadata"].get("ownerReferences")]

    def delete(self, found: list[tuple[Kind, dict]]) -> list[str]:
        removed = []
        for kind, obj in found:
            if self.api.delete(kind, self.namespace, obj["metadata"]["name"]):
                removed.append(f"{kind.kind}/{obj['metadata']['name']}")
                self.say(f"deleted {removed[-1]}")
        return removed

    def first_wave(self, volumes: bool) -> tuple[list[str], list[dict]]:
        """Delete LoadBalancer Services (and claims when `volumes`), wait until the API has let them go.

        Returns what was removed and the deleted objects, whose cloud pieces the caller may wait for.
        """
        found = [(k, o) for k, o in self.owned((SERVICE,)) if o["spec"].get("type") == "LoadBalancer"]
        if volumes:
            found += self.owned((PVC,))
        removed = self.delete(found)
        deadline = time.monotonic() + self.timeout
        for kind, obj in found:
            while self.api.get(kind, self.namespace, obj["metadata"]["name"]) is not None:
                if time.monotonic() > deadline:
                    raise LeftoversError(f"{kind.kind}/{obj['metadata']['name']} is still being deleted after "
                                         f"{self.timeout:g} s", "look at its finalizers and events, then run down again")
                time.sleep(self.poll)
        return removed, [obj for _, obj in found]

    def rest(self, volumes: bool) -> list[str]:
        kinds = tuple(k for k in reversed(KINDS) if k is not NAMESPACE and (volumes or k is not PVC))
        removed = self.delete(self.owned(kinds))
        namespace = self.api.get(NAMESPACE, "", self.namespace)
        if namespace is None or not owned_by(namespace, self.instance) or self.remaining(volumes=True):
            return removed
        if not namespace["metadata"].get("deletionTimestamp"):
            removed += self.delete([(NAMESPACE, namespace)])
        self.wait_namespace_gone()
        return removed

    def wait_namespace_gone(self) -> None:
        """A deleted namespace stays Terminating until the namespace controller has emptied it."""
        started = time.monotonic()
        said = started
        while (namespace := self.api.get(NAMESPACE, "", self.namespace)) is not None:
            waited = time.monotonic() - started
            if waited > self.timeout:
                why = "; ".join(c.get("message", "") for c in (namespace.get("status") or {}).get("conditions") or []
                                if c.get("status") == "True") or "no reason given"
                raise LeftoversError(f"namespace {self.namespace} is still terminating after {self.timeout:g} s: {why}",
                                     "look at what is left in it (finalizers) and run down again")
            if time.monotonic() - said >= 5:
                self.say(f"waiting for namespace {self.namespace} to finish terminating ({waited:.0f} s)")
                said = time.monotonic()
            time.sleep(self.poll)

    def remaining(self, volumes: bool) -> list[str]:
        kinds = tuple(k for k in KINDS if k is not NAMESPACE and (volumes or k is not PVC))
        return [f"{kind.kind}/{obj['metadata']['name']}" for kind, obj in self.owned(kinds)]
