"""The lock a service migrates under, held by the database itself and released with the connection (a killed
pod leaves none behind): GET_LOCK on MariaDB/MySQL, the write lock of BEGIN IMMEDIATE on SQLite. The wait is
bounded; a timeout is MigrationLockTimeout."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError

LOCK_PREFIX = "k8sdeploy-migrate-"  # + the database's name: GET_LOCK names are server-wide


class MigrationLockTimeout(Exception):
    """Another process held the migration lock for longer than the wait allowed."""


@contextmanager
def migration_lock(engine: Engine, seconds: float) -> Iterator[Connection]:
    """A connection in a transaction, holding the database's migration lock; committed when the block ends."""
    if engine.dialect.name == "sqlite":
        with sqlite_write_lock(engine, seconds) as connection:
            yield connection
        return
    with engine.connect() as connection:
        name = connection.execute(text("SELECT CONCAT(:prefix, DATABASE())"), {"prefix": LOCK_PREFIX}).scalar()
        got = connection.execute(text("SELECT GET_LOCK(:name, :seconds)"), {"name": name, "seconds": seconds}).scalar()
        connection.commit()
        if got != 1:
            raise MigrationLockTimeout(f"lock {name} still held by another connection after {seconds:.0f}s")
        try:
            with connection.begin():
                yield connection
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            connection.commit()


@contextmanager
def sqlite_write_lock(engine: Engine, seconds: float) -> Iterator[Connection]:
    """BEGIN IMMEDIATE on a connection of its own, with the driver's implicit transactions off: the whole
    migration is one transaction holding SQLite's write lock (its DDL is transactional)."""
    locking = create_engine(engine.url, connect_args={"isolation_level": None, "timeout": seconds})
    try:
        with locking.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except OperationalError as exc:
                if isinstance(exc.orig, sqlite3.OperationalError) and "locked" in str(exc.orig):
                    raise MigrationLockTimeout(
                        f"{engine.url.database} still locked for writing by another process after {seconds:.0f}s"
                    ) from exc
                raise
            try:
                yield connection
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
    finally:
        locking.dispose()
