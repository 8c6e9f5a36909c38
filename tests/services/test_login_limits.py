"""The authentication service on its own clock: failed logins limited per account, and stored hashes
brought up to today's parameters at the next successful login. Built in-process (so the clock can be
moved instead of slept on) and served on loopback, once on SQLite and once on MariaDB."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import text

from deploy.model.suite import GATEWAY
from services.authentication.app import FAILURE_WINDOW_SECONDS, MAX_FAILED_LOGINS, build
from services.authentication.lockout import MAX_DELAY_SECONDS, client_address, trusted_proxies
from services.common.config import load
from services.common.db import Database, Migrations
from services.common.identity import Keyring
from suitekit.passwords import needs_rehash, verify_password
from tests.infra import DEMO_SEED, ROOT, Clock, serve, signed, start_service, write_identity

LOCKED = "too many failed logins for this account"


@dataclass
class Authentication:
    url: str
    clock: Clock
    database: Database
    keys: Path  # the key files of the suite's parts: the gateway's signs each login (services/common/identity.py)
    waits: list[float]  # the slow-downs logins waited out (not slept: recorded)

    def login(self, email: str, password: str, source: str = "", device: str = "") -> httpx.Response:
        """A login as the gateway sends it for a client at `source` (none: the caller's own address), with the
        browser's device cookie `device` (none: a new browser)."""
        headers = {"X-Real-IP": source, "X-Forwarded-For": source} if source else {}
        headers |= signed(self.keys, GATEWAY, "authentication")
        data = {"emailaddress": email, "password": password, "device": device}
        return httpx.post(f"{self.url}/api/authentication", data=data, headers=headers, timeout=60)

    def failures(self) -> list[int]:
        with self.database.engine.connect() as connection:
            return list(connection.execute(text("SELECT failures FROM login_failures ORDER BY failures")).scalars())

    def stored_hash(self, email: str) -> str:
        with self.database.engine.connect() as connection:
            return connection.execute(text("SELECT password_hash FROM users WHERE email = :e"), {"e": email}).scalar()

    def store_hash(self, email: str, stored: str) -> None:
        with self.database.engine.begin() as connection:
            connection.execute(text("UPDATE users SET password_hash = :h WHERE email = :e"), {"h": stored, "e": email})


def build_seeded(config, database: Database, clock, keys: Path, waits: list[float]):  # noqa: ANN001, ANN201
    """The service as started with the demo users seeded (tests/infra.py's DEMO_SEED), its waits recorded."""

    async def recorded(seconds: float) -> None:
        waits.append(seconds)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEED_USERS", DEMO_SEED["SEED_USERS"])
        keyring = Keyring("authentication", keys / "authentication")
        return build(config, database, clock=clock, keyring=keyring, sleep=recorded)


@pytest.fixture
def auth(database_url: str, tmp_path: Path) -> Iterator[Authentication]:
    config = load("authentication", 0, env={"DATABASE_URL": database_url})
    database = Database(config, Migrations(ROOT / "services" / "authentication" / "migrations"))
    database.start()
    clock = Clock(datetime(2030, 1, 1, 12, 0, 0))
    keys = write_identity(tmp_path / "identity")
    waits: list[float] = []
    server, thread, url = serve(build_seeded(config, database, clock, keys, waits))
    try:
        yield Authentication(url, clock, database, keys, waits)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.engine.dispose()


def logged_in(answer: httpx.Response) -> str:
    """The user a login answered 200 for: authentication's proof for session names it (services/common/identity.py)."""
    assert answer.status_code == 200, (answer.status_code, answer.text)
    return jwt.decode(answer.text, options={"verify_signature": False})["sub"]


def fail(auth: Authentication, email: str, times: int, source: str = "") -> list[int]:
    return [auth.login(email, f"guess{i}", source).status_code for i in range(times)]


def assert_locked(answer: httpx.Response, retry_after: int) -> None:
    assert answer.status_code == 429
    assert answer.text == LOCKED
    assert answer.headers["retry-after"] == str(retry_after)


# the per-account limit of one client address


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
    assert logged_in(answer) == "2"
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
    assert logged_in(answer) == "1"
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


# strangers


def test_a_strangers_wrong_passwords_leave_the_owner_able_to_log_in_from_another_address(auth: Authentication) -> None:
    stranger, owner = "203.0.113.7", "198.51.100.2"
    answers = fail(auth, "admin@test.com", 20, stranger)
    assert answers == [401] * MAX_FAILED_LOGINS + [429] * (20 - MAX_FAILED_LOGINS)
    answer = auth.login("admin@test.com", "admin", owner)
    assert logged_in(answer) == "1"
    assert_locked(auth.login("admin@test.com", "admin", stranger), FAILURE_WINDOW_SECONDS)  # the stranger still is
    assert auth.login("admin@test.com", "admin").status_code == 200  # and the service's own peer, another address


def test_guessing_spread_over_addresses_slows_new_browsers_progressively_up_to_the_cap(auth: Authentication) -> None:
    # Two addresses' worth of failures are free; each one beyond makes a new browser's login wait 1, 2, 4, ...
    # seconds before it is judged, at most MAX_DELAY_SECONDS: a wait, never a refusal of the right password.
    for third in range(2):
        assert fail(auth, "admin@test.com", MAX_FAILED_LOGINS, f"203.0.113.{third}") == [401] * MAX_FAILED_LOGINS
    assert logged_in(auth.login("admin@test.com", "admin", "198.51.100.2")) == "1"
    assert auth.waits == []
    for address in range(2, 12):  # ten more addresses, each to its own limit
        fail(auth, "admin@test.com", MAX_FAILED_LOGINS, f"203.0.113.{address}")
    waited = auth.waits  # the waits of the stranger's own later guesses (the first ten waited none)
    assert waited[:4] == [1, 2, 4, 8] and max(waited) == MAX_DELAY_SECONDS
    auth.waits.clear()
    assert logged_in(auth.login("admin@test.com", "admin", "198.51.100.3")) == "1"  # the owner's new browser
    assert auth.waits == [MAX_DELAY_SECONDS]
    auth.waits.clear()
    assert auth.login("user@test.com", "user", "198.51.100.3").status_code == 200  # other accounts never wait
    auth.clock.advance(FAILURE_WINDOW_SECONDS)  # and only for a while
    assert auth.login("admin@test.com", "admin", "198.51.100.4").status_code == 200
    assert auth.waits == []


def device_of(answer: httpx.Response) -> str:
    """The device cookie a successful login sets (the gateway gives it to the browser)."""
    assert answer.status_code == 200, answer.text
    return answer.headers["device-cookie"]


def test_a_trusted_browser_logs_in_at_once_whatever_strangers_did(auth: Authentication) -> None:
    """OWASP's device cookies: the owner's browser that logged in before is judged on its own."""
    device = device_of(auth.login("admin@test.com", "admin", "198.51.100.2"))
    for address in range(12):  # a stranger with a fresh address every five guesses
        fail(auth, "admin@test.com", MAX_FAILED_LOGINS + 3, f"203.0.113.{address}")
    fail(auth, "admin@test.com", MAX_FAILED_LOGINS, "198.51.100.2")  # even the owner's own address locked
    assert auth.login("admin@test.com", "admin", "198.51.100.2").status_code == 429  # for a new browser there
    auth.waits.clear()
    for address in ("198.51.100.2", "192.0.2.50"):  # at home and on the road
        answer = auth.login("admin@test.com", "admin", address, device=device)
        assert logged_in(answer) == "1"
        assert device_of(answer) != device  # renewed at each login
    assert auth.waits == []  # not slowed either


def test_a_devices_own_failures_lock_only_that_device(auth: Authentication) -> None:
    device = device_of(auth.login("admin@test.com", "admin", "198.51.100.2"))
    other = device_of(auth.login("admin@test.com", "admin", "198.51.100.2"))
    assert fail_with(auth, device, MAX_FAILED_LOGINS) == [401] * MAX_FAILED_LOGINS
    assert_locked(auth.login("admin@test.com", "admin", "198.51.100.2", device=device), FAILURE_WINDOW_SECONDS)
    assert logged_in(auth.login("admin@test.com", "admin", "198.51.100.2", device=other)) == "1"
    assert logged_in(auth.login("admin@test.com", "admin", "198.51.100.2")) == "1"  # the address was not counted


def fail_with(auth: Authentication, device: str, times: int) -> list[int]:
    return [auth.login("admin@test.com", f"guess{i}", "198.51.100.2", device).status_code for i in range(times)]


@pytest.mark.parametrize("kind", ["another account's", "tampered", "expired", "garbage"])
def test_a_device_cookie_not_for_this_account_is_a_new_browser(auth: Authentication, kind: str) -> None:
    genuine = device_of(auth.login("user@test.com", "user", "198.51.100.2"))
    version, kid, expires, nonce, mac = genuine.split(".")
    cookie = {
        "another account's": genuine,
        "tampered": f"{version}.{kid}.{expires}.{nonce[::-1]}.{mac}",
        "expired": f"{version}.{kid}.1.{nonce}.{mac}",
        "garbage": "x" * 500,
    }[kind]
    assert fail(auth, "admin@test.com", MAX_FAILED_LOGINS, "198.51.100.2") == [401] * MAX_FAILED_LOGINS
    assert auth.login("admin@test.com", "admin", "198.51.100.2", device=cookie).status_code == 429


def test_the_delay_is_bounded(auth: Authentication) -> None:
    for address in range(40):
        fail(auth, "admin@test.com", MAX_FAILED_LOGINS, f"203.0.113.{address}")
    auth.waits.clear()
    assert auth.login("admin@test.com", "admin", "198.51.100.3").status_code == 200
    assert auth.waits == [MAX_DELAY_SECONDS]


@pytest.mark.parametrize("email,password", [("", "x"), ("no-at-sign", "x"), ("a@b.c", ""), ("a@b.c", "x" * 2000)])
def test_a_malformed_login_is_refused_without_a_hash(auth: Authentication, email: str, password: str) -> None:
    answer = auth.login(email, password)
    assert (answer.status_code, answer.text) == (401, "invalid email address or password")
    assert auth.failures() == []  # not counted either


def test_failures_sent_at_once_are_all_counted(auth: Authentication) -> None:
    """Counted with one UPDATE each, not read and written back: parallel failures are not lost."""
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: auth.login("admin@test.com", f"guess{i}", "203.0.113.7"), range(8)))
    assert [answer.status_code for answer in answers].count(401) == auth.failures()[0] >= MAX_FAILED_LOGINS


def test_variants_of_an_address_are_one_account(auth: Authentication) -> None:
    """NFKC, case folding and trimming: the full-width and upper-case forms are the same account and count."""
    for variant in (" Admin@Test.COM ", "ａｄｍｉｎ@test.com", "ADMIN@TEST.COM\t"):
        answer = auth.login(variant, "admin")
        assert logged_in(answer) == "1", variant
    fail(auth, "ＡＤＭＩＮ@test.com", 3)
    fail(auth, "admin@TEST.com", 2)
    assert auth.failures() == [MAX_FAILED_LOGINS]
    assert_locked(auth.login("admin@test.com", "admin"), FAILURE_WINDOW_SECONDS)


def test_an_accented_variant_is_another_address_on_every_database(auth: Authentication) -> None:
    """MariaDB's default collation would match admin@tést.com to admin@test.com; the column compares bytes."""
    assert auth.login("admin@tést.com", "admin").status_code == 401
    assert auth.login("ádmin@test.com", "admin").status_code == 401
    assert fail(auth, "admin@tést.com", MAX_FAILED_LOGINS) == [401] * (MAX_FAILED_LOGINS - 1) + [429]
    assert auth.login("admin@test.com", "admin").status_code == 200  # another account's count


def test_the_client_address_comes_from_the_gateway_only() -> None:
    loopback = trusted_proxies("127.0.0.0/8,::1/128")
    named = {"x-real-ip": "203.0.113.7", "x-forwarded-for": "203.0.113.7"}
    assert client_address("127.0.0.1", named, loopback) == "203.0.113.7"
    assert client_address("198.51.100.2", named, loopback) == "198.51.100.2"  # not the gateway: its own
    assert client_address("127.0.0.1", {"x-forwarded-for": "10.1.1.1, 203.0.113.8"}, loopback) == "203.0.113.8"
    assert client_address("127.0.0.1", {"x-real-ip": "not an address"}, loopback) == "127.0.0.1"
    assert client_address("127.0.0.1", {"x-real-ip": "2001:db8:1:2:3:4:5:6"}, loopback) == "2001:db8:1:2::/64"
    assert client_address("::ffff:127.0.0.1", {"x-real-ip": "::ffff:203.0.113.9"}, loopback) == "203.0.113.9"


def test_a_bad_limit_setting_exits_2(tmp_path: Path) -> None:
    service = start_service(
        "authentication", tmp_path, {"DATABASE_PATH": str(tmp_path / "a.db"), "LOGIN_FAILURE_LIMIT": "five"}
    )
    assert service.process.wait(timeout=120) == 2
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
    assert logged_in(answer) == "1"
    assert auth.stored_hash("admin@test.com") == old_hash("admin")
    assert any("could not store user 1's password" in message for message in caplog.messages), caplog.messages
