"""A copy of a service's SQLite database before each migration, beside the data (DATA_DIR/backups/), the last
KEEP kept: the way back to the rows as they were, which a downgrade does not give (`restore`, which a rollback
runs with `--restore` or where no downgrade leads back). Each file is named SERVICE-STAMP-BEFORE-to-AFTER.db:
when it was taken, and the revisions of the migration it was taken before. (MariaDB: not yet.)"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

KEEP = 5
DIRECTORY = "backups"


def directory_of(database_url: str) -> Path | None:
    """Where the backups of an SQLite database go; None for other databases (and in-memory ones)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).parent / DIRECTORY


def back_up(database_url: str, service: str, before: str | None, after: str | None) -> Path | None:
    """Copy the database (SQLite's online backup: consistent while others read) as it is before migrating from
    `before` to `after`; the copy's path, or None where there is nothing to copy or no SQLite file."""
    directory = directory_of(database_url)
    if directory is None or before is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}Z"
    target = directory / f"{service}-{stamp}-{before}-to-{after}.db"
    source = sqlite3.connect(str(make_url(database_url).database))
    copy = sqlite3.connect(str(target))
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    for old in listed(database_url, service)[:-KEEP]:
        old.unlink()
    return target


def listed(database_url: str, service: str) -> list[Path]:
    """The backups of `service`, oldest first."""
    directory = directory_of(database_url)
    if directory is None or not directory.is_dir():
        return []
    return sorted(directory.glob(f"{service}-*.db"))


@dataclass(frozen=True)
class Backup:
    path: Path
    taken: str  # UTC, as in the name: 20261202T073004.123456Z
    before: str  # the revision the database was at
    after: str  # the revision the migration was going to


NAME = re.compile(r"^(?P<service>[a-z]+)-(?P<taken>\d{8}T\d{6}\.\d{6}Z)-(?P<before>.+)-to-(?P<after>.+)\.db$")


def described(path: Path) -> Backup | None:
    found = NAME.match(path.name)
    return Backup(path, found["taken"], found["before"], found["after"]) if found else None


class NoBackup(Exception):
    """No copy was kept of the database at the revision asked for."""


def restore(database_url: str, service: str, revision: str, connection: Connection) -> Backup:
    """Put back the newest copy taken while the database was at `revision` (before a migration from it), through
    `connection`, which holds the migration lock (services/common/migration_lock.py: BEGIN IMMEDIATE, so no other
    process writes meanwhile). Every row written since that copy is replaced by the copy's."""
    kept = [b for b in map(described, listed(database_url, service)) if b is not None and b.before == revision]
    if not kept:
        raise NoBackup(f"no copy of {service}'s database was kept at revision {revision}")
    chosen = kept[-1]
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        raise NoBackup(f"{service}'s database is not SQLite: its backups are not kept here")
    copy = sqlite3.connect(str(chosen.path))
    try:
        # SQLite's backup needs no transaction open on its target and writes the whole file under a write lock of
        # its own: the lock's transaction ends for that moment and starts again for the lock's COMMIT
        raw.execute("COMMIT")
        copy.backup(raw)
        raw.execute("BEGIN IMMEDIATE")
    finally:
        copy.close()
    return chosen
