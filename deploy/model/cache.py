"""Where k8sdeploy keeps what it can make again between runs: built layers, dependency trees, base images, compiled
templates. $K8SDEPLOY_CACHE, else $XDG_CACHE_HOME/k8sdeploy (default ~/.cache/k8sdeploy)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

# k8sdeploy's own code: its package, and the library it shares with the services (the gateway's login burst)
CODE = (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[2] / "suitekit")


def cache_home() -> Path:
    if os.environ.get("K8SDEPLOY_CACHE"):
        return Path(os.environ["K8SDEPLOY_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "k8sdeploy"


def files_metadata(directories: Iterable[Path]) -> list[tuple[str, int, int, int, int]]:
    """(path, size, modification and change times, inode) of every file under `directories` but compiled Python:
    what a result made from them is known by, as a layer is by its inputs (deploy/builders/layers.py)."""
    found = []
    for directory in directories:
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames[:] = sorted(name for name in dirnames if name != "__pycache__")
            for name in sorted(filenames):
                stat = os.stat(os.path.join(dirpath, name))
                found.append(
                    (os.path.join(dirpath, name), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
                )
    return found


def made_from(directories: Iterable[Path]) -> str:
    """A digest of files_metadata(directories)."""
    return hashlib.sha256(repr(files_metadata(directories)).encode()).hexdigest()


def write_json(path: Path, value: object) -> None:
    """`value` as JSON at `path`, written whole or not at all: into a temporary file beside it (mode 0600), then
    renamed over it, so that readers never see half a file and writers side by side each leave a whole one."""
    text = json.dumps(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)  # gone already once renamed
