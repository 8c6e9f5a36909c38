"""Compatibility of a database's schema with a service's code: expand and contract steps, recorded in the database.

Each revision file declares `compatibility = "expand"` (the previous release's code still works on the schema it
produces: a new table, a nullable column, an index, rows added) or `"contract"` (it does not: a drop, a rename,
NOT NULL, a type change). Every step applied is recorded in the table `schema_steps` of the database itself, so
that older code, whose scripts do not know the newer revisions, can tell whether it still works: it does when the
database is at its head, or past it through expand steps only.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, MetaData, String, Table, delete, insert, inspect, select

EXPAND = "expand"
CONTRACT = "contract"
MARKS = (EXPAND, CONTRACT)
STEPS = "schema_steps"

steps = Table(
    STEPS,
    MetaData(),
    Column("revision", String(64), primary_key=True),
    Column("down_revision", String(64), nullable=True),
    Column("compatibility", String(16), nullable=False),
    Column("description", String(200), nullable=False, server_default=""),
)


class MissingMark(Exception):
    """A revision file does not say whether it expands or contracts the schema."""


def mark_of(module: ModuleType, revision: str) -> str:
    """The revision's `compatibility`, or MissingMark naming the file and the fix."""
    mark = getattr(module, "compatibility", None)
    if mark not in MARKS:
        raise MissingMark(
            f"migration {revision} ({getattr(module, '__file__', '?')}) has compatibility = {mark!r}: set "
            f'compatibility = "expand" (older code still works on its schema) or "contract" (it does not)'
        )
    return str(mark)


def record_step(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    """Alembic's on_version_apply: record an upgrade step with its mark, forget a step downgraded."""
    connection = ctx.connection
    if step.is_stamp:
        return
    for revision in step.up_revision_ids:
        connection.execute(delete(steps).where(steps.c.revision == revision))
    if step.is_upgrade:
        script = step.up_revision
        down = script.down_revision if isinstance(script.down_revision, str) else None
        connection.execute(
            insert(steps).values(
                revision=script.revision,
                down_revision=down,
                compatibility=mark_of(script.module, script.revision),
                description=(script.doc or "").splitlines()[0][:200] if script.doc else "",
            )
        )


def ensure_steps_table(connection: Connection) -> None:
    if not inspect(connection).has_table(STEPS):
        steps.create(connection)


def known_revisions(scripts: ScriptDirectory) -> set[str]:
    return {script.revision for script in scripts.walk_revisions()}


def recorded(connection: Connection) -> dict[str, tuple[str | None, str, str]]:
    """revision -> (down_revision, compatibility, description) of every step the database recorded."""
    if not inspect(connection).has_table(STEPS):
        return {}
    columns = (steps.c.revision, steps.c.down_revision, steps.c.compatibility, steps.c.description)
    rows = connection.execute(select(*columns))
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def incompatibility(connection: Connection, current: str | None, head: str | None, scripts: ScriptDirectory) -> str:
    """'' when code whose head is `head` works on a database at `current`, else why not (one line)."""
    if current == head:
        return ""
    if current is None:
        return f"database has no schema yet; this code needs revision {head}"
    if current in known_revisions(scripts):
        return f"database at revision {current}, behind this code's head {head}"
    path = path_back(recorded(connection), current, head)
    if path is None:
        return f"database at revision {current}, which this code (head {head}) does not know and cannot reach"
    contracts = [revision for revision, mark in path if mark != EXPAND]
    if contracts:
        return (
            f"database at revision {current}, past contract step {contracts[-1]} of a newer release; this code "
            f"works with {head} and expand steps after it: downgrade the schema or deploy the newer release"
        )
    return ""


def path_back(
    steps_recorded: dict[str, tuple[str | None, str, str]], current: str, head: str | None
) -> list[tuple[str, str]] | None:
    """The (revision, compatibility) steps from `head` (exclusive) up to `current`, or None if not recorded."""
    path = []
    revision: str | None = current
    while revision != head:
        if revision is None or revision not in steps_recorded:
            return None
        down, mark, _ = steps_recorded[revision]
        path.append((revision, mark))
        revision = down
    return list(reversed(path))
