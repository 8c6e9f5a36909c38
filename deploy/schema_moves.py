"""Schemas across a rollback: what `rollback` does to each database before the older release is applied (a downgrade
or a restore of the copy kept before a migration, run in the running image), and the copies `backups` lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deploy.model.errors import ApplyError, SchemaRollbackError
from deploy.model.progress import Say
from deploy.model.releases import Release
from deploy.model.schemas import SERVICES_WITH_DATA, Move, plan_rollback
from deploy.targets import Target


def take_back(
    target: Target, releases: Sequence[Release], release: Release, say: Say, restore: bool = False
) -> tuple[str, ...]:
    """Before the older `release` is applied: each database's schema within what its code works with. A
    downgrade or a restore runs in the running (newer) image, the only one that knows the way back; each step
    is said first. A schema with no way back stops the rollback before anything is applied."""
    running = releases[-1] if releases else None
    if running is None or not running.schemas or not release.schemas:
        say("schemas: not recorded for both releases, so not compared")
        return ()
    moves = plan_rollback(running.schemas, release.schemas, release.version, restore)
    for move in moves:
        say(move.line)
    for move in moves:
        if move.action == "impossible":
            raise SchemaRollbackError(
                move.line,
                "roll back with --restore to put back the copy kept before its migration, or deploy a release "
                "whose migrations lead from the running one",
            )
    for move in moves:
        if move.action in ("downgrade", "restore") and move.revision:
            run_schema_command(target, move, say)
    return tuple(move.line for move in moves)


def run_schema_command(target: Target, move: Move, say: Say) -> None:
    assert move.revision is not None
    command = ("python3", "-m", "services.common.migrate", move.service, move.action, move.revision)
    code, output = target.run_in(move.service, command)
    if code != 0:
        what = "downgrade" if move.action == "downgrade" else "restore"
        hint = "read its output below; nothing of the older release was applied"
        if code == 3:
            hint = "`k8sdeploy backups` lists the copies kept; roll back without --restore to downgrade instead"
        raise SchemaRollbackError(
            f"the {what} of {move.service}'s schema to {move.revision} failed (exit {code})", hint, output[-4000:]
        )
    say(f"schema of {move.service}: {'restored, ' if move.action == 'restore' else ''}at {move.revision}")


@dataclass(frozen=True)
class Backup:
    """A copy of a service's database kept before a migration (services/common/backup.py)."""

    service: str
    path: str  # in the service's data volume
    size: int  # bytes
    taken: str  # UTC, ISO 8601
    before: str  # the revision it was at
    after: str  # the revision the migration went to
    release: str  # the version whose `up` migrated ("" when the history does not say)


def iso_time(stamp: str) -> str:
    """20261202T073004.123456Z -> 2026-12-02T07:30:04Z, as releases record their time."""
    if len(stamp) < 15:
        return stamp
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


def migrated_by(releases: Sequence[Release], service: str, taken: str, after: str) -> str:
    """The first release recorded at or after `taken` whose schema of `service` has `after` as its head: the
    `up` whose start-up migration took the copy."""
    for release in releases:
        schema = release.schemas.get(service)
        if release.time >= taken and schema is not None and schema.head == after:
            return release.version
    return ""


def backups(target: Target, releases: Sequence[Release]) -> list[Backup]:
    """Each copy the running services kept before migrating, oldest first, with the release that migrated."""
    found = []
    for service in sorted(SERVICES_WITH_DATA):
        code, output = target.run_in(service, ("python3", "-m", "services.common.migrate", service, "backups"))
        if code != 0:
            raise ApplyError(f"listing the backups of {service} failed (exit {code})", "see `k8sdeploy logs`", output)
        for line in output.splitlines():
            fields = line.split("\t")
            if len(fields) == 5 and fields[1].isdigit():
                path, size, taken, before, after = fields
                made_by = migrated_by(releases, service, iso_time(taken), after)
                found.append(Backup(service, path, int(size), iso_time(taken), before, after, made_by))
    return found
