"""Teardown for Kubernetes, in the order the cluster's finalizers allow: LoadBalancer Services first (their
cloud controller holds them until the load balancer is gone), then the workloads and the rest, then the
volume claims (a claim in use keeps `kubernetes.io/pvc-protection` until no pod uses it), then our namespace."""

from __future__ import annotations

import time
from functools import partial

from deploy.model.errors import LeftoversError
from deploy.targets.kube import KINDS, NAMESPACE, POD, PVC, SERVICE, Resource, describe, owned_by, owner_selector
from deploy.targets.kube.client import together
from deploy.targets.kube.scoped import Scoped
from deploy.targets.kube.watch import Changes


class Teardown(Scoped):
    timeout = 300.0  # seconds for deleted objects to go

    def owned(self, kinds: tuple[Resource, ...]) -> list[tuple[Resource, dict]]:
        """Our objects of these kinds, not those a controller of ours made (pods of a Deployment)."""
        return [
            (kind, obj)
            for kind, obj in self.api.each(kinds, self.namespace, owner_selector(self.env_name))
            if not obj["metadata"].get("ownerReferences")
        ]

    def delete(self, found: list[tuple[Resource, dict]]) -> list[str]:
        """Delete `found`, side by side (they are of one teardown step: nothing among them waits for another)."""
        there = together(
            [partial(self.api.delete, kind, self.namespace, obj["metadata"]["name"]) for kind, obj in found]
        )
        removed = []
        for (kind, obj), was_there in zip(found, there, strict=True):
            if was_there:
                removed.append(f"{kind.kind}/{obj['metadata']['name']}")
                self.say(f"deleted {removed[-1]}")
        return removed

    def left(self, found: list[tuple[Resource, dict]]) -> list[tuple[Resource, dict]]:
        """Those of `found` the API still has: one list per kind, side by side."""
        kinds = sorted({kind for kind, _ in found}, key=KINDS.index)
        there = {
            (kind, obj["metadata"]["name"])
            for kind, objects in zip(kinds, self.api.lists(kinds, self.namespace), strict=True)
            for obj in objects
        }
        return [(kind, obj) for kind, obj in found if (kind, obj["metadata"]["name"]) in there]

    def wait_gone(self, found: list[tuple[Resource, dict]], why: str) -> None:
        """Until the API has let every deleted object go (its finalizers done), checked again whenever an object
        of their kinds changes (a watch), with progress and a bound."""
        if not found:
            return
        kinds = tuple(sorted({kind for kind, _ in found}, key=KINDS.index))
        with Changes(self.api, self.namespace, kinds, fallback=self.poll) as changes:
            self.wait_left(found, why, changes)

    def wait_left(self, found: list[tuple[Resource, dict]], why: str, changes: Changes) -> None:
        started = said = time.monotonic()
        while left := self.left(found):
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
            changes.wait()

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

    def everything(self) -> tuple[list[str], bool]:
        """`down --volumes` after the load balancers: every object of ours, claims too, and our namespace. The
        namespace is deleted first: its controller lets a deleted namespace be for 5 s before it empties it (so that
        every API server sees the deletion), and our deletes and waits run inside those 5 s instead of before them.
        What is left of ours then goes with the namespace; another's namespace is only emptied of ours. What was
        removed, and whether our namespace went with it."""
        namespace = self.api.get(NAMESPACE, "", self.namespace)
        if namespace is None or not owned_by(namespace, self.env_name):
            return self.workloads() + self.claims()[0], False
        first = [] if namespace["metadata"].get("deletionTimestamp") else self.delete([(NAMESPACE, namespace)])
        removed = self.workloads() + self.claims()[0] + first
        self.wait_namespace_gone(self.timeout)
        return removed, True

    def remove_namespace(self) -> list[str]:
        """Delete our namespace once nothing of ours is left in it, and wait until it has gone. Its pods are waited
        for first: the namespace controller empties a namespace in one pass when nothing in it is still stopping,
        and otherwise comes back only after the pods' grace period."""
        namespace = self.api.get(NAMESPACE, "", self.namespace)
        if namespace is None or not owned_by(namespace, self.env_name) or self.remaining(volumes=True):
            return []
        self.wait_gone([(POD, pod) for pod in self.api.list(POD, self.namespace)], "the pods are stopping")
        removed = [] if namespace["metadata"].get("deletionTimestamp") else self.delete([(NAMESPACE, namespace)])
        self.wait_namespace_gone(self.timeout)
        return removed

    def remaining(self, volumes: bool) -> list[str]:
        kinds = tuple(k for k in KINDS if k is not NAMESPACE and (volumes or k is not PVC))
        return [f"{kind.kind}/{obj['metadata']['name']}" for kind, obj in self.owned(kinds)]
