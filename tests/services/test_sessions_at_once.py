"""The session service under a burst of logins: every proof of a login opens a session, also while expired
sessions are being cleared and on MariaDB, where a range delete beside inserts can deadlock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from services.common.config import load
from services.common.db import Database, Migrations
from services.common.identity import Keyring
from services.session.app import Session, build, token_hash, utcnow
from tests.infra import ROOT, login_proof, serve, signed, write_identity


@pytest.fixture
def session_service(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Database, Path]]:
    config = load("session", 0, env={"DATABASE_URL": database_url})
    database = Database(config, Migrations(ROOT / "services" / "session" / "migrations"))
    database.start()
    keys = write_identity(tmp_path / "identity")
    server, thread, url = serve(build(config, database, keyring=Keyring("session", keys / "session")))
    try:
        yield url, database, keys
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.engine.dispose()


def test_sessions_opened_at_once_beside_expired_ones_all_open(session_service: tuple[str, Database, Path]) -> None:
    url, database, keys = session_service
    expired = utcnow() - timedelta(hours=1)
    with database.sessions.begin() as session:
        session.add_all(Session(token_hash=token_hash(f"old{i}"), caller_id=1, expires_at=expired) for i in range(50))

    def open_one(i: int) -> httpx.Response:
        proof = login_proof(keys, str(1 + i % 2))
        return httpx.post(
            f"{url}/api/sessions", content=proof, headers=signed(keys, "nginx-lua", "session"), timeout=60
        )

    for _ in range(3):  # a deadlock is a matter of timing: three bursts
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(open_one, range(30)))
        assert [answer.status_code for answer in answers] == [200] * 30, [answer.text for answer in answers]
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Session).where(Session.expires_at <= utcnow())) == 0
        assert session.scalar(select(func.count()).select_from(Session)) == 90
