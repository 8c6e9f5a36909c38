"""Hand edits: fields of k8sdeploy's objects that another field manager changed (kubectl edit, patch, scale).

The API server records who set each field (metadata.managedFields). k8sdeploy applies as the one
manager `k8sdeploy`; controllers write status through its subresource, annotate metadata (a
Deployment's revision), and the cluster's own controllers fill in some spec fields (the volume a
claim is bound to). Any other manager owning a field outside metadata and status changed the
object by hand. Objects made by controllers (with ownerReferences, like a Deployment's pods) are
not k8sdeploy's to judge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from deploy.targets.kube import KINDS, MANAGER, describe, owner_selector
from deploy.targets.kube.scoped import Scoped

# Field managers of the cluster itself (Kubernetes' and GKE's controllers, and KWOK, which stands in for
# the kubelets and the volume provisioner of a simulated cluster and binds claims), never a hand edit.
SYSTEM_MANAGERS = ("kube-controller-manager", "cloud-controller-manager", "kube-scheduler", "kubelet", "glbc", "kwok")
SYSTEM_PREFIXES = ("gke-", "system:")


def field_paths(fields: dict, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the leaves of a FieldsV1 set: f:spec/f:replicas -> spec.replicas,
    k:{"name":"person"} -> [name=person], v:"x" -> [x]."""
    for key, below in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            path = f"{prefix}.{key[2:]}" if prefix else key[2:]
        elif key.startswith("k:"):
            path = prefix + "[" + ",".join(f"{k}={v}" for k, v in json.loads(key[2:]).items()) + "]"
        else:
            path = f"{prefix}[{key[2:]}]"
        inner = {k: v for k, v in (below or {}).items() if k != "."}
        yield from field_paths(inner, path) if inner else [path]


def by_others(live: dict) -> Iterator[tuple[str, dict]]:
    """(manager, FieldsV1 outside metadata and status) of each entry of managedFields but ours and the cluster's."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager") or ""
        if (
            manager in (MANAGER, *SYSTEM_MANAGERS)
            or manager.startswith(SYSTEM_PREFIXES)
            or entry.get("subresource") == "status"
        ):
            continue
        fields = {k: v for k, v in (entry.get("fieldsV1") or {}).items() if k not in ("f:metadata", "f:status")}
        yield manager or "an unnamed manager", fields


def edited_fields(live: dict) -> dict[str, tuple[str, ...]]:
    """Manager -> the paths it owns outside metadata and status, for each manager but ours and the cluster's."""
    found: dict[str, tuple[str, ...]] = {}
    for manager, fields in by_others(live):
        paths = list(field_paths(fields))
        if paths:
            found[manager] = tuple(sorted({*found.get(manager, ()), *paths}))
    return found


def hand_edits(live: dict) -> tuple[str, ...]:
    """'MANAGER set PATH, ...' for each other manager owning fields outside metadata and status."""
    return tuple(f"{manager} set {', '.join(paths)}" for manager, paths in edited_fields(live).items())


class Edits(Scoped):
    """The hand edits of one environment's objects, one line per edited object."""

    def lines(self) -> tuple[str, ...]:
        lines = []
        for _kind, live in self.api.each(KINDS, self.namespace, owner_selector(self.env_name)):
            if live["metadata"].get("ownerReferences"):
                continue
            edits = hand_edits(live)
            if edits:
                lines.append(f"{describe(live)} was changed by hand: {'; '.join(edits)}")
        return tuple(lines)
