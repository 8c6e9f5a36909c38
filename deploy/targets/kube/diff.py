"""What an apply would change on a Kubernetes API, as the API server itself answers it: the same server-side
apply as our field manager with dryRun=All, compared with the live object; nothing is written."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from deploy.model.changes import Drift, FieldChange, ObjectChange, compare, named
from deploy.model.errors import KubeApiError
from deploy.targets.kube import APPLIED, KINDS, NAMESPACE, PVC, SECRET, kind_of
from deploy.targets.kube.apply import (
    IMMUTABLE,
    Applier,
    defaulted_rolling_update_in_the_way,
    needs_apply,
    refused,
)
from deploy.targets.kube.client import together
from deploy.targets.kube.edits import edited_fields, hand_edits

# What every write changes, or the server alone sets: not a change anyone asked for.
VOLATILE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
SECRET_VALUES = ("data", "stringData")


def comparable(obj: Mapping) -> dict:
    """The object without its status, the metadata every write changes, and our digest annotation."""
    obj = {key: copy.deepcopy(value) for key, value in obj.items() if key != "status"}
    meta = obj.get("metadata") or {}
    for key in VOLATILE:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop(APPLIED, None)
    if not annotations:
        meta.pop("annotations", None)
    return obj


def changed_fields(old: Mapping, new: Mapping, secret: bool) -> tuple[FieldChange, ...]:
    """The leaves that differ; a Secret's values are compared but never shown."""
    if not secret:
        return tuple(compare(old, new))

    def bare(side: Mapping) -> dict:
        return {key: value for key, value in side.items() if key not in SECRET_VALUES}

    found = list(compare(bare(old), bare(new)))
    for key in SECRET_VALUES:
        found += compare(old.get(key), new.get(key), key, secret=True)
    return tuple(found)


def shaped_like(live: Any, rendered: Any) -> Any:
    """`live` cut down to the fields `rendered` has, so what the API server defaulted is not called a change."""
    if isinstance(live, Mapping) and isinstance(rendered, Mapping):
        return {key: shaped_like(live.get(key), value) for key, value in rendered.items()}
    if isinstance(live, list) and isinstance(rendered, list) and named(live) and named(rendered):
        by_name = {item["name"]: item for item in live}
        return [shaped_like(by_name.get(item["name"]), item) for item in rendered if item["name"] in by_name]
    return live


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
    digest that skips an unchanged object, conflicts, immutable fields, prune), each write a dry run."""

    def __init__(self, applier: Applier):
        self.applier = applier

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]:
        applier = self.applier
        desired = sorted((applier.prepare(obj) for obj in objects), key=lambda o: KINDS.index(kind_of(o)))
        applier.require_secrets(desired)
        found: list[ObjectChange] = []
        namespace = applier.api.get(NAMESPACE, "", applier.namespace)
        applier.readings.clear()
        applier.survey(desired, namespace_exists=namespace is not None)
        if namespace is None:
            note = "the API server checks its objects once it exists"
            found.append(ObjectChange(NAMESPACE.kind, applier.namespace, "create", note=note))
        # each object's dry run is independent of the others': side by side
        found += together([partial(self.one, obj, namespace is not None) for obj in desired])
        for kind, live in applier.stale({(kind_of(obj), obj["metadata"]["name"]) for obj in desired}):
            name = live["metadata"]["name"]
            if kind == PVC:
                found.append(ObjectChange(kind.kind, name, "unchanged", note="no longer rendered, kept: it holds data"))
            else:
                found.append(ObjectChange(kind.kind, name, "delete", note="not in this render (prune)"))
        return tuple(found)

    def one(self, obj: dict, dry_run: bool) -> ObjectChange:
        applier, kind, name = self.applier, kind_of(obj), obj["metadata"]["name"]
        live = applier.live(obj, keep=True)
        if live is None:
            if dry_run:
                self.dry_run(obj, ())
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
        fields = changed_fields(comparable(live), comparable(after), secret)
        return ObjectChange(kind.kind, name, "update" if fields else "unchanged", fields, tuple(drift_of(live, after)))

    def dry_run(self, obj: dict, edits: tuple[str, ...]) -> dict:
        """The object as the API server would store it; refused as `up` would be refused."""
        try:
            return self.applier.server_side_apply(kind_of(obj), obj, edits, dry_run=True)
        except KubeApiError as exc:
            if exc.status == 422 and IMMUTABLE.search(exc.body or ""):
                raise _Immutable(exc.api_message) from None
            raise refused(obj, exc) from None


class _Immutable(Exception):
    """The dry run was refused for a field that cannot change in place: `up` deletes and creates the object."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = f"replaced: {why}"
