"""Migrations owned by the services: each declares expand or contract and can be undone; services migrate under
the database's own lock; older code stays ready on a schema expanded past its head, and says why not past a
contract step. On SQLite and on a real MariaDB, with the services' real start-up (`python -m services.person`)
run from copies of the sources that carry extra migrations."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pymysql
import pytest
import sqlalchemy as sa

from services.common.db import Migrations, create_db_engine, revision_of
from services.common.schema import MARKS, STEPS
from tests.infra import ROOT, MariaDB, ServiceProcess, start_service, wait_ready

SERVICES_WITH_DATA = ("authentication", "authorisation", "person", "session")

SLOW_STEP = '''"""A slow data step: one row per run in slow_step_runs, then seconds of work.

Revision ID: 0002
"""

import os
import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
compatibility = "expand"


def upgrade() -> None:
    runs = op.create_table("slow_step_runs", sa.Column("pid", sa.Integer, nullable=False))
    op.bulk_insert(runs, [{"pid": os.getpid()}])
    time.sleep(5)


def downgrade() -> None:
    op.drop_table("slow_step_runs")
'''

EXPAND_STEP = '''"""B: persons get a nickname (nullable: the previous release's code never sets it).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
compatibility = "expand"


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("nickname", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("nickname")
'''

CONTRACT_STEP = '''"""C: every person has a nickname (NOT NULL: code that inserts none fails).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
compatibility = "contract"


def upgrade() -> None:
    op.execute("UPDATE persons SET nickname = first_name WHERE nickname IS NULL")
    with op.batch_alter_table("persons") as batch:
        batch.alter_column("nickname", existing_type=sa.String(100), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.alter_column("nickname", existing_type=sa.String(100), nullable=True)
'''


def sources_with(tmp_path: Path, name: str, migrations: dict[str, str]) -> Path:
    """A copy of the services' sources whose person service has these extra revision files."""
    root = tmp_path / name
    for tree in ("services", "suitekit"):  # the services import suitekit too
        shutil.copytree(ROOT / tree, root / tree, ignore=shutil.ignore_patterns("__pycache__", "data"))
    for file_name, text in migrations.items():
        (root / "services" / "person" / "migrations" / "versions" / file_name).write_text(text)
    return root


@pytest.fixture(params=["sqlite", "mariadb"])
def person_database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], sa.Engine]:
    """The person service's settings for a new empty database, and an engine on it for the test's checks."""
    if request.param == "sqlite":
        path = tmp_path / "person.db"
        return {"DATABASE_PATH": str(path)}, create_db_engine(f"sqlite:///{path}")
    server: MariaDB = request.getfixturevalue("mariadb")
    name = f"person_{request.node.name.split('[')[0][-20:]}_{time.monotonic_ns() % 10**9}"
    connection = pymysql.connect(host="127.0.0.1", port=server.port, user=server.user, password=server.password)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    connection.close()
    url = f"{server.url}/{name}"
    return {"DATABASE_URL": url}, create_db_engine(url)


def readyz(service: ServiceProcess) -> httpx.Response:
    return httpx.get(f"{service.url}/readyz", timeout=5)


def started(name: str, tmp_path: Path, env: dict[str, str], root: Path = ROOT) -> ServiceProcess:
    """The person service, serving (its /readyz answers, ready or not)."""
    service = start_service(name, tmp_path, env, root)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert service.process.poll() is None, service.log()
        try:
            readyz(service)
            return service
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(service.log())


@pytest.mark.timeout(300)
def test_three_processes_at_once_migrate_once_and_all_become_ready(
    person_database: tuple[dict[str, str], sa.Engine], tmp_path: Path
) -> None:
    env, engine = person_database
    root = sources_with(tmp_path, "slow", {"0002_slow_step.py": SLOW_STEP})
    barrier = threading.Barrier(3)
    services: list[ServiceProcess] = []

    def start() -> None:
        barrier.wait()
        services.append(start_service("person", tmp_path / "logs", env, root))

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for service in services:
            wait_ready(service, timeout=120)
        assert all(service.process.poll() is None for service in services)  # none exited: no restart
        with engine.connect() as connection:
            runs = connection.execute(sa.text("SELECT pid FROM slow_step_runs")).all()
            assert revision_of(connection) == "0002"
        assert len(runs) == 1  # the step ran once
        logs = [service.log() for service in services]
        assert sum("migrated from None to 0002" in log for log in logs) == 1, logs
        others = [log for log in logs if "migrated from" not in log]  # each waited, or came after: nothing to do
        assert all("nothing to migrate" in log for log in others), logs
    finally:
        for service in services:
            service.stop()


def test_a_lock_held_too_long_is_one_clear_start_up_error(tmp_path: Path) -> None:
    path = tmp_path / "person.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")  # as the services set it: readers never wait for a writer
    holder.execute("BEGIN IMMEDIATE")  # as a migration in another process would
    try:
        service = start_service("person", tmp_path, {"DATABASE_PATH": str(path), "MIGRATION_LOCK_SECONDS": "2"})
        assert service.process.wait(timeout=60) == 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    errors = [line for line in service.log().splitlines() if " ERROR " in line]
    assert len(errors) == 1, service.log()
    assert "waited for another process's migration, in vain" in errors[0]
    assert "raise MIGRATION_LOCK_SECONDS" in errors[0]


@pytest.mark.timeout(300)
def test_older_code_is_ready_past_expand_steps_and_says_why_not_past_a_contract_step(
    person_database: tuple[dict[str, str], sa.Engine], tmp_path: Path
) -> None:
    env, engine = person_database
    b = sources_with(tmp_path, "b", {"0002_nickname.py": EXPAND_STEP})
    c = sources_with(tmp_path, "c", {"0002_nickname.py": EXPAND_STEP, "0003_nickname_required.py": CONTRACT_STEP})
    a_first = started("person", tmp_path / "a1", env)
    assert readyz(a_first).status_code == 200
    a_first.stop()
    b_service = started("person", tmp_path / "b", env, b)
    assert readyz(b_service).status_code == 200 and "migrated from 0001 to 0002" in b_service.log()
    a = started("person", tmp_path / "a2", env)  # A beside B, as in a rolling update or after a rollback
    try:
        assert readyz(a).json() == {"ready": True}, a.log()
        assert readyz(b_service).status_code == 200
        assert "ahead of this code's head 0001: expand steps only" in a.log()
    finally:
        a.stop()
        b_service.stop()
    c_service = started("person", tmp_path / "c", env, c)
    c_service.stop()
    for older, sources in (("a3", ROOT), ("b2", b)):
        service = started("person", tmp_path / older, env, sources)
        try:
            answer = readyz(service)
            assert answer.status_code == 503
            assert "database at revision 0003, past contract step 0003 of a newer release" in answer.json()["reason"]
        finally:
            service.stop()
    assert recorded_steps(engine) == [("0001", "expand"), ("0002", "expand"), ("0003", "contract")]
    # the way back: C's own scripts downgrade past its contract step (A's do not know 0003), then A is ready
    down = subprocess.run(
        [sys.executable, "-m", "services.common.migrate", "person", "downgrade", "0002"],
        env={**os.environ, "PYTHONPATH": str(c), **env},
        cwd=c,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    assert down.stdout == "0002\n" and "downgraded from 0003 to 0002" in down.stderr
    assert recorded_steps(engine) == [("0001", "expand"), ("0002", "expand")]
    a = started("person", tmp_path / "a4", env)
    try:
        assert readyz(a).json() == {"ready": True}, a.log()
    finally:
        a.stop()


def recorded_steps(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text(f"SELECT revision, compatibility FROM {STEPS} ORDER BY revision")).all()
    return [(row[0], row[1]) for row in rows]


def test_a_copy_of_the_sqlite_file_is_kept_before_each_migration(tmp_path: Path) -> None:
    path = tmp_path / "data" / "person.db"
    env = {"DATABASE_PATH": str(path)}
    first = started("person", tmp_path / "a", env)
    first.stop()
    assert not (tmp_path / "data" / "backups").exists()  # nothing to keep of an empty database
    b = sources_with(tmp_path, "b", {"0002_nickname.py": EXPAND_STEP})
    second = started("person", tmp_path / "b", env, b)
    second.stop()
    [kept] = (tmp_path / "data" / "backups").glob("person-*-0001-to-0002.db")
    with sqlite3.connect(kept) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert copy.execute("SELECT count(*) FROM persons").fetchone() == (3,)
    listed = subprocess.run(
        [sys.executable, "-m", "services.common.migrate", "person", "backups"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    path_, size, taken, before, after = listed.stdout.strip().split("\t")
    assert (path_, int(size), before, after) == (str(kept), kept.stat().st_size, "0001", "0002")
    assert kept.name.startswith(f"person-{taken}-")


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.common.migrate", "person", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_restore_puts_back_the_copy_kept_before_the_migration_rows_and_revision(tmp_path: Path) -> None:
    path = tmp_path / "data" / "person.db"
    env = {"DATABASE_PATH": str(path)}
    started("person", tmp_path / "a", env).stop()
    b = sources_with(tmp_path, "b", {"0002_nickname.py": EXPAND_STEP})
    service = started("person", tmp_path / "b", env, b)  # keeps running: a restore does not wait for it to stop
    try:
        with sqlite3.connect(path) as database:
            database.execute("INSERT INTO persons (first_name, last_name, nickname) VALUES ('Ada', 'L', 'ada')")
        assert migrate(env, "restore", "0003").returncode == 3  # no copy taken at 0003: said, nothing changed
        with sqlite3.connect(path) as database:
            assert database.execute("SELECT count(*) FROM persons").fetchone() == (4,)
        restored = migrate(env, "restore", "0001")
        assert restored.returncode == 0, restored.stderr
        assert restored.stdout == "0001\n" and "restored from" in restored.stderr
        with sqlite3.connect(path) as database:
            assert database.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
            assert database.execute("SELECT count(*) FROM persons").fetchone() == (3,)  # Ada was added since
            assert "nickname" not in [row[1] for row in database.execute("PRAGMA table_info(persons)")]
    finally:
        service.stop()
    again = started("person", tmp_path / "a2", env)  # A's code on the restored file: ready, nothing to migrate
    try:
        assert readyz(again).json() == {"ready": True}, again.log()
    finally:
        again.stop()


def test_the_last_five_copies_are_kept(tmp_path: Path) -> None:
    from services.common.backup import KEEP, back_up, listed

    url = f"sqlite:///{tmp_path / 'person.db'}"
    sqlite3.connect(tmp_path / "person.db").close()
    made = [back_up(url, "person", "0001", "0002") for _ in range(KEEP + 2)]
    assert listed(url, "person") == made[2:]


# Every migration: a mark, a downgrade, and upgrade / downgrade / upgrade on an empty and a populated database.


def revision_files() -> list[tuple[str, Path]]:
    return [
        (service, path)
        for service in SERVICES_WITH_DATA
        for path in sorted((ROOT / "services" / service / "migrations" / "versions").glob("*.py"))
    ]


@pytest.mark.parametrize(("service", "path"), revision_files(), ids=lambda value: getattr(value, "stem", value))
def test_every_migration_declares_expand_or_contract_and_has_a_downgrade(service: str, path: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"revision_{service}_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert getattr(module, "compatibility", None) in MARKS, f'{path}: set compatibility = "expand" or "contract"'
    assert callable(getattr(module, "downgrade", None)), f"{path}: write a downgrade()"


def populate(connection: sa.Connection, salt: int = 0) -> int:
    """One made-up row in every table of the schema (parents first), `salt` making it differ from the rows of
    another call; the number of rows added."""
    metadata = sa.MetaData()
    metadata.reflect(connection)
    added = 0
    for table in metadata.sorted_tables:
        if table.name in ("alembic_version", STEPS):
            continue
        row = {column.name: made_up(column, salt) for column in table.columns}
        connection.execute(table.insert().values(**row))
        added += 1
    return added


def made_up(column: sa.Column, salt: int) -> object:
    """A value for `column`: one id for every integer (so foreign keys find the parent row made first)."""
    kind = column.type.python_type if not isinstance(column.type, sa.types.NullType) else str
    if kind is int:
        return 900001 + salt
    if kind is bool:
        return True
    if kind is float:
        return 1.5
    if kind.__name__ in ("datetime", "date"):
        import datetime

        return datetime.datetime(2026, 1, 2, 3, 4, 5)
    length = getattr(column.type, "length", None) or 20
    return f"{salt}-populated-{column.name}"[:length]


def each_revision() -> list[tuple[str, str, str | None]]:
    found = []
    for service in SERVICES_WITH_DATA:
        scripts = Migrations(ROOT / "services" / service / "migrations").scripts
        for script in scripts.walk_revisions():
            found.append((service, script.revision, script.down_revision))
    return found


@pytest.mark.parametrize("populated", [False, True], ids=["empty", "populated"])
@pytest.mark.parametrize(("service", "revision", "down"), each_revision(), ids=lambda v: str(v))
def test_each_migration_upgrades_downgrades_and_upgrades_again(
    service: str, revision: str, down: str | None, populated: bool, tmp_path: Path
) -> None:
    migrations = Migrations(ROOT / "services" / service / "migrations")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def step(action: Callable[[sa.Connection], object]) -> None:
        with engine.begin() as connection:
            action(connection)

    if down is not None:
        step(lambda c: migrations.upgrade_on(c, down))
    if populated:
        step(populate)
    step(lambda c: migrations.upgrade_on(c, revision))
    if populated:
        step(lambda c: populate(c, 1))  # rows in the schema the step made, too
    step(lambda c: migrations.downgrade_on(c, down or "base"))
    assert migrations.current(engine) == down
    step(lambda c: migrations.upgrade_on(c, revision))
    assert migrations.current(engine) == revision
    with engine.connect() as connection:
        recorded = connection.execute(sa.text(f"SELECT revision FROM {STEPS}")).scalars().all()
    assert revision in recorded
