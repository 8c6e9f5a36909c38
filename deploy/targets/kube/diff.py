"""What an apply would change on a Kubernetes API, as the API server itself answers it: the same server-side
apply as our field manager with dryRun=All, compared with the live object; nothing is written.

An identity that may only read (the preview's: docs/targets.md) is refused the dry runs, since the API server
authorizes a dry run as the write it stands for: those objects are compared with the live object client-side
(deploy/targets/kube/readonly.py), and say so. What it may not read at all (a kind it may not list, Secrets) is
named as not compared ("unknown"), never taken for unchanged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

from deploy.model.changes import Drift, ObjectChange
from deploy.model.errors import ForbiddenError, KubeApiError
from deploy.targets.kube import APPLIED, KINDS, NAMESPACE, PVC, SECRET, Resource, kind_of
from deploy.targets.kube.apply import (
    IMMUTABLE,
    Applier,
    defaulted_rolling_update_in_the_way,
    kept,
    mounted_secrets,
    needs_apply,
    refused,
)
from deploy.targets.kube.client import together
from deploy.targets.kube.edits import edited_fields, hand_edits
from deploy.targets.kube.readonly import changed_fields, comparable, shaped_like
from deploy.targets.kube.readonly import changes as changes_locally
from deploy.targets.kube.readonly import drift as drift_locally

NOT_DRY_RUN = "not dry-run: no permission to patch"
LOCALLY = f"compared client-side ({NOT_DRY_RUN})"


def drift_of(live: dict, after: dict) -> Iterator[Drift]:
    """Each other manager's fields, split by whether the dry run took them back (it owns them no more)."""
    kept = edited_fields(after)
    for manager, paths in edited_fields(live).items():
        taken = tuple(p for p in paths if p not in kept.get(manager, ()))
        left = tuple(p for p in paths if p in kept.get(manager, ()))
        if taken:
            yield Drift(manager, taken, taken_back=True)
        if left:
            yield Drift(manager, left, taken_back=False)


class Differ:
    """The changes of one environment's apply, through the Applier's own decisions (prepare, ownership, the
    digest that skips an unchanged object, conflicts, immutable fields, prune), each write a dry run; where this
    identity may not dry-run, compared client-side; where it may not read, named as not compared."""

    def __init__(self, applier: Applier):
        self.applier = applier
        self.forbidden: dict[Resource, str] = {}  # kinds this identity may not list -> the request refused

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]:
        applier = self.applier
        desired = sorted((applier.prepare(obj) for obj in objects), key=lambda o: KINDS.index(kind_of(o)))
        found: list[ObjectChange] = list(self.required_secrets(desired))
        try:
            exists = applier.api.get(NAMESPACE, "", applier.namespace) is not None
        except ForbiddenError:  # its objects are read as if it exists: a namespace that does not holds none
            exists = True
            found.append(ObjectChange(NAMESPACE.kind, applier.namespace, "unknown", note=unreadable(NAMESPACE)))
        applier.readings.clear()
        self.forbidden.clear()
        applier.survey(desired, namespace_exists=exists, forbidden=self.forbidden)
        if not exists:
            note = "the API server checks its objects once it exists"
            found.append(ObjectChange(NAMESPACE.kind, applier.namespace, "create", note=note))
        # each object's dry run is independent of the others': side by side
        found += together([partial(self.one, obj, exists) for obj in desired])
        for kind, live in applier.stale(kept(desired)):
            name = live["metadata"]["name"]
            if kind == PVC:
                found.append(ObjectChange(kind.kind, name, "unchanged", note="no longer rendered, kept: it holds data"))
            else:
                found.append(ObjectChange(kind.kind, name, "delete", note="not in this render (prune)"))
        for kind in sorted(self.forbidden, key=KINDS.index):  # what of them the render no longer has is not known
            found.append(ObjectChange(kind.kind, "*", "unknown", note=f"{unreadable(kind)}: what up prunes of them"))
        return tuple(found)

    def required_secrets(self, desired: Sequence[dict]) -> Iterator[ObjectChange]:
        """Nothing when the Secrets the pods mount and k8sdeploy does not make are there (else `up`'s error);
        each named as not checked when this identity may not read Secrets."""
        try:
            self.applier.require_secrets(desired)
        except ForbiddenError:
            ours = {obj["metadata"]["name"] for obj in desired if kind_of(obj) == SECRET}
            for name in sorted(set(mounted_secrets(desired)) - ours):
                yield ObjectChange(SECRET.kind, name, "unknown", note=f"the pods mount it; {unreadable(SECRET)}")

    def one(self, obj: dict, dry_run: bool) -> ObjectChange:
        applier, kind, name = self.applier, kind_of(obj), obj["metadata"]["name"]
        if kind in self.forbidden:
            return ObjectChange(kind.kind, name, "unknown", note=unreadable(kind))
        try:
            live = applier.live(obj, keep=True)
        except ForbiddenError:  # listed as metadata, and read whole only now
            return ObjectChange(kind.kind, name, "unknown", note=unreadable(kind))
        if live is None:
            if dry_run:
                try:
                    self.dry_run(obj, ())
                except _Refused:
                    note = f"{NOT_DRY_RUN}: the API server checks it at up"
                    return ObjectChange(kind.kind, name, "create", note=note)
            return ObjectChange(kind.kind, name, "create")
        edits = hand_edits(live)
        if not needs_apply(obj, live, edits):
            return ObjectChange(kind.kind, name, "unchanged")
        secret = kind == SECRET
        if defaulted_rolling_update_in_the_way(obj, live):  # up clears it with a merge patch first
            fields = changed_fields(shaped_like(comparable(live), comparable(obj)), comparable(obj), secret)
            return ObjectChange(kind.kind, name, "update", fields, note="clears the defaulted rollingUpdate first")
        ours = APPLIED in ((live.get("metadata") or {}).get("annotations") or {})
        try:
            after = self.dry_run(obj, edits if ours else ())
        except _Immutable as exc:
            fields = changed_fields(shaped_like(comparable(live), comparable(obj)), comparable(obj), secret)
            return ObjectChange(kind.kind, name, "replace", fields, note=exc.why)
        except _Refused:
            fields = changes_locally(live, obj, secret)
            action = "update" if fields else "unchanged"
            return ObjectChange(kind.kind, name, action, fields, tuple(drift_locally(live, obj)), note=LOCALLY)
        fields = changed_fields(comparable(live), comparable(after), secret)
        return ObjectChange(kind.kind, name, "update" if fields else "unchanged", fields, tuple(drift_of(live, after)))

    def dry_run(self, obj: dict, edits: tuple[str, ...]) -> dict:
        """The object as the API server would store it; refused as `up` would be refused."""
        try:
            return self.applier.server_side_apply(kind_of(obj), obj, edits, dry_run=True)
        except ForbiddenError:
            raise _Refused() from None
        except KubeApiError as exc:
            if exc.status == 422 and IMMUTABLE.search(exc.body or ""):
                raise _Immutable(exc.api_message) from None
            raise refused(obj, exc) from None


def unreadable(kind: Resource) -> str:
    return f"not compared: no permission to read {'Secrets' if kind == SECRET else kind.plural}"


class _Refused(Exception):
    """This identity may not dry-run the object: the API server authorizes a dry run as the write itself."""


class _Immutable(Exception):
    """The dry run was refused for a field that cannot change in place: `up` deletes and creates the object."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = f"replaced: {why}"
