"""Database start-up for a service: wait until reachable (bounded), migrate to head under the database's own lock,
report readiness: ready at head, or past it through expand steps only (services/common/schema.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from tenacity import RetryError, Retrying, stop_after_delay, wait_exponential

from .backup import back_up
from .config import ServiceConfig, env_int
from .migration_lock import migration_lock
from .schema import incompatibility, known_revisions

log = logging.getLogger(__name__)


class DatabaseUnreachable(Exception):
    """The database did not answer within the configured wait."""


def create_db_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:  # DB-API objects
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # READ COMMITTED: InnoDB then takes no gap locks for plain writes, the usual cause of deadlocks between a range
    # delete and inserts; no service relies on repeatable reads across statements
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
        isolation_level="READ COMMITTED",
        connect_args={"connect_timeout": 5},
    )


def wait_for_database(engine: Engine, seconds: float) -> None:
    """Retry `SELECT 1` with exponential backoff until it works or `seconds` have passed."""
    attempts = Retrying(
        stop=stop_after_delay(seconds),
        wait=wait_exponential(multiplier=0.2, max=5),
        reraise=False,
    )
    try:
        for attempt in attempts:
            with attempt:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        reason = str(cause).splitlines()[0] if cause else "no answer"
        raise DatabaseUnreachable(reason) from cause


@dataclass(frozen=True)
class Migrations:
    """A service's Alembic scripts, run programmatically (no alembic.ini)."""

    directory: Path

    def config(self, connection=None) -> Config:  # noqa: ANN001 - SQLAlchemy Connection
        cfg = Config()
        cfg.set_main_option("script_location", str(self.directory))
        cfg.attributes["connection"] = connection
        return cfg

    @property
    def scripts(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.config())

    @property
    def head(self) -> str | None:
        return self.scripts.get_current_head()

    def upgrade(self, engine: Engine) -> None:
        with engine.begin() as connection:
            command.upgrade(self.config(connection), "head")

    def upgrade_on(self, connection: Connection, revision: str = "head") -> None:
        """Migrate on `connection`, which is in a transaction (and holds the migration lock)."""
        command.upgrade(self.config(connection), revision)

    def downgrade_on(self, connection: Connection, revision: str) -> None:
        command.downgrade(self.config(connection), revision)

    def current(self, engine: Engine) -> str | None:
        with engine.connect() as connection:
            return revision_of(connection)


def revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


class Database:
    """A service's engine, session factory and migrations, ready to start and to be probed."""

    def __init__(self, config: ServiceConfig, migrations: Migrations):
        self.config = config
        self.migrations = migrations
        self.engine = create_db_engine(config.database_url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._head = migrations.head

    def prepare_sqlite_directory(self) -> None:
        url = make_url(self.config.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Wait for the database, then migrate it to the latest version: a lock-free look first (at head, or
        ahead of it, nothing to do), then under the database's migration lock, looking again once it is held."""
        self.prepare_sqlite_directory()
        wait_for_database(self.engine, self.config.db_wait_seconds)
        before = self.migrations.current(self.engine)
        if not self.behind(before):
            self.say_where(before)
            return
        with migration_lock(self.engine, self.lock_seconds) as connection:
            locked = revision_of(connection)
            if self.behind(locked):
                kept = back_up(self.config.database_url, self.config.name, locked, self._head)
                if kept:
                    log.info("database %s copied to %s before migrating", self.config.database_display, kept)
                self.migrations.upgrade_on(connection)
            after = revision_of(connection)
        if locked != before:
            log.info("database %s was migrated by another process while this one waited", self.config.database_display)
        if locked == after:
            self.say_where(after)
        else:
            log.info("database %s migrated from %s to %s", self.config.database_display, locked, after)

    @property
    def lock_seconds(self) -> float:
        """How long to wait for another process's migration (MIGRATION_LOCK_SECONDS, default 60)."""
        return float(env_int("MIGRATION_LOCK_SECONDS", 60))

    def behind(self, revision: str | None) -> bool:
        """The database needs this code's migrations: no schema yet, or a revision before this code's head."""
        return revision != self._head and (revision is None or revision in known_revisions(self.migrations.scripts))

    def say_where(self, revision: str | None) -> None:
        if revision == self._head:
            log.info("database %s is at %s, nothing to migrate", self.config.database_display, revision)
            return
        reason = self.readiness()
        log.warning(
            "database %s is at %s, ahead of this code's head %s: %s",
            self.config.database_display,
            revision,
            self._head,
            reason or "expand steps only, so this code works with it",
        )

    def readiness(self) -> str | None:
        """None when the database answers and this code works with its revision (its head, or a later one
        reached through expand steps only), else why not."""
        try:
            with self.engine.connect() as connection:
                current = revision_of(connection)
                if current == self._head:
                    return None
                return incompatibility(connection, current, self._head, self.migrations.scripts) or None
        except Exception as exc:  # noqa: BLE001 - any driver error means not ready
            return f"database unreachable: {str(exc).splitlines()[0]}"
