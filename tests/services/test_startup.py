"""Start-up: a bounded wait for the database with one clear line, and idempotent migrations."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pymysql
import pytest

from tests.infra import MariaDB, free_port_block, mariadb_server, start_service, wait_ready

DATA_SERVICES = ["authentication", "authorisation", "session", "person"]


def test_unreachable_database_gives_one_clear_line_and_exit_4(tmp_path: Path) -> None:
    closed = free_port_block(1)  # nothing listens there
    started = time.monotonic()
    service = start_service(
        "person", tmp_path, {"DATABASE_URL": f"mysql://suite:suite@127.0.0.1:{closed}/person", "DB_WAIT_SECONDS": "2"}
    )
    code = service.process.wait(timeout=120)  # a bound for a loaded machine, not a measure
    assert code == 4
    assert time.monotonic() - started >= 2  # it waited DB_WAIT_SECONDS for the database
    errors = [line for line in service.log().splitlines() if " ERROR " in line]
    assert len(errors) == 1, service.log()
    assert f"database mysql+pymysql://suite:***@127.0.0.1:{closed}/person unreachable after 2s" in errors[0]
    assert "check DATABASE_URL" in errors[0]
    assert "suite:suite" not in service.log()  # the password never reaches the log


def test_bad_configuration_exits_2_with_the_variable_named(tmp_path: Path) -> None:
    service = start_service("session", tmp_path, {"DATABASE_URL": "postgres://x/y"})
    assert service.process.wait(timeout=120) == 2
    assert "DATABASE_URL must start with mysql:// or sqlite://" in service.log()


def sqlite_dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return list(connection.iterdump())


@pytest.mark.parametrize("name", DATA_SERVICES)
def test_second_start_on_sqlite_changes_nothing(tmp_path: Path, name: str) -> None:
    database = tmp_path / f"{name}.db"
    env = {"DATABASE_PATH": str(database)}
    first = start_service(name, tmp_path, env)
    wait_ready(first)
    first.stop()
    before = sqlite_dump(database)
    assert any("alembic_version" in line for line in before)
    second = start_service(name, tmp_path, env)
    wait_ready(second)
    second.stop()
    assert sqlite_dump(database) == before
    assert "nothing to migrate" in second.log()


def test_a_service_names_no_server_software(tmp_path: Path) -> None:
    """No `Server: uvicorn` from a service port, on a probe or a refused request (#39: no part says what runs)."""
    service = start_service("session", tmp_path, {"DATABASE_PATH": str(tmp_path / "session.db")})
    try:
        wait_ready(service)
        for path in ("/healthz", "/readyz", "/api/sessions/lookup"):
            answer = httpx.get(f"{service.url}{path}", timeout=10)
            assert "server" not in answer.headers, (path, answer.headers)
    finally:
        service.stop()


def mysql_snapshot(server: MariaDB, database: str) -> dict[str, list]:
    connection = pymysql.connect(
        host="127.0.0.1", port=server.port, user=server.user, password=server.password, database=database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW TABLES")
            tables = sorted(row[0] for row in cursor.fetchall())
            snapshot = {}
            for table in tables:
                cursor.execute(f"SELECT * FROM `{table}` ORDER BY 1")
                snapshot[table] = list(cursor.fetchall())
            return snapshot
    finally:
        connection.close()


def test_second_start_on_mariadb_changes_nothing(tmp_path: Path, mariadb: MariaDB) -> None:
    connection = pymysql.connect(host="127.0.0.1", port=mariadb.port, user=mariadb.user, password=mariadb.password)
    with connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE twice_authorisation")
    connection.close()
    env = {"DATABASE_URL": f"{mariadb.url}/twice_authorisation"}
    first = start_service("authorisation", tmp_path, env)
    wait_ready(first)
    first.stop()
    before = mysql_snapshot(mariadb, "twice_authorisation")
    assert before["alembic_version"] == [("0002",)] and len(before["permissions"]) == 4
    assert sorted(before["caller_roles"]) == [(1, 1), (2, 2)]  # the demo callers, seeded from SEED_USERS
    second = start_service("authorisation", tmp_path, env)
    wait_ready(second)
    second.stop()
    assert mysql_snapshot(mariadb, "twice_authorisation") == before


def test_service_waits_for_a_database_that_comes_up_late(tmp_path: Path) -> None:
    port = free_port_block(1)
    service = start_service(
        "session",
        tmp_path,
        {"DATABASE_URL": f"mysql://suite:suite@127.0.0.1:{port}/late_session", "DB_WAIT_SECONDS": "60"},
    )
    try:
        time.sleep(2)
        assert service.process.poll() is None, service.log()  # still waiting, not given up
        with mariadb_server(tmp_path / "late", port=port) as server:
            connection = pymysql.connect(host="127.0.0.1", port=port, user=server.user, password=server.password)
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE late_session")
            connection.close()
            wait_ready(service, timeout=60)
            assert "migrated from None to 0002" in service.log()
            service.stop()
    finally:
        if service.process.poll() is None:
            service.process.kill()


def test_bad_service_setting_exits_2(tmp_path: Path) -> None:
    service = start_service(
        "session", tmp_path, {"DATABASE_PATH": str(tmp_path / "s.db"), "SESSION_TTL_SECONDS": "an hour"}
    )
    assert service.process.wait(timeout=120) == 2
    assert "SESSION_TTL_SECONDS='an hour' is not a whole number" in service.log()
