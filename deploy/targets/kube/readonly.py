"""What a server-side apply would change, judged without the API server (an identity that may read but not
dry-run): the fields the render sets against the live object, and the fields our field manager owns
(metadata.managedFields) that the render no longer sets, which the apply removes.

The live object has what the API server defaulted beside ours; only the fields the render sets are compared, so
defaults are not called changes, and quantities are compared as quantities ("0.5" and "500m" are one CPU half).
Server-side apply semantics: https://kubernetes.io/docs/reference/using-api/server-side-apply/ (a field the
applier owned and no longer applies is removed; a field another manager owns with another value is taken back
by a forced apply, one set to the same value is shared)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from deploy.model.changes import HIDDEN, Drift, FieldChange, compare, named
from deploy.targets.kube import APPLIED, MANAGER
from deploy.targets.kube.edits import by_others

# What every write changes, or the server alone sets: not a change anyone asked for.
VOLATILE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
SECRET_VALUES = ("data", "stringData")
QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
SUFFIXES = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6", "G": "1e9", "T": "1e12"}
SUFFIXES |= {"P": "1e15", "E": "1e18"}
SUFFIXES |= {suffix: str(1024**power) for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)}
QUANTITIES = ("requests", "limits", "capacity")  # parents of quantity leaves (resources, a claim's storage)
ABSENT = object()


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


def quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    found = QUANTITY.match(str(value))
    try:
        return Decimal(found.group(1)) * Decimal(SUFFIXES[found.group(2) or ""]) if found else None
    except InvalidOperation:
        return None


def shaped_like(live: Any, rendered: Any, parent: str = "") -> Any:
    """`live` cut down to the fields `rendered` has, so what the API server defaulted is not called a change; a
    quantity the API server wrote in its own form (1 -> "1", "0.5" -> "500m") as rendered."""
    if isinstance(live, Mapping) and isinstance(rendered, Mapping):
        return {key: shaped_like(live.get(key), value, key) for key, value in rendered.items()}
    if isinstance(live, list) and isinstance(rendered, list):
        if named(live) and named(rendered):
            by_name = {item["name"]: item for item in live}
            return [shaped_like(by_name.get(item["name"]), item) for item in rendered if item["name"] in by_name]
        if len(live) == len(rendered):  # matched by position, as compare() does
            return [shaped_like(old, new) for old, new in zip(live, rendered, strict=True)]
    if parent in QUANTITIES and live != rendered and None is not quantity(live) == quantity(rendered):
        return rendered
    return live


def owned(fields: Mapping, rendered: Any, live: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, value in the render or ABSENT, live value) of each leaf of a FieldsV1 set, paths as
    edits.field_paths writes them. A list item is matched by its key fields; one the render leaves to the API
    server's default (a port's protocol) matches."""
    for key, below in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            name = key[2:]
            here = f"{path}.{name}" if path else name
            new = rendered.get(name, ABSENT) if isinstance(rendered, Mapping) else ABSENT
            new = ABSENT if new == [] else new  # stored as none (without_empty_lists)
            old = live.get(name) if isinstance(live, Mapping) else None
        elif key.startswith("k:"):
            keys = json.loads(key[2:])
            here = path + "[" + ",".join(f"{k}={v}" for k, v in keys.items()) + "]"
            new = item_with(rendered, keys, defaulted=True)
            old = item_with(live, keys)
        else:  # v: a set's value; i: a position (atomic lists are owned whole, as a leaf)
            here = f"{path}[{key[2:]}]"
            value = json.loads(key[2:])
            new = value if key.startswith("v:") and isinstance(rendered, list) and value in rendered else ABSENT
            old = value
        inner = {k: v for k, v in (below or {}).items() if k != "."}
        if inner and new is not ABSENT:
            yield from owned(inner, new, None if old is ABSENT else old, here)
        else:
            yield here, new, None if old is ABSENT else old


def without_empty_lists(value: Any) -> Any:
    """The API server stores an empty list as none: an apply of `env: []` removes the list."""
    if isinstance(value, Mapping):
        return {key: without_empty_lists(inner) for key, inner in value.items() if inner != []}
    if isinstance(value, list):
        return [without_empty_lists(inner) for inner in value]
    return value


def item_with(items: Any, keys: Mapping, defaulted: bool = False) -> Any:
    """The item of a list whose key fields are `keys` (`defaulted`: or absent), else ABSENT."""
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and all(item.get(k, v if defaulted else ABSENT) == v for k, v in keys.items()):
            return item
    return ABSENT


def ours(live: Mapping) -> dict:
    """Our field manager's FieldsV1 of its applies."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == MANAGER and entry.get("operation") == "Apply" and not entry.get("subresource"):
            return entry.get("fieldsV1") or {}
    return {}


def changes(live: dict, obj: dict, secret: bool) -> tuple[FieldChange, ...]:
    """What applying `obj` changes in `live`: the values the render sets otherwise, and the fields the render
    no longer sets that our manager owned (removed by the apply)."""
    rendered = without_empty_lists(comparable(obj))
    found = [  # an empty map set where there is none is no change either
        change
        for change in changed_fields(shaped_like(comparable(live), rendered), rendered, secret)
        if not (change.old is None and change.new == {})
    ]
    for path, new, old in owned(ours(live), obj, live):  # as they are: both bear the digest annotation
        if new is ABSENT and old is not None:
            hidden = secret and path.split(".")[0] in SECRET_VALUES
            found.append(FieldChange(path, HIDDEN if hidden else old, None))
    return tuple(found)


def drift(live: dict, obj: dict) -> Iterator[Drift]:
    """Each other manager's fields: taken back where the render sets them otherwise, left where it does not set
    them or sets them alike (then both own them)."""
    for manager, fields in by_others(live):
        taken: list[str] = []
        left: list[str] = []
        for path, new, old in owned(fields, obj, live):
            differs = new is not ABSENT and shaped_like(old, new) != new
            (taken if differs else left).append(path)
        if taken:
            yield Drift(manager, tuple(sorted(taken)), taken_back=True)
        if left:
            yield Drift(manager, tuple(sorted(left)), taken_back=False)
