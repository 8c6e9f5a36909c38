"""What the commands print: progress on stderr (a rich line per image on a terminal, plain lines otherwise), and
with `--output json` one JSON document per command on stdout, described by deploy/schemas/output.schema.json."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.progress import TaskID

    from deploy.publish.bases import PublishedBases
    from deploy.runner import UpResult

from deploy.model.changes import Changes, to_dict
from deploy.model.doctor import Finding
from deploy.model.errors import DeployError
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.progress import Progress
from deploy.model.releases import Release
from deploy.model.schemas import heads, schemas_to_dict
from deploy.model.status import ServiceStatus

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "output.schema.json"
OUTPUTS = ("text", "json")


def dumps(document: Mapping) -> str:
    return json.dumps(document, indent=2) + "\n"


def images(published: Mapping[str, PublishedImage]) -> dict:
    return {name: {**asdict(image), "ref": image.ref} for name, image in published.items()}


def deployed(command: str, result: UpResult, env_name: str) -> dict:
    """`up`, `rollback` and `promote`."""
    return {
        "command": command,
        "result": "ok",
        "environment": env_name,
        "action": result.action,
        "version": result.version,
        "commit": result.commit,
        "layout": result.layout,
        "url": result.url,
        "images": images(result.images),
        "objects_hash": result.objects_hash,
        "applied": asdict(result.applied),
        "smoke": None if result.smoke is None else {"url": result.smoke.url, "checks": list(result.smoke.checks)},
        "durations": dict(result.durations),
        **({"promoted_from": dict(result.promoted_from)} if result.promoted_from else {}),
    }


def unchanged(env_name: str, version: str, promoted_from: Mapping[str, str]) -> dict:
    """`promote` of the release the environment runs already."""
    return {
        "command": "promote",
        "result": "unchanged",
        "environment": env_name,
        "version": version,
        "promoted_from": dict(promoted_from),
    }


def built(record: BuildRecord, env_name: str, durations: Mapping[str, float]) -> dict:
    return {
        "command": "build",
        "result": "ok",
        "environment": env_name,
        "version": record.version,
        "commit": record.commit,
        "images": images(record.images),
        "attached": {name: asdict(attached) for name, attached in record.attached.items()},
        "durations": dict(durations),
    }


def status(
    env_name: str, rows: Sequence[ServiceStatus], release: Release | None = None, drift: Sequence[str] = ()
) -> dict:
    ready = bool(rows) and all(row.ready for row in rows)
    return {
        "command": "status",
        "result": "ok" if ready else "not-ready",
        "environment": env_name,
        "services": [asdict(row) for row in rows],
        "release": None if release is None else release.version,
        "drift": list(drift),
        "schemas": {} if release is None else schemas_to_dict(release.schemas),
    }


def removed(env_name: str, names: Sequence[str]) -> dict:
    return {"command": "down", "result": "ok", "environment": env_name, "removed": list(names)}


def doctor(env_name: str, purpose: str, findings: Sequence[Finding]) -> dict:
    return {
        "command": "doctor",
        "result": "ok" if all(finding.ok for finding in findings) else "lacking",
        "environment": env_name,
        "purpose": purpose,
        "findings": [
            {"check": f.check, "ok": f.ok, "message": f.message, **({"fix": f.fix} if f.fix and not f.ok else {})}
            for f in findings
        ],
    }


def history(env_name: str, releases: Sequence[Release]) -> dict:
    return {
        "command": "history",
        "result": "ok",
        "environment": env_name,
        "releases": [release.to_dict() for release in reversed(releases)],
    }  # newest first


class MovedTag(Protocol):
    """An image whose `latest` tag `release` moved (deploy/publish's Moved)."""

    @property
    def name(self) -> str: ...
    @property
    def repository(self) -> str: ...  # HOST/PATH/NAME
    @property
    def digest(self) -> str: ...  # what `latest` names now
    @property
    def previous(self) -> str | None: ...  # what it named before (None: it did not exist)


def released(env_name: str, version: str, moved: Sequence[MovedTag]) -> dict:
    """`release`: where `latest` of each image points now, and pointed before."""
    return {
        "command": "release",
        "result": "ok",
        "environment": env_name,
        "version": version,
        "images": {
            m.name: {"name": m.name, "repository": m.repository, "digest": m.digest, "previous": m.previous}
            for m in moved
        },
    }


def changes(found: Changes) -> dict:
    """`diff`: what `up` would change."""
    return to_dict(found)


def bases(published: PublishedBases, env_name: str) -> dict:
    """`bases`: where the Debian bases were pushed, and the pins that name them."""
    return published.to_dict(env_name)


def failed(command: str, error: DeployError) -> dict:
    """What `--output json` prints when a command fails with a DeployError (its exit code says why)."""
    document = {
        "command": command,
        "result": "failed",
        "exit_code": int(error.exit_code),
        "error": {"type": type(error).__name__, "message": error.message, "hint": error.hint, "details": error.details},
    }
    restored = getattr(error, "restored", None)
    if restored is not None:
        document["rolled_back_to"] = deployed("rollback", restored, restored.env_name)
    return document


def columns(table: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]


def status_table(rows: Sequence[ServiceStatus]) -> list[str]:
    table = [("SERVICE", "VERSION", "DIGEST", "READY", "REASON")]
    for row in rows:
        name, _, digest = row.image.partition("@")
        version = name.rsplit(":", 1)[-1] if ":" in name.rsplit("/", 1)[-1] else ""
        table.append((row.name, version, digest[:19], "yes" if row.ready else "no", row.reason))
    return columns(table)


def history_table(releases: Sequence[Release]) -> list[str]:
    """Newest first."""
    table = [("VERSION", "COMMIT", "LAYOUT", "ACTION", "TIME", "BY", "OBJECTS", "SCHEMAS")]
    for release in reversed(releases):
        table.append(
            (
                release.version,
                release.commit[:12],
                release.layout,
                release.action + (f" from {release.promoted_from['environment']}" if release.promoted_from else ""),
                release.time,
                release.by,
                release.objects_hash[:19],
                heads(release.schemas),
            )
        )
    return columns(table)


# progress


class PlainProgress:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._lock = threading.Lock()

    def say(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream or sys.stderr, flush=True)

    def step(self, subject: str, message: str) -> None:
        self.say(f"{subject}: {message}")

    def close(self) -> None:
        pass


class RichProgress:
    """A live line per image (spinner, current step, elapsed time)."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import Progress as Live
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self._live = Live(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[subject]:<15}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._live.start()

    def say(self, line: str) -> None:
        self._live.console.print(line, markup=False, highlight=False)

    def step(self, subject: str, message: str) -> None:
        with self._lock:
            if subject not in self._tasks:
                self._tasks[subject] = self._live.add_task(message, subject=subject, total=None)
            self._live.update(self._tasks[subject], description=message)

    def close(self) -> None:
        for task in self._tasks.values():
            self._live.update(task, total=1, completed=1)
        self._live.stop()


def progress_for(stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    return RichProgress(stream) if stream.isatty() else PlainProgress(stream)


# the services' logs under `dev`

COLOURS = ("cyan", "green", "yellow", "magenta", "blue", "red")


def log_printer(stream: TextIO | None = None) -> Callable[[str, str], None]:
    """(service, line) -> a line on stderr behind the service's name, coloured on a terminal."""
    from deploy.model.images import IMAGE_NAMES

    out = stream or sys.stderr
    width = max(map(len, IMAGE_NAMES))
    lock = threading.Lock()

    def emit(service: str, line: str) -> None:
        colour = COLOURS[IMAGE_NAMES.index(service) % len(COLOURS)] if service in IMAGE_NAMES else None
        prefix = f"{service:<{width}} |"
        if out.isatty():
            import click

            prefix = click.style(prefix, fg=colour)
        with lock:
            print(f"{prefix} {line}", file=out, flush=True)

    return emit
