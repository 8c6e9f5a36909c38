"""Pure pieces of the fake Kubernetes API server: Status bodies, selectors, apply merging and conflicts."""

from __future__ import annotations

import copy
import re

from tests.fakes.server import ApiError, Reply

# plural -> (kind, apiVersion, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "namespaces": ("Namespace", "v1", False),
    "nodes": ("Node", "v1", False),
    "configmaps": ("ConfigMap", "v1", True),
    "secrets": ("Secret", "v1", True),
    "services": ("Service", "v1", True),
    "persistentvolumeclaims": ("PersistentVolumeClaim", "v1", True),
    "pods": ("Pod", "v1", True),
    "events": ("Event", "v1", True),
    "deployments": ("Deployment", "apps/v1", True),
    "statefulsets": ("StatefulSet", "apps/v1", True),
    "networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1", True),
}
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def status(code: int, reason: str, message: str, details: dict | None = None) -> Reply:
    """A metav1.Status body, as the API server sends with every error."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return Reply(code, body)


def fail(code: int, reason: str, message: str, details: dict | None = None) -> ApiError:
    return ApiError(status(code, reason, message, details))


def not_found(plural: str, name: str) -> ApiError:
    return fail(404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural})


def dotted(obj: dict, path: str) -> object:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def matches_labels(labels: dict[str, str], selector: str) -> bool:
    """Equality-, set- and existence-based label selectors: a=b, a!=b, a in (x,y), a notin (x), a, !a."""
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", selector or ""):
        term = term.strip()
        if not term:
            continue
        if found := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
            key, op, values = found.group(1), found.group(2), {v.strip() for v in found.group(3).split(",")}
            if (labels.get(key) in values) != (op == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def matches_fields(obj: dict, selector: str) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, value = term.split("=", 1)
        if str(dotted(obj, key)) != value:
            return False
    return True


def merge(base: dict, overlay: dict) -> dict:
    """Maps merge key by key; lists and scalars of the overlay replace (atomic lists)."""
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def leaves(obj: dict, prefix: str = "") -> dict[str, object]:
    """Every owned field path (maps descended, lists atomic) with its value."""
    found: dict[str, object] = {}
    for key, value in obj.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict) and value:
            found.update(leaves(value, path))
        else:
            found[path] = value
    return found


def fields_v1(config: dict) -> dict:
    """The FieldsV1 set of a manager's fields, as in metadata.managedFields (lists are atomic here)."""
    return {f"f:{key}": fields_v1(value) if isinstance(value, dict) else {}
            for key, value in config.items() if key not in ("apiVersion", "kind")}


def drop(obj: dict, path: str) -> None:
    """Forget a manager's field, and the maps it leaves empty (they were only its way to the field)."""
    parts = path.strip(".").split(".")
    trail = [obj]
    for part in parts[:-1]:
        trail.append(trail[-1].get(part, {}))
    trail[-1].pop(parts[-1], None)
    for parent, part, child in reversed(list(zip(trail, parts, trail[1:]))):
        if child == {}:
            parent.pop(part, None)


def conflicts(mine: dict, theirs: dict) -> list[str]:
    """Field paths both set to different values; name and namespace are everyone's."""
    their_leaves = leaves(theirs)
    return [path for path, value in leaves(mine).items()
            if path in their_leaves and their_leaves[path] != value
            and path not in (".metadata.name", ".metadata.namespace", ".apiVersion", ".kind")]


def comparable(obj: dict) -> dict:
    """The object without what the server changes on every write."""
    result = copy.deepcopy(obj)
    for key in SERVER_FIELDS:
        result.get("metadata", {}).pop(key, None)
    result.pop("status", None)
    return result


def pod_spec_change_forbidden(old: dict, new: dict) -> bool:
    """Pods allow only image changes (and a few others) once created."""
    def without_images(spec: dict) -> dict:
        spec = copy.deepcopy(spec)
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            container.pop("image", None)
        return spec
    return without_images(old.get("spec", {})) != without_images(new.get("spec", {}))
