"""What a saved file asks of `dev`: restart the services whose code it is, reload the gateway (its Lua, or its
nginx.conf rendered again), or rebuild (a lock file); anything else outside the suite is left alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deploy.targets.local.mounts import SERVICE_NAMES

IGNORED_PARTS = {".git", "__pycache__", ".k8sdeploy", ".venv", "node_modules", ".mypy_cache", ".ruff_cache"}
IGNORED_SUFFIXES = (".pyc", ".swp", ".swx", "~", ".tmp")
REBUILD = ("requirements/app.lock", "services/__init__.py")  # what lives in the images only


@dataclass(frozen=True)
class Actions:
    """What to do for one batch of saved files."""

    restart: frozenset[str] = frozenset()  # services whose process starts again (code, templates, migrations)
    reload: bool = False  # the gateway's Lua changed: nginx -s reload
    reconfigure: bool = False  # the gateway's nginx.conf template changed: render it again, then reload
    rebuild: tuple[str, ...] = ()  # files that only a new image carries: `up` again

    def __bool__(self) -> bool:
        return bool(self.restart or self.reload or self.reconfigure or self.rebuild)

    def describe(self) -> str:
        parts = [f"restart {', '.join(sorted(self.restart))}"] if self.restart else []
        parts += ["render nginx.conf"] if self.reconfigure else []
        parts += ["reload the gateway"] if self.reload or self.reconfigure else []
        parts += [f"rebuild ({', '.join(self.rebuild)})"] if self.rebuild else []
        return "; ".join(parts)


def ignored(relative: Path) -> bool:
    return bool(IGNORED_PARTS & set(relative.parts)) or relative.name.endswith(IGNORED_SUFFIXES)


def actions_for(paths: Iterable[Path], checkout: Path) -> Actions:
    restart: set[str] = set()
    reload = reconfigure = False
    rebuild: list[str] = []
    root = checkout.resolve()
    for path in paths:
        try:
            relative = Path(path).resolve().relative_to(root)
        except ValueError:
            continue
        if ignored(relative):
            continue
        parts, name = relative.parts, relative.as_posix()
        if name in REBUILD:
            rebuild.append(name)
        elif parts[:2] == ("services", "common"):
            restart.update(SERVICE_NAMES)
        elif parts[0] == "suitekit":  # the services' hashing (mounted); the gateway's burst takes a new `dev`
            restart.update(SERVICE_NAMES)
        elif len(parts) > 2 and parts[0] == "services" and parts[1] in SERVICE_NAMES:
            restart.add(parts[1])
        elif parts[:2] == ("nginx-lua", "lua"):
            reload = True
        elif parts[0] == "nginx-lua" and relative.suffix == ".j2":
            reconfigure = True
    return Actions(frozenset(restart), reload, reconfigure, tuple(sorted(set(rebuild))))
