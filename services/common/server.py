"""Start a service: read its settings, wait for and migrate its database, then serve."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI

from . import config as config_module
from .app import configure_logging
from .draining import KEEP_ALIVE_SECONDS, DrainingServer

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

# Exit codes of a service process, documented in docs/configuration.md.
EXIT_CONFIG = 2
EXIT_PORT = 3  # uvicorn's own: it could not bind its port
EXIT_DATABASE_UNREACHABLE = 4
EXIT_MIGRATION = 5  # another process kept the migration lock too long, or a migration has no compatibility mark


def start_database(config: config_module.ServiceConfig, migrations: Path) -> Database:
    """The service's database, reachable and at the latest migration, or exit 4 with one line. SQLAlchemy and
    Alembic are imported here, so that a service without data (frontend) starts without them."""
    from .db import Database, DatabaseUnreachable, Migrations
    from .migration_lock import MigrationLockTimeout
    from .schema import MissingMark

    database = Database(config, Migrations(migrations))
    try:
        database.start()
    except DatabaseUnreachable as exc:
        log.error(
            "database %s unreachable after %.0fs (%s); check DATABASE_URL/DATABASE_PATH "
            "and that the server is running, or raise DB_WAIT_SECONDS",
            config.database_display,
            config.db_wait_seconds,
            exc,
        )
        sys.exit(EXIT_DATABASE_UNREACHABLE)
    except MigrationLockTimeout as exc:
        log.error(
            "database %s: waited for another process's migration, in vain (%s); raise MIGRATION_LOCK_SECONDS, "
            "or look for a stuck migration in that process's log",
            config.database_display,
            exc,
        )
        sys.exit(EXIT_MIGRATION)
    except MissingMark as exc:
        log.error("%s", exc)
        sys.exit(EXIT_MIGRATION)
    return database


def main(
    name: str,
    default_port: int,
    build: Callable[..., FastAPI],
    migrations: Path | None = None,
) -> None:
    """Entry point of `python -m services.NAME`; `migrations` is None for a service without data."""
    try:
        config = config_module.load(name, default_port, database=migrations is not None)
        configure_logging(config)
        app = build(config) if migrations is None else build(config, start_database(config, migrations))
    except config_module.ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    log.info("serving on %s:%d", config.host, config.port)
    # server_header=False: no "Server: uvicorn" (what runs, for anyone who reaches a service port). On SIGTERM it
    # drains for at most DRAIN_SECONDS (draining.py).
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=config.drain_seconds,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    server.run()
    if not server.started:
        sys.exit(EXIT_PORT)
