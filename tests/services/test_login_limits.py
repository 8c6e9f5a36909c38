"""The authentication service on its own clock: failed logins limited per account, and stored hashes
brought up to today's parameters at the next successful login. Built in-process (so the clock can be
moved instead of slept on) and served on loopback, once on SQLite and once on MariaDB."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pymysql
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from services.authentication.app import FAILURE_WINDOW_SECONDS, MAX_FAILED_LOGINS, build
from services.common.config import load
from services.common.db import Database, Migrations
from services.common.passwords import needs_rehash, verify_password
from tests.infra import DEMO_SEED, ROOT, free_port_block, start_service

LOCKED = "too many failed logins for this account"


@dataclass
class Clock:
    """The service's idea of now (naive UTC), moved by the tests."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Authentication:
    url: str
    clock: Clock
    database: Database

    def login(self, email: str, password: str) -> httpx.Response:
        return httpx.post(f"{self.url}/api/authentication", data={"emailaddress": email, "password": password})

    def stored_hash(self, email: str) -> str:
        with self.database.engine.connect() as connection:
            return connection.execute(text("SELECT password_hash FROM users WHERE email = :e"), {"e": email}).scalar()

    def store_hash(self, email: str, stored: str) -> None:
        with self.database.engine.begin() as connection:
            connection.execute(text("UPDATE users SET password_hash = :h WHERE email = :e"), {"h": stored, "e": email})


def serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run `app` with uvicorn in a thread on a free loopback port."""
    port = free_port_block(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the authentication service did not start on port {port}")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'authentication.db'}"
    server = request.getfixturevalue("mariadb")
    name = f"limits_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(host="127.0.0.1", port=server.port, user=server.user, password=server.password)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    connection.close()
    return f"{server.url}/{name}"


def build_seeded(config, database: Database, clock):  # noqa: ANN001, ANN201 - a FastAPI app
    """The service as started with the demo users seeded (tests/infra.py's DEMO_SEED)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEED_USERS", DEMO_SEED["SEED_USERS"])
        return build(config, database, clock=clock)


@pytest.fixture
def auth(database_url: str) -> Iterator[Authentication]:
    config = load("authentication", 0, env={"DATABASE_URL": database_url})
    database = Database(config, Migrations(ROOT / "services" / "authentication" / "migrations"))
    database.start()
    clock = Clock(datetime(2030, 1, 1, 12, 0, 0))
    server, thread, url = serve(build_seeded(config, database, clock))
    try:
        yield Authentication(url, clock, database)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.engine.dispose()


def fail(auth: Authentication, email: str, times: int) -> list[int]:
    return [auth.login(email, f"guess{i}").status_code for i in range(times)]


def assert_locked(answer: httpx.Response, retry_after: int) -> None:
    assert answer.status_code == 429
    assert answer.text == LOCKED
    assert answer.headers["retry-after"] == str(retry_after)


# the per-account limit


def test_the_attempt_after_the_limit_is_refused_even_with_the_right_password(auth: Authentication) -> None:
    assert fail(auth, "admin@test.com", MAX_FAILED_LOGINS) == [401] * MAX_FAILED_LOGINS
    assert_locked(auth.login("admin@test.com", "admin"), FAILURE_WINDOW_SECONDS)
    auth.clock.advance(60)
    assert_locked(auth.login(" ADMIN@test.com", "admin"), FAILURE_WINDOW_SECONDS - 60)  # the same account
    assert_locked(auth.login("admin@test.com", "wrong"), FAILURE_WINDOW_SECONDS - 60)


def test_another_account_is_unaffected(auth: Authentication) -> None:
    fail(auth, "admin@test.com", MAX_FAILED_LOGINS)
    assert auth.login("admin@test.com", "admin").status_code == 429
    answer = auth.login("user@test.com", "user")
    assert (answer.status_code, answer.text) == (200, "2")
    assert auth.login("user@test.com", "wrong").status_code == 401


def test_an_unknown_address_is_limited_the_same_way(auth: Authentication) -> None:
    """The answers do not tell which addresses have accounts."""
    assert fail(auth, "nobody@test.com", MAX_FAILED_LOGINS) == [401] * MAX_FAILED_LOGINS
    assert_locked(auth.login("nobody@test.com", "admin"), FAILURE_WINDOW_SECONDS)
    auth.clock.advance(FAILURE_WINDOW_SECONDS)
    assert auth.login("nobody@test.com", "admin").status_code == 401


def test_after_the_window_the_right_password_works_and_resets_the_count(auth: Authentication) -> None:
    fail(auth, "admin@test.com", MAX_FAILED_LOGINS)
    auth.clock.advance(FAILURE_WINDOW_SECONDS - 1)
    assert_locked(auth.login("admin@test.com", "admin"), 1)
    auth.clock.advance(1)
    answer = auth.login("admin@test.com", "admin")
    assert (answer.status_code, answer.text) == (200, "1")
    # Counting starts again: the limit's worth of failures, then the refusal.
    assert fail(auth, "admin@test.com", MAX_FAILED_LOGINS) == [401] * MAX_FAILED_LOGINS
    assert auth.login("admin@test.com", "admin").status_code == 429


def test_a_successful_login_within_the_window_resets_the_count(auth: Authentication) -> None:
    fail(auth, "admin@test.com", MAX_FAILED_LOGINS - 1)
    assert auth.login("admin@test.com", "admin").status_code == 200
    assert fail(auth, "admin@test.com", MAX_FAILED_LOGINS) == [401] * MAX_FAILED_LOGINS
    assert auth.login("admin@test.com", "admin").status_code == 429


def test_failures_in_different_windows_are_not_added_up(auth: Authentication) -> None:
    fail(auth, "admin@test.com", MAX_FAILED_LOGINS - 1)
    auth.clock.advance(FAILURE_WINDOW_SECONDS)
    assert fail(auth, "admin@test.com", MAX_FAILED_LOGINS - 1) == [401] * (MAX_FAILED_LOGINS - 1)
    assert auth.login("admin@test.com", "admin").status_code == 200


def test_a_bad_limit_setting_exits_2(tmp_path: Path) -> None:
    service = start_service(
        "authentication", tmp_path, {"DATABASE_PATH": str(tmp_path / "a.db"), "LOGIN_FAILURE_LIMIT": "five"}
    )
    assert service.process.wait(timeout=30) == 2
    assert "LOGIN_FAILURE_LIMIT='five' is not a whole number" in service.log()


# rehashing at login


def old_hash(password: str) -> str:
    """A hash as stored before the cost was raised: scrypt N=2^14, r=8, p=1."""
    salt = b"s" * 16
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_a_login_replaces_a_hash_made_with_other_parameters(auth: Authentication) -> None:
    auth.store_hash("admin@test.com", old_hash("admin"))
    assert auth.login("admin@test.com", "admin").status_code == 200
    stored = auth.stored_hash("admin@test.com")
    assert stored.split("$")[1:4] == ["16384", "8", "5"] and not needs_rehash(stored)
    assert verify_password("admin", stored)
    assert auth.login("admin@test.com", "admin").status_code == 200
    assert auth.stored_hash("admin@test.com") == stored  # once is enough


def test_a_failed_login_does_not_rehash(auth: Authentication) -> None:
    auth.store_hash("admin@test.com", old_hash("admin"))
    assert auth.login("admin@test.com", "wrong").status_code == 401
    assert auth.stored_hash("admin@test.com") == old_hash("admin")


def test_a_rehash_that_cannot_be_stored_does_not_fail_the_login(
    auth: Authentication, caplog: pytest.LogCaptureFixture
) -> None:
    auth.store_hash("admin@test.com", old_hash("admin"))
    with auth.database.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER users_read_only BEFORE UPDATE ON users "
                    "BEGIN SELECT RAISE(ABORT, 'users are read-only'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER users_read_only BEFORE UPDATE ON users FOR EACH ROW "
                    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'users are read-only'"
                )
            )
    with caplog.at_level(logging.WARNING, logger="services.authentication.app"):
        answer = auth.login("admin@test.com", "admin")
    assert (answer.status_code, answer.text) == (200, "1")
    assert auth.stored_hash("admin@test.com") == old_hash("admin")
    assert any("could not store user 1's password" in message for message in caplog.messages), caplog.messages
