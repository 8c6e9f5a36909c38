"""The session service on its own clock, on SQLite and on MariaDB: a session ends when idle and at its absolute end
however much it is used, a role change rotates its token and id, every session of a removed user ends, and a
login proof opens one session only. Built in-process (the clock is moved, not slept on); two builds on one
database stand for two replicas, or for the pod before and after `k8sdeploy user` changed SEED_USERS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from deploy.model.suite import GATEWAY
from services.common import context
from services.common.config import load
from services.common.db import Database, Migrations
from services.common.identity import Keyring
from services.session.app import build
from tests.infra import ROOT, Clock, login_proof, serve, signed, write_identity

IDLE, ABSOLUTE = 600, 3600  # seconds, as SESSION_IDLE_SECONDS and SESSION_TTL_SECONDS give them


@dataclass(frozen=True)
class Replica:
    """One build of the session service, served on loopback."""

    url: str
    keys: Path

    def open(self, user_id: str, proof: str = "") -> httpx.Response:
        proof = proof or login_proof(self.keys, user_id)
        return httpx.post(f"{self.url}/api/sessions", content=proof, headers=self.gateway(), timeout=30)

    def lookup(self, token: str) -> httpx.Response:
        return httpx.post(f"{self.url}/api/sessions/lookup", content=token, headers=self.gateway(), timeout=30)

    def gateway(self) -> dict[str, str]:
        return signed(self.keys, GATEWAY, "session")


@dataclass(frozen=True)
class Looked:
    """A lookup's answer: the user, their contexts (the frontend's, decoded) and the rotated token, if any."""

    user_id: str
    role: str
    session_id: str
    rotated: str


def looked(answer: httpx.Response, keys: Path) -> Looked:
    assert answer.status_code == 200, answer.text
    user_id, contexts, rotated = answer.text.split("\n")
    frontend = Keyring("frontend", keys / "frontend").verify(context.entries(contexts)["frontend"], (context.ISSUER,))
    assert frontend.subject == user_id
    return Looked(user_id, frontend.role or "", frontend.session or "", rotated)


Start = Callable[[dict[int, str]], Replica]


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2030, 1, 1, 12, 0, 0))


@pytest.fixture
def start(database_url: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """`start(roles)`: a replica seeded with users {id: role}, on the test's one database and clock."""
    config = load("session", 0, env={"DATABASE_URL": database_url})
    database = Database(config, Migrations(ROOT / "services" / "session" / "migrations"))
    database.start()
    keys = write_identity(tmp_path / "identity")
    monkeypatch.setenv("SESSION_IDLE_SECONDS", str(IDLE))
    monkeypatch.setenv("SESSION_TTL_SECONDS", str(ABSOLUTE))
    servers = []

    def started(roles: dict[int, str]) -> Replica:
        monkeypatch.setenv("SEED_USERS", json.dumps([{"id": i, "role": r} for i, r in roles.items()]))
        server, thread, url = serve(build(config, database, keyring=Keyring("session", keys / "session"), clock=clock))
        servers.append((server, thread))
        return Replica(url, keys)

    try:
        yield started
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)
        database.engine.dispose()


DEMO = {1: "admin", 2: "user"}


def test_a_used_session_lives_past_the_idle_time_and_ends_when_left(start: Start, clock: Clock) -> None:
    replica = start(DEMO)
    token = replica.open("2").text
    for _ in range(4):  # used every 0.9 of the idle time: alive for 3.6 idle times
        clock.advance(IDLE * 0.9)
        assert replica.lookup(token).status_code == 200
    clock.advance(IDLE - 1)
    assert replica.lookup(token).status_code == 200
    clock.advance(IDLE + 1)
    assert replica.lookup(token).status_code == 404


def test_a_session_ends_at_its_absolute_end_however_often_it_is_used(start: Start, clock: Clock) -> None:
    replica = start(DEMO)
    token = replica.open("1").text
    used = 0
    while used + IDLE // 2 < ABSOLUTE:
        clock.advance(IDLE // 2)
        used += IDLE // 2
        assert replica.lookup(token).status_code == 200, used
    clock.advance(ABSOLUTE - used)
    assert replica.lookup(token).status_code == 404


def test_a_role_change_rotates_the_token_and_the_session_id(start: Start, clock: Clock) -> None:
    before = start(DEMO)
    token = before.open("2").text
    first = looked(before.lookup(token), before.keys)
    assert (first.role, first.rotated) == ("user", "")
    after = start({1: "admin", 2: "admin"})  # `k8sdeploy user` made user 2 an admin: the pod after
    changed = looked(after.lookup(token), after.keys)
    assert changed.role == "admin" and changed.rotated and changed.rotated != token
    assert changed.session_id != first.session_id
    assert after.lookup(token).status_code == 404  # the old token has ended
    assert before.lookup(token).status_code == 404  # on every replica
    again = looked(after.lookup(changed.rotated), after.keys)
    assert (again.role, again.session_id, again.rotated) == ("admin", changed.session_id, "")


def test_rotation_by_two_replicas_at_once_leaves_one_token(start: Start) -> None:
    token = start(DEMO).open("2").text
    replicas = [start({1: "admin", 2: "admin"}) for _ in range(2)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: replicas[i % 2].lookup(token), range(8)))
    rotated = {answer.text.split("\n")[2] for answer in answers if answer.status_code == 200}
    assert len(rotated) == 1 and "" not in rotated, [(a.status_code, a.text[-20:]) for a in answers]
    assert replicas[0].lookup(rotated.pop()).status_code == 200


def test_every_session_of_a_removed_user_ends(start: Start) -> None:
    old = start(DEMO)
    tokens = [old.open("2").text for _ in range(3)]
    admins = old.open("1").text
    new = start({1: "admin"})  # user 2 removed: their sessions end at the new pod's start
    for token in tokens:
        assert new.lookup(token).status_code == 404
        assert old.lookup(token).status_code == 404
    late = old.open("2").text  # a replica still running with the old seed opens one more
    assert new.lookup(late).status_code == 404  # the replica that knows ends it, and all of the user's
    assert old.lookup(late).status_code == 404
    assert new.open("2").status_code == 401  # and opens none
    assert new.lookup(admins).status_code == 200


def test_a_login_proof_opens_one_session(start: Start) -> None:
    replica = start(DEMO)
    proof = login_proof(replica.keys, "2")
    assert replica.open("2", proof).status_code == 200
    replayed = replica.open("2", proof)
    assert (replayed.status_code, replayed.text) == (401, "that proof opens no session")
    at_once = login_proof(replica.keys, "2")
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(lambda _: replica.open("2", at_once).status_code, range(6)))
    assert codes == [200] + [401] * 5


def test_a_proof_without_its_own_id_opens_none(start: Start) -> None:
    replica = start(DEMO)
    proof = Keyring("authentication", replica.keys / "authentication").sign("session", "2")
    assert replica.open("2", proof).status_code == 400
