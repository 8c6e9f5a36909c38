"""`--output json`: one JSON document per command on stdout, described by deploy/schemas/output.schema.json."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

from deploy.model.errors import DeployError
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.releases import Release
from deploy.model.status import ServiceStatus

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "output.schema.json"
OUTPUTS = ("text", "json")


def dumps(document: Mapping) -> str:
    return json.dumps(document, indent=2) + "\n"


def images(published: Mapping[str, PublishedImage]) -> dict:
    return {name: {**asdict(image), "ref": image.ref} for name, image in published.items()}


def deployed(command: str, result, environment: str) -> dict:  # noqa: ANN001 - pipeline.UpResult
    """`up` and `rollback`."""
    return {
        "command": command, "result": "ok", "environment": environment, "action": result.action,
        "version": result.version, "commit": result.commit, "layout": result.layout, "url": result.url,
        "images": images(result.images), "objects_hash": result.objects_hash,
        "applied": asdict(result.applied),
        "smoke": None if result.smoke is None else {"url": result.smoke.url, "checks": list(result.smoke.checks)},
        "durations": dict(result.durations),
    }


def built(record: BuildRecord, environment: str, durations: Mapping[str, float]) -> dict:
    return {"command": "build", "result": "ok", "environment": environment, "version": record.version,
            "commit": record.commit, "images": images(record.images), "durations": dict(durations)}


def status(environment: str, rows: Sequence[ServiceStatus], release: Release | None = None,
           drift: Sequence[str] = ()) -> dict:
    ready = bool(rows) and all(row.ready for row in rows)
    return {"command": "status", "result": "ok" if ready else "not-ready", "environment": environment,
            "services": [asdict(row) for row in rows], "release": None if release is None else release.version,
            "drift": list(drift)}


def removed(environment: str, names: Sequence[str]) -> dict:
    return {"command": "down", "result": "ok", "environment": environment, "removed": list(names)}


def history(environment: str, releases: Sequence[Release]) -> dict:
    return {"command": "history", "result": "ok", "environment": environment,
            "releases": [release.to_dict() for release in reversed(releases)]}  # newest first


def failed(command: str, error: DeployError) -> dict:
    """What `--output json` prints when a command fails with a DeployError (its exit code says why)."""
    document = {"command": command, "result": "failed", "exit_code": int(error.exit_code),
                "error": {"type": type(error).__name__, "message": error.message, "hint": error.hint,
                          "details": error.details}}
    restored = getattr(error, "restored", None)
    if restored is not None:
        document["rolled_back_to"] = deployed("rollback", restored, restored.environment)
    return document
