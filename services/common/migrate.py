"""One-off schema commands with a service's own scripts, as a rollback runs them in the newer image:

    python3 -m services.common.migrate SERVICE current
    python3 -m services.common.migrate SERVICE downgrade REVISION
    python3 -m services.common.migrate SERVICE backups
    python3 -m services.common.migrate SERVICE restore REVISION   (the newest copy taken at REVISION)

The database comes from the service's settings (DATABASE_URL or DATABASE_PATH). A downgrade runs under the same
lock as start-up migrations, a restore too. Exit codes as a service's: 2 usage or settings, 4 database unreachable,
5 lock; and 3: no copy kept at that revision."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import config as config_module
from .app import configure_logging
from .backup import NoBackup, described, listed, restore
from .db import Database, DatabaseUnreachable, Migrations, revision_of, wait_for_database
from .migration_lock import MigrationLockTimeout, migration_lock

log = logging.getLogger(__name__)
SERVICES = ("authentication", "authorisation", "person", "session")


def migrations_of(service: str) -> Path:
    return Path(__file__).resolve().parent.parent / service / "migrations"


def downgrade(database: Database, revision: str) -> tuple[str | None, str | None]:
    """(before, after): the database's revision when the lock was taken, and once downgraded to `revision`."""
    with migration_lock(database.engine, database.lock_seconds) as connection:
        before = revision_of(connection)
        if before != revision:
            database.migrations.downgrade_on(connection, revision)
        return before, revision_of(connection)


def put_back(database: Database, service: str, revision: str) -> int:
    with migration_lock(database.engine, database.lock_seconds) as connection:
        before = revision_of(connection)
        try:
            backup = restore(database.config.database_url, service, revision, connection)
        except NoBackup as exc:
            log.error("%s; `k8sdeploy backups` lists the copies kept", exc)
            return 3
    after = database.migrations.current(database.engine)
    log.info(
        "database %s restored from %s: at %s (was %s)", database.config.database_display, backup.path, after, before
    )
    print(after or "base")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m services.common.migrate")
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("action", choices=("current", "downgrade", "backups", "restore"))
    parser.add_argument("revision", nargs="?", default="")
    args = parser.parse_args(argv)
    if args.action in ("downgrade", "restore") and not args.revision:
        parser.error(f"{args.action} needs a revision (e.g. 0001)")
    try:
        config = config_module.load(args.service, 0)
    except config_module.ConfigError as exc:
        print(f"{args.service}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config)
    if args.action == "backups":
        for path in listed(config.database_url, args.service):
            backup = described(path)
            named = (backup.taken, backup.before, backup.after) if backup else ("", "", "")
            print("\t".join((str(path), str(path.stat().st_size), *named)))
        return 0
    database = Database(config, Migrations(migrations_of(args.service)))
    try:
        wait_for_database(database.engine, config.db_wait_seconds)
        if args.action == "current":
            print(database.migrations.current(database.engine) or "base")
            return 0
        if args.action == "restore":
            return put_back(database, args.service, args.revision)
        before, after = downgrade(database, args.revision)
    except DatabaseUnreachable as exc:
        log.error("database %s unreachable (%s); check DATABASE_URL/DATABASE_PATH", config.database_display, exc)
        return 4
    except MigrationLockTimeout as exc:
        log.error("database %s: another process is migrating it (%s)", config.database_display, exc)
        return 5
    log.info("database %s downgraded from %s to %s", config.database_display, before, after)
    print(after or "base")
    return 0


if __name__ == "__main__":
    sys.exit(main())
