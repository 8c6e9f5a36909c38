"""Database start-up for a service: wait until reachable (bounded), migrate to head, report readiness."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from tenacity import RetryError, Retrying, stop_after_delay, wait_exponential

from .config import ServiceConfig

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
    return create_engine(url, pool_pre_ping=True, pool_recycle=1800, connect_args={"connect_timeout": 5})


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
    def head(self) -> str | None:
        return ScriptDirectory.from_config(self.config()).get_current_head()

    def upgrade(self, engine: Engine) -> None:
        with engine.begin() as connection:
            command.upgrade(self.config(connection), "head")

    def current(self, engine: Engine) -> str | None:
        with engine.connect() as connection:
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
        """Wait for the database, then migrate it to the latest version."""
        self.prepare_sqlite_directory()
        wait_for_database(self.engine, self.config.db_wait_seconds)
        before = self.migrations.current(self.engine)
        self.migrations.upgrade(self.engine)
        after = self.migrations.current(self.engine)
        if before == after:
            log.info("database %s is at %s, nothing to migrate", self.config.database_display, after)
        else:
            log.info("database %s migrated from %s to %s", self.config.database_display, before, after)

    def readiness(self) -> str | None:
        """None when the database answers and is at head, else why not."""
        try:
            current = self.migrations.current(self.engine)
        except Exception as exc:  # noqa: BLE001 - any driver error means not ready
            return f"database unreachable: {str(exc).splitlines()[0]}"
        if current != self._head:
            return f"database at revision {current}, expected {self._head}"
        return None
