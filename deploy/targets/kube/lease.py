"""The environment's lease on Kubernetes targets: a coordination.k8s.io/v1 Lease `k8sdeploy-ENV` in its
namespace, taken by create (the API server lets one create win), renewed and taken over by update with
the resourceVersion read (a conflict means somebody else moved first), released by a delete whose
preconditions name the lease we hold."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from deploy.model.errors import KubeApiError
from deploy.model.lease import DURATION, Holding, Renewer, gone, refuse, utcnow
from deploy.targets.kube import MANAGED_BY, MANAGER, NAMESPACE, Resource
from deploy.targets.kube.scoped import Scoped

LEASE = Resource("Lease", "coordination.k8s.io/v1", "leases")
MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, MICROTIME).replace(tzinfo=datetime.UTC)


def holding(lease: dict) -> Holding:
    spec = lease.get("spec") or {}
    return Holding(
        spec.get("holderIdentity", "?"),
        _time(spec["acquireTime"]),
        _time(spec["renewTime"]),
        int(spec.get("leaseDurationSeconds", DURATION)),
    )


class KubeLease(Scoped):
    duration = DURATION

    @property
    def name(self) -> str:
        return f"k8sdeploy-{self.env_name}"

    def body(self, mine: Holding, resource_version: str = "") -> dict:
        metadata = {"name": self.name, "namespace": self.namespace, "labels": {MANAGED_BY: MANAGER}}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": mine.holder,
                "leaseDurationSeconds": mine.duration,
                "acquireTime": mine.acquired.strftime(MICROTIME),
                "renewTime": mine.renewed.strftime(MICROTIME),
            },
        }

    def acquire(self, holder: str) -> Holding:
        now = utcnow()
        mine = Holding(holder, now, now, self.duration)
        try:
            self.api.request(
                "POST", LEASE.path(self.namespace), {"fieldManager": MANAGER}, self.body(mine), landed=self.ours(holder)
            )
            return mine
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        live = self.api.get(LEASE, self.namespace, self.name)
        if live is None:
            return self.acquire(holder)  # released in between
        found = holding(live)
        if found.holder == holder:  # our own create, whose answer was lost: it happened
            return found
        if not found.expired(now) and not found.dead_here():
            raise refuse(self.env_name, found, now)
        self.say(f"taking over the lease of {found.holder}, {gone(found, now)}")
        if not self.update(mine, live):
            raise refuse(self.env_name, holding(self.api.get(LEASE, self.namespace, self.name) or live), now)
        return mine

    def ours(self, holder: str) -> Callable[[], dict | None]:
        """Reads back whether a write of `holder`'s whose answer was lost landed: the lease, when it names them."""

        def landed() -> dict | None:
            live = self.api.get(LEASE, self.namespace, self.name)
            return live if live is not None and holding(live).holder == holder else None

        return landed

    def update(self, mine: Holding, live: dict) -> bool:
        """Write `mine` over `live` with its resourceVersion as the precondition; False when somebody else
        moved first (409), unless the 409 answers our own earlier try (sent again after a broken connection)."""
        try:
            self.api.request(
                "PUT",
                LEASE.path(self.namespace, self.name),
                {"fieldManager": MANAGER},
                self.body(mine, live["metadata"]["resourceVersion"]),
            )
            return True
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        now = self.api.get(LEASE, self.namespace, self.name)
        return now is not None and holding(now) == mine

    def renew(self, mine: Holding) -> None:
        live = self.api.get(LEASE, self.namespace, self.name)
        if live is not None and holding(live).holder == mine.holder:
            self.update(Holding(mine.holder, mine.acquired, utcnow(), mine.duration), live)

    def release(self, mine: Holding) -> None:
        live = self.api.get(LEASE, self.namespace, self.name)
        if live is None or holding(live).holder != mine.holder:
            return
        preconditions = {"uid": live["metadata"]["uid"], "resourceVersion": live["metadata"]["resourceVersion"]}
        try:
            self.api.request(
                "DELETE",
                LEASE.path(self.namespace, self.name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions},
            )
        except KubeApiError as exc:
            if exc.status not in (404, 409):  # gone with its namespace, or renewed by a takeover
                raise

    @contextmanager
    def hold(self, holder: str, create: bool = True) -> Iterator[Holding | None]:
        """Held inside the with. With `create` (up, rollback) a missing namespace is created for it (a
        terminating one waited for first); without (down), a namespace that is missing or going has nothing
        to hold, and the with runs without a lease."""
        namespace = self.api.get(NAMESPACE, "", self.namespace)
        going = namespace is None or bool(namespace["metadata"].get("deletionTimestamp"))
        if going and not create:
            yield None
            return
        if going:
            self.ensure_namespace()
        mine = self.acquire(holder)
        try:
            with Renewer(lambda: self.renew(mine), self.duration / 3):
                yield mine
        finally:
            self.release(mine)
