"""What a change costs its users, said before it is applied (`up`, `rollback`, `promote`) and by `diff`: whether
every pod it replaces rolls (a replacement ready before an old pod stops, and the old one drained), or which are
stopped first and why, so that users see a gap."""

from __future__ import annotations

from collections.abc import Sequence

from deploy.model.changes import ObjectChange
from deploy.render.layout import Layout, Pod

WORKLOADS = ("Deployment", "StatefulSet", "Pod")
REPLACING = ("update", "replace", "delete")


def replaced_pods(layout: Layout, changes: Sequence[ObjectChange]) -> list[Pod]:
    """The pods of `layout` whose running pods the changes stop: a workload replaced or deleted, or updated in its
    pod template (a Deployment's replicas alone stop nothing that serves)."""
    found = []
    for change in changes:
        if change.kind not in WORKLOADS or change.action not in REPLACING:
            continue
        if (
            change.action == "update"
            and change.fields
            and not any(field.path.startswith("spec.template") for field in change.fields)
        ):
            continue
        pod = next((pod for pod in layout.pods if pod.name == change.name), None)
        if pod is not None and pod not in found:
            found.append(pod)
    return found


def rollout_line(layout: Layout, objects: Sequence[dict], in_place: str, changes: Sequence[ObjectChange]) -> str:
    """One line on what applying `objects` (rendered for `layout`) costs users; "" when it replaces no running pod
    (a first deploy, a change of Services or Secrets only). `in_place`: the target kind's IN_PLACE."""
    replicas = {obj["metadata"]["name"]: obj["spec"].get("replicas", 1) for obj in objects if obj["kind"] in WORKLOADS}
    replaced = replaced_pods(layout, changes)
    if not replaced:
        return ""
    names = ", ".join(pod.name for pod in replaced)
    if in_place:
        replaced_in_place = (
            "is replaced in place; requests fail until it is"
            if len(replaced) == 1
            else ("are replaced in place; requests fail until they are")
        )
        return f"gap: {in_place}, so {names} {replaced_in_place} back"
    stopped = []
    for pod in replaced:
        reasons = layout.recreated(pod)
        if reasons:
            stopped.append(f"{pod.name} ({'; '.join(reasons)})")
        elif pod.kind == "StatefulSet":
            stopped.append(f"{pod.name} (the database server: one replica, restarted in place)")
    if stopped:
        remedy = '; database = "mysql" with split-pods lets the services roll' if layout.storage != "mysql" else ""
        verb = "is stopped before its" if len(stopped) == 1 else "are stopped before their"
        return f"gap: {', '.join(stopped)} {verb} replacement is ready; users see errors for a few seconds{remedy}"
    counts = sorted({replicas.get(pod.name, 1) for pod in replaced})
    each = "replica" if counts == [1] else "replicas"
    return (
        f"no gap: {names} {'rolls' if len(replaced) == 1 else 'roll'} ({'/'.join(map(str, counts))} {each} each, "
        "a new pod ready before an old one leaves its Service and drains)"
    )
