"""Renders kept by what they were made from, so that an `up` with nothing changed does not render again.

A render is a function of the environment's settings, the layout, the images' references, the version and the
code and templates that render: the key is a digest of all of them, the code and templates known by their files'
metadata (path, size, times, inode), as layers are (deploy/builders/layers.py). A render holding a Secret
(the MySQL passwords) is never kept: nothing secret is written to the cache. The newest KEEP renders are kept,
each a file of its own (mode 0600) in cache_home()/renders, written whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.model.cache import CODE, cache_home, made_from, write_json
from deploy.model.environments import Environment
from deploy.model.images import PublishedImage

KEEP = 16
FORMAT = "render v1"  # changed when what is kept changes


@dataclass(frozen=True)
class Kept:
    objects: tuple[dict[str, Any], ...]
    yaml: str


def render_key(
    environment: Environment,
    layout: str,
    images: Mapping[str, PublishedImage],
    version: str,
    sources: Iterable[Path],
) -> str:
    """The digest of what a render is made from; `sources`: the directories of the code and templates."""
    made_of = {
        "format": FORMAT,
        "environment": environment.model_dump(mode="json"),
        "layout": layout,
        "images": {name: image.ref for name, image in sorted(images.items())},
        "version": version,
        "code": made_from(sources),
    }
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()


def code_directories(templates: Path) -> tuple[Path, ...]:
    """What a render runs: k8sdeploy's code (the render code, the settings' defaults, the suite's constants, the
    services' shared settings the gateway's configuration reads) and the templates."""
    return (*CODE, templates)


def directory() -> Path:
    return cache_home() / "renders"


def read(key: str) -> Kept | None:
    try:
        document = json.loads((directory() / f"{key}.json").read_text())
        return Kept(tuple(document["objects"]), document["yaml"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: rendered again
        return None


def keep(key: str, objects: tuple[dict[str, Any], ...], yaml: str) -> None:
    """Write the render under `key`, unless it holds a Secret; then only the newest KEEP stay."""
    if any(obj.get("kind") == "Secret" for obj in objects):
        return
    home = directory()
    try:
        write_json(home / f"{key}.json", {"objects": list(objects), "yaml": yaml})
        kept = sorted(home.glob("*.json"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except (TypeError, ValueError):  # a value JSON cannot hold (a YAML timestamp): rendered each time
        return
    except OSError:  # a cache that cannot be written costs the next run a render, nothing more
        return
