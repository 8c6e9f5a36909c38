"""Users come from the SEED_USERS setting, never from a migration: a fresh database has none; the demo users
an older migration made are removed unless seeded; a seeded password that changes is the new one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx

from deploy.model.suite import GATEWAY
from suitekit.passwords import hash_password
from tests.infra import ServiceProcess, start_service, wait_ready

ADMIN = {"id": 1, "email": "admin@test.com", "password_hash": hash_password("admin"), "role": "admin"}
USER = {"id": 2, "email": "user@test.com", "password_hash": hash_password("user"), "role": "user"}


def login(service: ServiceProcess, email: str, password: str) -> int:
    return httpx.post(
        f"{service.url}/api/authentication",
        data={"emailaddress": email, "password": password},
        headers=service.token(GATEWAY),
    ).status_code


def run(tmp_path: Path, database: Path, seed: list[dict] | None) -> ServiceProcess:
    """Start authentication on `database` with `seed` (None: no SEED_USERS at all), wait, stop."""
    service = start_service(
        "authentication",
        tmp_path,
        {"DATABASE_PATH": str(database), "SEED_USERS": json.dumps(seed) if seed is not None else ""},
    )
    try:
        wait_ready(service)
        return service
    except BaseException:
        service.stop()
        raise


def test_a_fresh_database_without_seed_users_has_no_user(tmp_path: Path) -> None:
    database = tmp_path / "authentication.db"
    service = run(tmp_path, database, None)
    try:
        assert login(service, "admin@test.com", "admin") == 401
        assert login(service, "user@test.com", "user") == 401
    finally:
        service.stop()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_the_demo_users_an_old_migration_made_go_unless_seeded(tmp_path: Path) -> None:
    database = tmp_path / "authentication.db"
    run(tmp_path, database, None).stop()
    with sqlite3.connect(database) as connection:  # as 0001 left a database before: demo users, at 0002
        connection.execute("INSERT INTO users VALUES (1, 'admin@test.com', ?)", (hash_password("admin"),))
        connection.execute("UPDATE alembic_version SET version_num = '0002'")
        connection.execute("DROP TABLE device_failures")  # made by 0005, after 0002
    service = run(tmp_path, database, None)
    try:
        assert login(service, "admin@test.com", "admin") == 401
    finally:
        service.stop()


def test_seeded_users_log_in_and_a_changed_password_replaces_the_old(tmp_path: Path) -> None:
    database = tmp_path / "authentication.db"
    service = run(tmp_path, database, [ADMIN])
    try:
        assert login(service, "admin@test.com", "admin") == 200
    finally:
        service.stop()
    service = run(tmp_path, database, [{**ADMIN, "password_hash": hash_password("a new one, longer")}])
    try:
        assert login(service, "admin@test.com", "admin") == 401
        assert login(service, "admin@test.com", "a new one, longer") == 200
    finally:
        service.stop()


def test_a_malformed_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    service = start_service(
        "authentication",
        tmp_path,
        {"DATABASE_PATH": str(tmp_path / "a.db"), "SEED_USERS": json.dumps([{**ADMIN, "role": "root"}])},
    )
    assert service.process.wait(timeout=120) == 2
    assert "SEED_USERS: user 1 needs an id from 1 and a role of admin, user" in service.log()


def test_a_password_in_clear_is_refused(tmp_path: Path) -> None:
    clear = {"id": 1, "email": "admin@test.com", "password": "admin", "password_hash": "admin", "role": "admin"}
    service = start_service(
        "authentication", tmp_path, {"DATABASE_PATH": str(tmp_path / "a.db"), "SEED_USERS": json.dumps([clear])}
    )
    assert service.process.wait(timeout=120) == 2
    assert "needs an email address and a password_hash (scrypt$...), never a password" in service.log()


def test_a_user_no_longer_seeded_is_removed_and_none_listed_removes_none(tmp_path: Path) -> None:
    database = tmp_path / "authentication.db"
    run(tmp_path, database, [ADMIN, USER]).stop()
    service = run(tmp_path, database, [USER])
    try:
        assert login(service, "admin@test.com", "admin") == 401
        assert login(service, "user@test.com", "user") == 200
    finally:
        service.stop()
    assert "removed user 1: no longer seeded" in service.log()
    service = run(tmp_path, database, None)  # no SEED_USERS: nothing to go by, nothing removed
    try:
        assert login(service, "user@test.com", "user") == 200
    finally:
        service.stop()


def test_authorisation_needs_ids_and_roles_only_and_drops_callers_no_longer_seeded(tmp_path: Path) -> None:
    database = tmp_path / "authorisation.db"
    for seed in ([{"id": 1, "role": "admin"}, {"id": 2, "role": "user"}], [{"id": 2, "role": "user"}]):
        service = start_service(
            "authorisation", tmp_path, {"DATABASE_PATH": str(database), "SEED_USERS": json.dumps(seed)}
        )
        try:
            wait_ready(service)
        finally:
            service.stop()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT caller_id FROM caller_roles").fetchall() == [(2,)]
