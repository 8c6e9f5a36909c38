"""What an `up` would change, before it changes anything: per image (pushed or there), per object (create,
update, replace, delete, with the fields old -> new) and the drift other field managers left; `diff` prints it
and `up` says it before applying."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.model.images import PublishedImage

# unknown: not compared, because this identity may not read the object (diff as a read-only identity)
ACTIONS = ("create", "update", "replace", "delete", "unchanged", "unknown")
HIDDEN = "(hidden)"  # what a diff shows of a Secret's value
ABSENT = "(none)"
SHOWN = 80  # characters of a value a line shows
SUMMARISED = 3  # field paths a summary line names


@dataclass(frozen=True)
class FieldChange:
    """One leaf: its path (spec.template.spec.containers[name=person].image) and its value before and after
    (None: absent). A Secret's values are never kept: old and new are HIDDEN."""

    path: str
    old: Any = None
    new: Any = None

    def line(self) -> str:
        return f"{self.path}: {shown(self.old)} → {shown(self.new)}"


@dataclass(frozen=True)
class Drift:
    """Fields of one of our objects that another field manager set, and whether `up` takes them back."""

    manager: str
    paths: tuple[str, ...]
    taken_back: bool

    def line(self) -> str:
        verdict = "up takes them back" if self.taken_back else "up leaves them (k8sdeploy does not set them)"
        return f"{self.manager} set {', '.join(self.paths)}: {verdict}"


@dataclass(frozen=True)
class ObjectChange:
    """What `up` would do to one object (Kind/name), or, for a running container, to its pod."""

    kind: str
    name: str
    action: str  # one of ACTIONS
    fields: tuple[FieldChange, ...] = ()
    drift: tuple[Drift, ...] = ()
    note: str = ""  # why (an immutable field, a namespace still to create, ...)
    containers: tuple[str, ...] = ()  # local target: the containers `up` replaces

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"{self.action!r} is not one of {', '.join(ACTIONS)}")

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def changed(self) -> bool:
        return self.action not in ("unchanged", "unknown")

    @property
    def worth_saying(self) -> bool:
        """Changed, or with something to tell (drift, a kept claim, not compared)."""
        return self.changed or self.action == "unknown" or bool(self.drift or self.note)

    def summary(self) -> str:
        """One line: the action, the object and what changes in it."""
        parts = [f"{self.action} {self.ref}"]
        if self.fields:
            paths = [f.path for f in self.fields]
            more = f", and {len(paths) - SUMMARISED} more" if len(paths) > SUMMARISED else ""
            parts.append(", ".join(paths[:SUMMARISED]) + more)
        if self.containers:
            parts.append(f"replaces containers {', '.join(self.containers)}")
        if self.drift:
            parts.append(f"drift by {', '.join(d.manager for d in self.drift)}")
        if self.note:
            parts.append(self.note)
        return ": ".join(parts[:1]) + (" (" + "; ".join(parts[1:]) + ")" if parts[1:] else "")

    def lines(self) -> list[str]:
        return [
            self.summary(),
            *(f"    {f.line()}" for f in self.fields),
            *(f"    drift: {d.line()}" for d in self.drift),
        ]


@dataclass(frozen=True)
class ImagePlan:
    """One of the six images as `up` would publish it: its reference, whether it is there already, and what of
    it is new (every image of a new version has a new config; only changed content brings new layers)."""

    name: str
    image: PublishedImage
    push: bool  # False: the registry (or engine) has it under this tag with this digest
    new_layers: int = 0  # layers the registry's repository (or the engine) lacks
    new_bytes: int = 0  # of the blobs it lacks (the engine: of the whole image, which it loads whole)
    where: str = ""  # the registry HOST/PATH, or the local Docker Engine

    def line(self) -> str:
        short = f"{self.image.tag} ({self.image.digest[:19]})"
        if not self.push:
            return f"image {self.name} {short}: already in {self.where}"
        if not self.new_layers:
            return f"image {self.name} {short}: same layers under a new version, to {self.where}"
        count = f"{self.new_layers} new layer{'s' if self.new_layers != 1 else ''}"
        return f"image {self.name} {short}: changed, {count} ({megabytes(self.new_bytes)}) to {self.where}"


@dataclass(frozen=True)
class Changes:
    """The whole answer of `diff`: the images, the objects and notes (what could not be compared)."""

    env_name: str
    layout: str
    version: str
    images: tuple[ImagePlan, ...] = ()
    objects: tuple[ObjectChange, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return any(image.push for image in self.images) or any(obj.changed for obj in self.objects)

    def lines(self) -> list[str]:
        found = [image.line() for image in self.images]
        found += [line for obj in self.objects if obj.worth_saying for line in obj.lines()]
        found += [f"note: {note}" for note in self.notes]
        return found


def summary(objects: Sequence[ObjectChange]) -> list[str]:
    """The lines `up` says before applying: one per object it changes, one per object with drift."""
    return [obj.summary() for obj in objects if obj.worth_saying]


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def shown(value: Any) -> str:
    """A value on one line: image references as version and short digest, long values cut."""
    if value is None:
        return ABSENT
    if isinstance(value, str):
        if "@sha256:" in value:
            name, _, digest = value.partition("@")
            last = name.rsplit("/", 1)[-1]
            return f"{last} ({digest[:19]})"
        text = value
    else:
        text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def compare(old: Any, new: Any, path: str = "", secret: bool = False) -> Iterator[FieldChange]:
    """The leaves where two JSON values differ. Lists of objects that all have a `name` are matched by name
    (containers, env, ports, volumes, as Kubernetes merges them); other lists by position."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            yield from compare(old.get(key), new.get(key), f"{path}.{key}" if path else str(key), secret)
        return
    if isinstance(old, list) and isinstance(new, list):
        if named(old) and named(new):
            olds, news = {i["name"]: i for i in old}, {i["name"]: i for i in new}
            for name in [*olds, *(n for n in news if n not in olds)]:
                yield from compare(olds.get(name), news.get(name), f"{path}[name={name}]", secret)
            if [i["name"] for i in old if i["name"] in news] != [i["name"] for i in new if i["name"] in olds]:
                yield FieldChange(f"{path} (order)", [i["name"] for i in old], [i["name"] for i in new])
            return
        if len(old) == len(new):
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                yield from compare(a, b, f"{path}[{index}]", secret)
            return
    if old != new:
        if secret:
            yield FieldChange(path, None if old is None else HIDDEN, None if new is None else HIDDEN)
        else:
            yield FieldChange(path, old, new)


def named(items: list) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items)


def to_dict(changes: Changes) -> dict:
    """The JSON document of `diff --output json` (deploy/schemas/output.schema.json)."""
    return {
        "command": "diff",
        "result": "changes" if changes.changed else "no-change",
        "environment": changes.env_name,
        "layout": changes.layout,
        "version": changes.version,
        "images": [
            {
                "name": plan.name,
                "ref": plan.image.ref,
                "push": plan.push,
                "new_layers": plan.new_layers,
                "new_bytes": plan.new_bytes,
                "where": plan.where,
            }
            for plan in changes.images
        ],
        "objects": [object_dict(obj) for obj in changes.objects if obj.worth_saying],
        "notes": list(changes.notes),
    }


def object_dict(obj: ObjectChange) -> dict:
    return {
        "kind": obj.kind,
        "name": obj.name,
        "action": obj.action,
        "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in obj.fields],
        "drift": [{"manager": d.manager, "paths": list(d.paths), "taken_back": d.taken_back} for d in obj.drift],
        "note": obj.note,
        "containers": list(obj.containers),
    }
